#include "core/policy.h"

#include <string>
#include <unordered_set>
#include <utility>

#include "core/topology.h"

namespace whistle::core {
namespace {

constexpr int64_t kMinute = 60;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Category ids: dotted snake_case, e.g. "special_population.drug".
bool ValidCategoryId(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.front() == '.' || id.back() == '.') return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

int64_t After(int64_t now_ms, int64_t seconds) {
  return seconds <= 0 ? 0 : now_ms + seconds * 1000;
}

// The urgent/emergency limit when it is set, else the normal one.
int64_t Pick(bool urgent, int64_t urgent_seconds, int64_t seconds) {
  return urgent && urgent_seconds > 0 ? urgent_seconds : seconds;
}

Status ValidateLimits(const v1::TimeLimits& l) {
  const std::pair<const char*, int64_t> fields[] = {
      {"accept_seconds", l.accept_seconds()},
      {"accept_urgent_seconds", l.accept_urgent_seconds()},
      {"dispatch_seconds", l.dispatch_seconds()},
      {"report_in_seconds", l.report_in_seconds()},
      {"report_in_emergency_seconds", l.report_in_emergency_seconds()},
      {"resolve_general_seconds", l.resolve_general_seconds()},
      {"resolve_serious_seconds", l.resolve_serious_seconds()},
      {"resolve_major_seconds", l.resolve_major_seconds()},
      {"resolve_extraordinary_seconds", l.resolve_extraordinary_seconds()},
      {"verify_seconds", l.verify_seconds()},
      {"evaluate_seconds", l.evaluate_seconds()},
  };
  for (const auto& [name, value] : fields) {
    if (value < 0) {
      return Status::InvalidArgument(std::string("limits.") + name + ": must be >= 0, got " +
                                     std::to_string(value));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<const Policy>> Policy::Build(v1::Policy config) {
  std::unordered_set<std::string> ids;
  for (int i = 0; i < config.categories_size(); ++i) {
    const auto& c = config.categories(i);
    std::string entry = "categories[" + std::to_string(i) + "]";
    if (!ValidCategoryId(c.id())) {
      return Status::InvalidArgument(entry + ".id: " + Quote(c.id()) +
                                     " must be 1..64 characters of [a-z0-9_.]");
    }
    if (!ids.insert(c.id()).second) {
      return Status::InvalidArgument(entry + ".id: duplicate id " + Quote(c.id()));
    }
    if (c.name().empty()) return Status::InvalidArgument(entry + ".name: required");
  }
  for (int i = 0; i < config.ownership_size(); ++i) {
    const auto& r = config.ownership(i);
    std::string entry = "ownership[" + std::to_string(i) + "]";
    if (r.owner_level() < v1::LEVEL_CITY || r.owner_level() > v1::LEVEL_GRID) {
      return Status::InvalidArgument(entry + ".owner_level: required");
    }
    if (r.severity() < v1::SEVERITY_UNSPECIFIED || r.severity() > v1::SEVERITY_EXTRAORDINARY) {
      return Status::InvalidArgument(entry + ".severity: unknown value " +
                                     std::to_string(r.severity()));
    }
  }
  Status limits = ValidateLimits(config.limits());
  if (!limits.ok()) return limits;
  return std::shared_ptr<const Policy>(new Policy(std::move(config)));
}

bool Policy::KnownCategory(std::string_view category) const {
  for (const auto& c : config_.categories()) {
    if (c.id() == category) return true;
  }
  return false;
}

v1::Level Policy::OwnerLevel(std::string_view category, v1::Severity severity) const {
  for (const auto& rule : config_.ownership()) {
    bool category_matches =
        category.substr(0, rule.category_prefix().size()) == rule.category_prefix();
    bool severity_matches =
        rule.severity() == v1::SEVERITY_UNSPECIFIED || rule.severity() == severity;
    if (category_matches && severity_matches) return rule.owner_level();
  }
  return v1::LEVEL_COMMUNITY;
}

int64_t Policy::AcceptBy(v1::Severity severity, int64_t now_ms) const {
  const auto& l = config_.limits();
  return After(now_ms, Pick(severity >= v1::SEVERITY_SERIOUS, l.accept_urgent_seconds(),
                            l.accept_seconds()));
}

int64_t Policy::DispatchBy(int64_t now_ms) const {
  return After(now_ms, config_.limits().dispatch_seconds());
}

int64_t Policy::ReportInBy(v1::Severity severity, int64_t now_ms) const {
  const auto& l = config_.limits();
  return After(now_ms, Pick(severity >= v1::SEVERITY_MAJOR, l.report_in_emergency_seconds(),
                            l.report_in_seconds()));
}

int64_t Policy::ResolveBy(v1::Severity severity, int64_t now_ms) const {
  const auto& l = config_.limits();
  switch (severity) {
    case v1::SEVERITY_SERIOUS:
      return After(now_ms, l.resolve_serious_seconds());
    case v1::SEVERITY_MAJOR:
      return After(now_ms, l.resolve_major_seconds());
    case v1::SEVERITY_EXTRAORDINARY:
      return After(now_ms, l.resolve_extraordinary_seconds());
    default:
      return After(now_ms, l.resolve_general_seconds());
  }
}

int64_t Policy::VerifyBy(int64_t now_ms) const {
  return After(now_ms, config_.limits().verify_seconds());
}

int64_t Policy::EvaluateBy(int64_t now_ms) const {
  return After(now_ms, config_.limits().evaluate_seconds());
}

StatusOr<v1::Policy> ParsePolicy(std::string_view text, std::string_view origin) {
  v1::Policy policy;
  Status status = ParseMessage(text, origin, &policy);
  if (!status.ok()) return status;
  return policy;
}

namespace {

void AddRule(v1::Policy& p, const char* prefix, v1::Severity severity, v1::Level level) {
  auto* r = p.add_ownership();
  r->set_category_prefix(prefix);
  r->set_severity(severity);
  r->set_owner_level(level);
}

}  // namespace

v1::Policy DefaultPolicy() {
  static const std::pair<const char*, const char*> kCategories[] = {
      {"dispute.neighbour", "邻里纠纷"},
      {"dispute.family", "家庭纠纷"},
      {"dispute.labour", "劳资纠纷"},
      {"dispute.land", "土地纠纷"},
      {"public_order", "社会治安"},
      {"safety.fire", "消防安全隐患"},
      {"safety.gas", "燃气安全隐患"},
      {"safety.building", "房屋安全隐患"},
      {"safety.traffic", "交通安全隐患"},
      {"environment", "市容环境"},
      {"infrastructure.road", "道路设施"},
      {"infrastructure.water", "供排水设施"},
      {"infrastructure.power", "供电设施"},
      {"infrastructure.street_light", "路灯设施"},
      {"livelihood.elderly", "养老服务"},
      {"livelihood.disabled", "助残服务"},
      {"livelihood.assistance", "社会救助"},
      {"special_population.correction", "社区矫正"},
      {"special_population.drug", "社区戒毒康复"},
      {"special_population.mental", "严重精神障碍患者服务管理"},
      {"floating_population", "流动人口"},
      {"rental_housing", "出租房屋"},
      {"public_health", "公共卫生"},
      {"petition", "信访"},
      {"school", "校园及周边"},
      {"enterprise", "企业"},
      {"religion", "宗教场所"},
      {"association", "社会组织"},
  };
  v1::Policy p;
  for (const auto& [id, name] : kCategories) {
    auto* c = p.add_categories();
    c->set_id(id);
    c->set_name(name);
  }
  // Grave cases go up whatever the category; then category overrides; then
  // "小事不出社区、大事不出乡镇".
  AddRule(p, "", v1::SEVERITY_MAJOR, v1::LEVEL_COUNTY);
  AddRule(p, "", v1::SEVERITY_EXTRAORDINARY, v1::LEVEL_CITY);
  AddRule(p, "public_order", v1::SEVERITY_UNSPECIFIED, v1::LEVEL_TOWNSHIP);
  AddRule(p, "petition", v1::SEVERITY_UNSPECIFIED, v1::LEVEL_TOWNSHIP);
  AddRule(p, "", v1::SEVERITY_GENERAL, v1::LEVEL_COMMUNITY);
  AddRule(p, "", v1::SEVERITY_SERIOUS, v1::LEVEL_TOWNSHIP);

  auto* l = p.mutable_limits();
  l->set_accept_seconds(30 * kMinute);
  l->set_accept_urgent_seconds(10 * kMinute);
  l->set_dispatch_seconds(1 * kHour);
  l->set_report_in_seconds(2 * kHour);
  l->set_report_in_emergency_seconds(30 * kMinute);
  l->set_resolve_general_seconds(3 * kDay);
  l->set_resolve_serious_seconds(2 * kDay);
  l->set_resolve_major_seconds(24 * kHour);
  l->set_resolve_extraordinary_seconds(2 * kHour);
  l->set_verify_seconds(24 * kHour);
  l->set_evaluate_seconds(3 * kDay);
  return p;
}

}  // namespace whistle::core
