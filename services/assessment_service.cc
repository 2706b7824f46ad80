#include "services/assessment_service.h"

#include <algorithm>

#include "core/assessment.h"
#include "core/text.h"
#include "services/call.h"
#include "storage/assessment_store.h"

namespace whistle::services {

namespace {

namespace a = core::assessment;

constexpr int64_t kMaxDays = 731;  // two years
// Times accepted in a request: 2000-01-01 .. 2200-01-01 (UTC).
constexpr int64_t kMinMs = 946684800000LL;
constexpr int64_t kMaxMs = 7258118400000LL;

struct Days {
  int64_t from = 0;
  int64_t to = 0;
};

StatusOr<Days> DaysOf(const v1::PeriodSpec& p, int64_t now_ms, std::string_view field) {
  const std::string f(field);
  const bool range = p.from_ms() != 0 || p.to_ms() != 0;
  if (range) {
    if (p.period() != v1::PERIOD_UNSPECIFIED) {
      return Status::InvalidArgument(f +
                                     ".period: give a period or a range (from_ms, to_ms), "
                                     "not both");
    }
    if (p.at_ms() != 0) {
      return Status::InvalidArgument(f + ".at_ms: only with a period, not with a range");
    }
    if (p.from_ms() < kMinMs || p.from_ms() > kMaxMs) {
      return Status::InvalidArgument(f + ".from_ms: " + std::to_string(p.from_ms()) +
                                     " is not a time between 2000 and 2200");
    }
    if (p.to_ms() < kMinMs || p.to_ms() > kMaxMs) {
      return Status::InvalidArgument(f + ".to_ms: " + std::to_string(p.to_ms()) +
                                     " is not a time between 2000 and 2200");
    }
    if (p.from_ms() > p.to_ms()) {
      return Status::InvalidArgument(f + ".to_ms: before from_ms");
    }
    Days d{a::DayOf(p.from_ms()), a::DayOf(p.to_ms())};
    if (d.to - d.from + 1 > kMaxDays) {
      return Status::InvalidArgument(f + ".to_ms: the range spans " +
                                     std::to_string(d.to - d.from + 1) + " days; at most " +
                                     std::to_string(kMaxDays));
    }
    return d;
  }
  int64_t at = p.at_ms() == 0 ? now_ms : p.at_ms();
  if (at < kMinMs || at > kMaxMs) {
    return Status::InvalidArgument(f + ".at_ms: " + std::to_string(p.at_ms()) +
                                   " is not a time between 2000 and 2200");
  }
  int64_t day = a::DayOf(at);
  switch (p.period()) {
    case v1::PERIOD_UNSPECIFIED:
    case v1::PERIOD_DAY:
      return Days{day, day};
    case v1::PERIOD_WEEK:
      return Days{a::WeekStart(day), a::WeekStart(day) + 6};
    case v1::PERIOD_MONTH:
      return Days{a::MonthStart(day), a::MonthEnd(day)};
    default:
      return Status::InvalidArgument(f + ".period: unknown period " +
                                     std::to_string(static_cast<int>(p.period())));
  }
}

v1::Rate MakeRate(const a::RateDef& def, const std::vector<int64_t>& sums) {
  v1::Rate r;
  r.set_name(std::string(def.name));
  r.set_numerator(sums[static_cast<size_t>(def.numerator)]);
  int64_t den = 0;
  for (a::Figure f : def.denominator) den += sums[static_cast<size_t>(f)];
  r.set_denominator(den);
  r.set_defined(den != 0);
  r.set_value(den != 0 ? static_cast<double>(r.numerator()) / static_cast<double>(den) : 0.0);
  return r;
}

// Leaders and staff: their own subtree; a department: itself; nobody else.
Status CheckMayAssess(const v1::Caller& who, const core::Topology& topology,
                      const std::string& jurisdiction_id, const std::string& department_id) {
  if (who.role() == v1::ROLE_DEPARTMENT) {
    if (!department_id.empty() && department_id == who.department_id()) return Status::Ok();
    return Status::PermissionDenied("a department reads only its own assessment (department_id " +
                                    core::Quote(who.department_id()) + ")");
  }
  if (who.role() != v1::ROLE_LEADER && who.role() != v1::ROLE_STAFF) {
    return Status::PermissionDenied(
        "assessments are read by leaders and staff (of the subtree) "
        "and by a department for itself; the caller's role is " +
        v1::Role_Name(who.role()));
  }
  const std::string& target = !jurisdiction_id.empty()
                                  ? jurisdiction_id
                                  : topology.FindDepartment(department_id)->jurisdiction_id();
  if (!topology.IsWithin(target, who.jurisdiction_id())) {
    return Status::PermissionDenied(
        (jurisdiction_id.empty() ? "department " + core::Quote(department_id) + " hangs off "
                                 : std::string("jurisdiction ")) +
        core::Quote(target) + " outside the caller's jurisdiction " +
        core::Quote(who.jurisdiction_id()));
  }
  return Status::Ok();
}

// A node's figures for a jurisdiction are complete only at or below its
// hosted root (its own rows and those its child nodes send up); above it, or
// beside it, they would be the part this node's cases added: refused, naming
// where to ask (docs/assessment.md, "Across nodes"). A department is named
// with the jurisdiction it hangs off (the one that lies above or beside).
Status CheckAnswersHere(const core::Placement& placement, const core::Topology& topology,
                        const std::string& jurisdiction_id, const std::string& department_id) {
  const std::string& root = placement.hosted_root();
  if (topology.IsWithin(jurisdiction_id, root)) return Status::Ok();
  const bool above = topology.IsWithin(root, jurisdiction_id);
  const std::string subject = department_id.empty()
                                  ? "jurisdiction_id: " + core::Quote(jurisdiction_id)
                                  : "department_id: " + core::Quote(department_id) +
                                        " hangs off jurisdiction " + core::Quote(jurisdiction_id) +
                                        ", which";
  return Status::FailedPrecondition(
      subject + (above ? " lies above this node's root " : " lies outside this node's root ") +
      core::Quote(root) + ": ask the node hosting it (this node holds only part of its figures)");
}

}  // namespace

grpc::ServerUnaryReactor* AssessmentService::Assess(grpc::CallbackServerContext* context,
                                                    const v1::AssessRequest* request,
                                                    v1::AssessResponse* response) {
  Call call(context, &probe_, "/whistle.v1.AssessmentService/Assess");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  const core::Topology& topology = node_.topology();
  const std::string& jid = request->jurisdiction_id();
  const std::string& did = request->department_id();
  if (jid.empty() == did.empty()) {
    return call.Finish(Status::InvalidArgument(
        "jurisdiction_id: give exactly one of jurisdiction_id and department_id"));
  }
  if (!jid.empty() && topology.Find(jid) == nullptr) {
    return call.Finish(
        Status::InvalidArgument("jurisdiction_id: unknown jurisdiction " + core::Quote(jid)));
  }
  if (!did.empty() && topology.FindDepartment(did) == nullptr) {
    return call.Finish(
        Status::InvalidArgument("department_id: unknown department " + core::Quote(did)));
  }
  if (Status s = CheckMayAssess(caller->get(), topology, jid, did); !s.ok()) {
    return call.Finish(s);
  }
  if (Status s = CheckAnswersHere(
          node_.placement(), topology,
          !jid.empty() ? jid : topology.FindDepartment(did)->jurisdiction_id(), did);
      !s.ok()) {
    return call.Finish(s);
  }
  auto days = DaysOf(request->period(), node_.clock().NowMs(), "period");
  if (!days.ok()) return call.Finish(days.status());
  const bool department = !did.empty();
  auto sums = storage::SumAssessment(node_.store(), department ? 'd' : 'j', department ? did : jid,
                                     days->from, days->to);
  if (!sums.ok()) return call.Finish(sums.status());
  response->set_subject_id(department ? did : jid);
  response->set_department(department);
  response->set_from_day(a::DayName(days->from));
  response->set_to_day(a::DayName(days->to));
  response->set_from_ms(a::DayStartMs(days->from));
  response->set_end_ms(a::DayStartMs(days->to + 1));
  for (a::Figure f : a::AllFigures()) {
    (*response->mutable_counts())[std::string(a::FigureName(f))] = (*sums)[static_cast<size_t>(f)];
  }
  for (const auto& def : a::Rates()) {
    if (def.department != department) continue;
    *response->add_rates() = MakeRate(def, *sums);
  }
  return call.Finish(Status::Ok());
}

grpc::ServerUnaryReactor* AssessmentService::Rank(grpc::CallbackServerContext* context,
                                                  const v1::RankRequest* request,
                                                  v1::RankResponse* response) {
  Call call(context, &probe_, "/whistle.v1.AssessmentService/Rank");
  auto caller = AdmitCaller(auth_, limiter_, call, *context, node_.context());
  if (!caller.ok()) return call.Finish(caller.status());
  const core::Topology& topology = node_.topology();
  const std::string& jid = request->jurisdiction_id();
  if (topology.Find(jid) == nullptr) {
    return call.Finish(
        Status::InvalidArgument("jurisdiction_id: unknown jurisdiction " + core::Quote(jid)));
  }
  const a::RateDef* rate = a::FindRate(request->figure());
  std::optional<a::Figure> count = a::FigureFromName(request->figure());
  if ((rate == nullptr && !count) || (rate != nullptr && rate->department)) {
    return call.Finish(Status::InvalidArgument(
        "figure: unknown figure " + core::Quote(request->figure()) +
        " (a count such as received, or a rate such as response_rate; docs/assessment.md)"));
  }
  if (Status s = CheckMayAssess(caller->get(), topology, jid, ""); !s.ok()) return call.Finish(s);
  if (Status s = CheckAnswersHere(node_.placement(), topology, jid, ""); !s.ok()) {
    return call.Finish(s);
  }
  auto days = DaysOf(request->period(), node_.clock().NowMs(), "period");
  if (!days.ok()) return call.Finish(days.status());
  std::vector<v1::RankEntry> entries;
  for (const v1::Jurisdiction* child : topology.Children(jid)) {
    auto sums = storage::SumAssessment(node_.store(), 'j', child->id(), days->from, days->to);
    if (!sums.ok()) return call.Finish(sums.status());
    v1::RankEntry e;
    e.set_jurisdiction_id(child->id());
    e.set_name(child->name());
    if (rate != nullptr) {
      *e.mutable_rate() = MakeRate(*rate, *sums);
    } else {
      e.set_count((*sums)[static_cast<size_t>(*count)]);
    }
    entries.push_back(std::move(e));
  }
  const bool ascending = rate == nullptr && a::FewerIsBetter(*count);
  // Equal figures share a rank (1, 2, 2, 4); undefined rates are unranked (0).
  std::vector<a::Standing> standings;
  standings.reserve(entries.size());
  for (const v1::RankEntry& e : entries) {
    a::Standing s;
    s.id = e.jurisdiction_id();
    s.defined = rate == nullptr || e.rate().defined();
    s.numerator = e.rate().numerator();
    s.denominator = e.rate().denominator();
    s.count = e.count();
    standings.push_back(std::move(s));
  }
  a::RankStandings(standings, rate != nullptr, ascending);
  for (const a::Standing& s : standings) {
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&s](const v1::RankEntry& e) { return e.jurisdiction_id() == s.id; });
    it->set_rank(s.rank);
    *response->add_entries() = std::move(*it);
  }
  response->set_figure(request->figure());
  response->set_ascending(ascending);
  response->set_from_day(a::DayName(days->from));
  response->set_to_day(a::DayName(days->to));
  return call.Finish(Status::Ok());
}

}  // namespace whistle::services
