#include "core/policy.h"

#include <string>
#include <tuple>
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

// 100 years: far beyond any real limit, and milliseconds of it fit in int64.
constexpr int64_t kMaxSeconds = 100 * 365 * kDay;

Status CheckSeconds(const std::string& field, int64_t value) {
  if (value < 0) {
    return Status::InvalidArgument(field + ": must be >= 0, got " + std::to_string(value));
  }
  if (value > kMaxSeconds) {
    return Status::InvalidArgument(field + ": must be <= " + std::to_string(kMaxSeconds) +
                                   " (100 years), got " + std::to_string(value));
  }
  return Status::Ok();
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
    if (Status s = CheckSeconds(std::string("limits.") + name, value); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ValidateStepLimits(const std::string& entry, const v1::StepLimits& l) {
  const std::tuple<const char*, bool, int64_t> fields[] = {
      {"accept_seconds", l.has_accept_seconds(), l.accept_seconds()},
      {"dispatch_seconds", l.has_dispatch_seconds(), l.dispatch_seconds()},
      {"report_in_seconds", l.has_report_in_seconds(), l.report_in_seconds()},
      {"resolve_seconds", l.has_resolve_seconds(), l.resolve_seconds()},
      {"verify_seconds", l.has_verify_seconds(), l.verify_seconds()},
      {"evaluate_seconds", l.has_evaluate_seconds(), l.evaluate_seconds()},
  };
  for (const auto& [name, set, value] : fields) {
    if (!set) continue;
    if (Status s = CheckSeconds(entry + ".limits." + name, value); !s.ok()) return s;
  }
  return Status::Ok();
}

bool KnownLevel(v1::Level level) { return level >= v1::LEVEL_CITY && level <= v1::LEVEL_GRID; }

std::string LevelName(v1::Level level) {
  return v1::Level_IsValid(level) ? v1::Level_Name(level) : std::to_string(level);
}

// Deeper levels have larger values: a level is "below" another when greater.
v1::Level DefaultEscalateUpTo(v1::Level owner) {
  return owner > v1::LEVEL_TOWNSHIP ? v1::LEVEL_TOWNSHIP : owner;
}

bool PrefixOf(std::string_view prefix, std::string_view s) {
  return s.substr(0, prefix.size()) == prefix;
}

Status ValidateRule(const std::string& entry, const v1::PolicyRule& r, const v1::Policy& config) {
  if (!r.category_prefix().empty()) {
    if (r.category_prefix().size() > 64) {
      return Status::InvalidArgument(entry + ".category_prefix: at most 64 characters");
    }
    bool matches = config.categories().empty();
    for (const auto& c : config.categories())
      matches = matches || PrefixOf(r.category_prefix(), c.id());
    if (!matches) {
      return Status::InvalidArgument(entry + ".category_prefix: " + Quote(r.category_prefix()) +
                                     " matches no category of the catalogue");
    }
  }
  if (r.severity() < v1::SEVERITY_UNSPECIFIED || r.severity() > v1::SEVERITY_EXTRAORDINARY) {
    return Status::InvalidArgument(entry + ".severity: unknown value " +
                                   std::to_string(r.severity()));
  }
  if (r.owner_level() == v1::LEVEL_UNSPECIFIED) {
    return Status::InvalidArgument(entry + ".owner_level: required");
  }
  if (!KnownLevel(r.owner_level())) {
    return Status::InvalidArgument(entry + ".owner_level: unknown level " +
                                   std::to_string(r.owner_level()));
  }
  if (r.owner_level() == v1::LEVEL_GRID) {
    return Status::InvalidArgument(entry + ".owner_level: a grid does not own cases " +
                                   "(its grid worker reports and verifies); the lowest owner is " +
                                   "LEVEL_COMMUNITY");
  }
  if (r.escalate_up_to() != v1::LEVEL_UNSPECIFIED) {
    if (!KnownLevel(r.escalate_up_to())) {
      return Status::InvalidArgument(entry + ".escalate_up_to: unknown level " +
                                     std::to_string(r.escalate_up_to()));
    }
    if (r.escalate_up_to() > r.owner_level()) {
      return Status::InvalidArgument(entry + ".escalate_up_to: " + LevelName(r.escalate_up_to()) +
                                     " is below owner_level " + LevelName(r.owner_level()));
    }
  }
  if (Status s = ValidateStepLimits(entry, r.limits()); !s.ok()) return s;
  if (r.has_recurrence_window_seconds()) {
    if (Status s =
            CheckSeconds(entry + ".recurrence_window_seconds", r.recurrence_window_seconds());
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// A rule that an earlier one always beats can never match: a mistake.
Status CheckShadowing(const std::string& list, const std::vector<v1::PolicyRule>& rules) {
  for (size_t j = 0; j < rules.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      const auto& a = rules[i];
      const auto& b = rules[j];
      bool covers = PrefixOf(a.category_prefix(), b.category_prefix()) &&
                    (a.severity() == v1::SEVERITY_UNSPECIFIED || a.severity() == b.severity());
      if (!covers) continue;
      std::string entry = list + "[" + std::to_string(j) + "]";
      std::string earlier = list + "[" + std::to_string(i) + "]";
      if (a.category_prefix() == b.category_prefix() && a.severity() == b.severity()) {
        return Status::InvalidArgument(entry + ": duplicate of " + earlier +
                                       " (same category_prefix and severity)");
      }
      return Status::InvalidArgument(entry + ": never matches; " + earlier + " (category_prefix " +
                                     Quote(a.category_prefix()) + ", severity " +
                                     v1::Severity_Name(a.severity()) + ") matches first");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<const Policy>> Policy::Build(v1::Policy config) {
  if (config.categories().empty()) {
    // A node without a catalogue would start and refuse every report.
    return Status::InvalidArgument("categories: at least one category required");
  }
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
  if (config.rules_size() > 0 && config.ownership_size() > 0) {
    return Status::InvalidArgument(
        "ownership: set `rules` or the older `ownership`, not both (ownership has " +
        std::to_string(config.ownership_size()) + " entries)");
  }
  for (int i = 0; i < config.ownership_size(); ++i) {
    const auto& r = config.ownership(i);
    std::string entry = "ownership[" + std::to_string(i) + "]";
    if (r.owner_level() == v1::LEVEL_UNSPECIFIED) {
      return Status::InvalidArgument(entry + ".owner_level: required");
    }
    if (!KnownLevel(r.owner_level())) {
      return Status::InvalidArgument(entry + ".owner_level: unknown level " +
                                     std::to_string(r.owner_level()));
    }
    if (r.owner_level() == v1::LEVEL_GRID) {
      return Status::InvalidArgument(entry + ".owner_level: a grid does not own cases; the " +
                                     "lowest owner is LEVEL_COMMUNITY");
    }
    if (r.severity() < v1::SEVERITY_UNSPECIFIED || r.severity() > v1::SEVERITY_EXTRAORDINARY) {
      return Status::InvalidArgument(entry + ".severity: unknown value " +
                                     std::to_string(r.severity()));
    }
  }
  for (int i = 0; i < config.rules_size(); ++i) {
    if (Status s = ValidateRule("rules[" + std::to_string(i) + "]", config.rules(i), config);
        !s.ok()) {
      return s;
    }
  }
  Status limits = ValidateLimits(config.limits());
  if (!limits.ok()) return limits;
  if (Status s = CheckSeconds("recurrence_window_seconds", config.recurrence_window_seconds());
      !s.ok()) {
    return s;
  }
  auto policy = std::shared_ptr<Policy>(new Policy(std::move(config)));
  if (Status s =
          CheckShadowing(policy->config_.rules_size() > 0 ? "rules" : "ownership", policy->rules_);
      !s.ok()) {
    return s;
  }
  return std::shared_ptr<const Policy>(std::move(policy));
}

Policy::Policy(v1::Policy config) : config_(std::move(config)) {
  if (config_.rules_size() > 0) {
    rules_.assign(config_.rules().begin(), config_.rules().end());
    return;
  }
  for (const auto& o : config_.ownership()) {
    v1::PolicyRule r;
    r.set_category_prefix(o.category_prefix());
    r.set_severity(o.severity());
    r.set_owner_level(o.owner_level());
    rules_.push_back(std::move(r));
  }
}

bool Policy::KnownCategory(std::string_view category) const {
  for (const auto& c : config_.categories()) {
    if (c.id() == category) return true;
  }
  return false;
}

RuleMatch Policy::Match(std::string_view category, v1::Severity severity) const {
  RuleMatch m;
  const v1::PolicyRule* rule = nullptr;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const auto& r = rules_[i];
    if (PrefixOf(r.category_prefix(), category) &&
        (r.severity() == v1::SEVERITY_UNSPECIFIED || r.severity() == severity)) {
      rule = &r;
      m.index = static_cast<int>(i);
      break;
    }
  }
  const auto& l = config_.limits();
  StepSeconds& s = m.limits;
  s.accept = Pick(severity >= v1::SEVERITY_SERIOUS, l.accept_urgent_seconds(), l.accept_seconds());
  s.dispatch = l.dispatch_seconds();
  s.report_in =
      Pick(severity >= v1::SEVERITY_MAJOR, l.report_in_emergency_seconds(), l.report_in_seconds());
  switch (severity) {
    case v1::SEVERITY_SERIOUS:
      s.resolve = l.resolve_serious_seconds();
      break;
    case v1::SEVERITY_MAJOR:
      s.resolve = l.resolve_major_seconds();
      break;
    case v1::SEVERITY_EXTRAORDINARY:
      s.resolve = l.resolve_extraordinary_seconds();
      break;
    default:
      s.resolve = l.resolve_general_seconds();
      break;
  }
  s.verify = l.verify_seconds();
  s.evaluate = l.evaluate_seconds();
  m.recurrence_window_seconds = config_.recurrence_window_seconds();
  if (rule == nullptr) return m;
  m.owner_level = rule->owner_level();
  m.escalate_up_to = rule->escalate_up_to() != v1::LEVEL_UNSPECIFIED
                         ? rule->escalate_up_to()
                         : DefaultEscalateUpTo(rule->owner_level());
  const v1::StepLimits& o = rule->limits();
  if (o.has_accept_seconds()) s.accept = o.accept_seconds();
  if (o.has_dispatch_seconds()) s.dispatch = o.dispatch_seconds();
  if (o.has_report_in_seconds()) s.report_in = o.report_in_seconds();
  if (o.has_resolve_seconds()) s.resolve = o.resolve_seconds();
  if (o.has_verify_seconds()) s.verify = o.verify_seconds();
  if (o.has_evaluate_seconds()) s.evaluate = o.evaluate_seconds();
  if (rule->has_recurrence_window_seconds()) {
    m.recurrence_window_seconds = rule->recurrence_window_seconds();
  }
  return m;
}

v1::Level Policy::OwnerLevel(std::string_view category, v1::Severity severity) const {
  return Match(category, severity).owner_level;
}

v1::Level Policy::EscalateUpTo(std::string_view category, v1::Severity severity) const {
  return Match(category, severity).escalate_up_to;
}

int64_t Policy::RecurrenceWindowMs(std::string_view category, v1::Severity severity) const {
  return Match(category, severity).recurrence_window_seconds * 1000;
}

int64_t Policy::AcceptBy(std::string_view category, v1::Severity severity, int64_t now_ms) const {
  return After(now_ms, Match(category, severity).limits.accept);
}

int64_t Policy::DispatchBy(std::string_view category, v1::Severity severity, int64_t now_ms) const {
  return After(now_ms, Match(category, severity).limits.dispatch);
}

int64_t Policy::ReportInBy(std::string_view category, v1::Severity severity, int64_t now_ms) const {
  return After(now_ms, Match(category, severity).limits.report_in);
}

int64_t Policy::ResolveBy(std::string_view category, v1::Severity severity, int64_t now_ms) const {
  return After(now_ms, Match(category, severity).limits.resolve);
}

int64_t Policy::VerifyBy(std::string_view category, v1::Severity severity, int64_t now_ms) const {
  return After(now_ms, Match(category, severity).limits.verify);
}

int64_t Policy::EvaluateBy(std::string_view category, v1::Severity severity, int64_t now_ms) const {
  return After(now_ms, Match(category, severity).limits.evaluate);
}

StatusOr<v1::Policy> ParsePolicy(std::string_view text, std::string_view origin) {
  v1::Policy policy;
  Status status = ParseMessage(text, origin, &policy);
  if (!status.ok()) return status;
  return policy;
}

namespace {

void AddRule(v1::Policy& p, const char* prefix, v1::Severity severity, v1::Level level,
             v1::Level escalate_up_to) {
  auto* r = p.add_rules();
  r->set_category_prefix(prefix);
  r->set_severity(severity);
  r->set_owner_level(level);
  r->set_escalate_up_to(escalate_up_to);
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
  // A missed deadline moves a matter owned at or below the township no higher
  // than the township; above that it raises a supervision notice instead.
  AddRule(p, "", v1::SEVERITY_MAJOR, v1::LEVEL_COUNTY, v1::LEVEL_COUNTY);
  AddRule(p, "", v1::SEVERITY_EXTRAORDINARY, v1::LEVEL_CITY, v1::LEVEL_CITY);
  AddRule(p, "public_order", v1::SEVERITY_UNSPECIFIED, v1::LEVEL_TOWNSHIP, v1::LEVEL_TOWNSHIP);
  AddRule(p, "petition", v1::SEVERITY_UNSPECIFIED, v1::LEVEL_TOWNSHIP, v1::LEVEL_TOWNSHIP);
  AddRule(p, "", v1::SEVERITY_GENERAL, v1::LEVEL_COMMUNITY, v1::LEVEL_TOWNSHIP);
  AddRule(p, "", v1::SEVERITY_SERIOUS, v1::LEVEL_TOWNSHIP, v1::LEVEL_TOWNSHIP);
  // Same grid and category again within 30 days counts as a recurrence.
  p.set_recurrence_window_seconds(30 * kDay);

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
