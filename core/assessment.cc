#include "core/assessment.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/case_machine.h"

namespace whistle::core::assessment {

namespace {

constexpr std::array<std::string_view, kFigureCount + 1> kNames = {
    "",
    "received",
    "recurrences",
    "responded",
    "responded_in_time",
    "resolved",
    "resolved_in_time",
    "evaluated",
    "satisfied",
    "score_sum",
    "evaluated_on_behalf",
    "on_behalf_score_sum",
    "evaluation_expired",
    "closed",
    "closed_in_time",
    "local_closed",
    "kept_local",
    "escalations_out",
    "returns",
    "reopened",
    "no_shows",
    "overdue_now",
    "summoned",
    "reported_in",
    "reported_in_on_time",
    "refusals",
    "parts_done",
    "responses_missed",
    "resolutions_missed",
};

// The township a case was reported in: the township at or above routed_to
// ("" when routed_to is above township level).
std::string HomeTownship(const v1::Case& c, const Topology& topology) {
  const std::string& home = c.routed_to_id().empty() ? c.owner_id() : c.routed_to_id();
  const v1::Jurisdiction* t = topology.AncestorAt(home, v1::LEVEL_TOWNSHIP);
  return t == nullptr ? "" : t->id();
}

class Out {
 public:
  Out(const Topology& topology, int64_t day) : topology_(topology), day_(day) {}

  // `id` and every ancestor.
  void Jurisdiction(const std::string& id, Figure f, int64_t v, int64_t day) {
    if (v == 0 || id.empty()) return;
    const v1::Jurisdiction* j = topology_.Find(id);
    if (j == nullptr) return;  // not in this topology: nothing to count it for
    out_.push_back({SubjectKind::kJurisdiction, id, day, f, v, true, j->level()});
    for (const v1::Jurisdiction* a : topology_.Path(id)) {
      out_.push_back({SubjectKind::kJurisdiction, a->id(), day, f, v, false, a->level()});
    }
  }
  void Jurisdiction(const std::string& id, Figure f, int64_t v = 1) {
    Jurisdiction(id, f, v, day_);
  }
  void Department(const std::string& id, Figure f, int64_t v = 1) {
    if (v == 0 || id.empty()) return;
    out_.push_back({SubjectKind::kDepartment, id, day_, f, v, true, v1::LEVEL_UNSPECIFIED});
  }
  std::vector<Delta> Take() { return std::move(out_); }

 private:
  const Topology& topology_;
  int64_t day_;
  std::vector<Delta> out_;
};

std::map<std::string, int> NoShows(const v1::Case* c) {
  std::map<std::string, int> n;
  if (c == nullptr) return n;
  for (const auto& s : c->summons()) {
    if (s.no_show()) ++n[s.department_id()];
  }
  return n;
}

std::map<std::string, int> SummonsCount(const v1::Case* c) {
  std::map<std::string, int> n;
  if (c == nullptr) return n;
  for (const auto& s : c->summons()) ++n[s.department_id()];
  return n;
}

bool CountsOverdue(const v1::Case& c) { return IsOpen(c.state()) && c.overdue_now(); }

std::string DepartmentOf(const v1::HistoryEntry& e) {
  if (e.actor().role() == v1::ROLE_DEPARTMENT) return e.actor().department_id();
  return e.department_ids_size() > 0 ? e.department_ids(0) : "";
}

}  // namespace

std::string_view FigureName(Figure f) {
  auto i = static_cast<size_t>(f);
  return i < kNames.size() ? kNames[i] : "";
}

std::optional<Figure> FigureFromName(std::string_view name) {
  for (size_t i = 1; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<Figure>(i);
  }
  return std::nullopt;
}

const std::array<Figure, kFigureCount>& AllFigures() {
  static const std::array<Figure, kFigureCount> all = [] {
    std::array<Figure, kFigureCount> a{};
    for (int i = 0; i < kFigureCount; ++i) a[i] = static_cast<Figure>(i + 1);
    return a;
  }();
  return all;
}

bool IsGauge(Figure f) { return f == Figure::kOverdueNow; }

int64_t DayOf(int64_t at_ms) {
  int64_t shifted = at_ms + kDayOffsetMs;
  int64_t day = shifted / kDayMs;
  if (shifted % kDayMs < 0) --day;  // floor for times before the epoch
  return day;
}

int64_t DayStartMs(int64_t day) { return day * kDayMs - kDayOffsetMs; }

// Days from civil and back (H. Hinnant's algorithms, proleptic Gregorian).
namespace {
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}
}  // namespace

std::string DayName(int64_t day) {
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

int64_t WeekStart(int64_t day) {
  // 1970-01-01 was a Thursday: (day + 3) mod 7 is 0 on Mondays.
  int64_t wd = (day + 3) % 7;
  if (wd < 0) wd += 7;
  return day - wd;
}

int64_t MonthStart(int64_t day) {
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  return DaysFromCivil(y, m, 1);
}

int64_t MonthEnd(int64_t day) {
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(day, &y, &m, &d);
  return m == 12 ? DaysFromCivil(y + 1, 1, 1) - 1 : DaysFromCivil(y, m + 1, 1) - 1;
}

const std::vector<RateDef>& Rates() {
  static const std::vector<RateDef> rates = {
      {"response_rate",
       Figure::kRespondedInTime,
       {Figure::kResponded, Figure::kResponsesMissed},
       false},
      {"resolution_rate",
       Figure::kResolvedInTime,
       {Figure::kResolved, Figure::kResolutionsMissed},
       false},
      {"satisfaction_rate", Figure::kSatisfied, {Figure::kEvaluated}, false},
      {"satisfaction_mean", Figure::kScoreSum, {Figure::kEvaluated}, false},
      {"on_behalf_mean", Figure::kOnBehalfScoreSum, {Figure::kEvaluatedOnBehalf}, false},
      {"closure_rate", Figure::kClosedInTime, {Figure::kClosed}, false},
      {"kept_local_share", Figure::kKeptLocal, {Figure::kLocalClosed}, false},
      {"report_in_rate",
       Figure::kReportedInOnTime,
       {Figure::kReportedInOnTime, Figure::kNoShows},
       true},
  };
  return rates;
}

const RateDef* FindRate(std::string_view name) {
  for (const auto& r : Rates()) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

bool FewerIsBetter(Figure f) {
  switch (f) {
    case Figure::kRecurrences:
    case Figure::kEvaluationExpired:
    case Figure::kEscalationsOut:
    case Figure::kReturns:
    case Figure::kReopened:
    case Figure::kNoShows:
    case Figure::kOverdueNow:
    case Figure::kRefusals:
    case Figure::kResponsesMissed:
    case Figure::kResolutionsMissed:
      return true;
    default:
      return false;
  }
}

namespace {
// Sign of a/b - c/d for b, d > 0, exactly.
int CompareRates(int64_t a, int64_t b, int64_t c, int64_t d) {
  const __int128 x = static_cast<__int128>(a) * d;
  const __int128 y = static_cast<__int128>(c) * b;
  return x < y ? -1 : (x > y ? 1 : 0);
}
}  // namespace

void RankStandings(std::vector<Standing>& standings, bool rate, bool ascending) {
  auto same = [rate](const Standing& x, const Standing& y) {
    if (!rate) return x.count == y.count;
    return x.defined && y.defined &&
           CompareRates(x.numerator, x.denominator, y.numerator, y.denominator) == 0;
  };
  std::stable_sort(
      standings.begin(), standings.end(), [rate, ascending](const Standing& x, const Standing& y) {
        if (rate) {
          if (x.defined != y.defined) return x.defined;
          if (x.defined) {
            int c = CompareRates(x.numerator, x.denominator, y.numerator, y.denominator);
            if (c != 0) return c > 0;
            if (x.denominator != y.denominator) return x.denominator > y.denominator;
          }
        } else if (x.count != y.count) {
          return ascending ? x.count < y.count : x.count > y.count;
        }
        return x.id < y.id;
      });
  int rank = 0;
  for (size_t i = 0; i < standings.size(); ++i) {
    Standing& s = standings[i];
    if (rate && !s.defined) {
      s.rank = 0;
      continue;
    }
    if (i == 0 || !same(s, standings[i - 1])) rank = static_cast<int>(i) + 1;
    s.rank = rank;
  }
}

bool IsRecurrence(int64_t last_report_ms, int64_t now_ms, int64_t window_ms) {
  return window_ms > 0 && last_report_ms > 0 && now_ms >= last_report_ms &&
         now_ms - last_report_ms <= window_ms;
}

void Annotate(const v1::Case* before, v1::Case& after, const v1::HistoryEntry& entry,
              const Topology& topology) {
  std::string home = HomeTownship(after, topology);
  if (!home.empty() && !after.owner_id().empty() && !topology.IsWithin(after.owner_id(), home)) {
    after.set_left_township(true);
  }
  const bool owner_changed = before != nullptr && before->owner_id() != after.owner_id();
  const bool state_changed = before != nullptr && before->state() != after.state();
  if (entry.kind() == v1::TRANSITION_KIND_OVERDUE) {
    // A missed limit that moved the case up: the new owner starts on a fresh
    // limit. Only the owner's own steps make the case late (a department's
    // missed report-in is its no-show; a missed evaluation closes a closed case).
    bool owner_step = entry.deadlines_missed_size() == 0;
    for (const auto& m : entry.deadlines_missed()) {
      owner_step =
          owner_step || m == "accept" || m == "dispatch" || m == "resolve" || m == "verify";
    }
    if (owner_changed) {
      after.set_overdue_now(false);
    } else if (owner_step) {
      after.set_overdue_now(true);
    }
  } else if (entry.kind() != v1::TRANSITION_KIND_SUPERVISE && (owner_changed || state_changed)) {
    after.set_overdue_now(false);
  }
}

std::vector<Delta> Deltas(const v1::Case* before, const v1::Case& after,
                          const v1::HistoryEntry& entry, const Topology& topology) {
  Out out(topology, DayOf(entry.at_ms()));
  const std::string& from = entry.from_jurisdiction_id();
  const std::string& owner = after.owner_id();
  const v1::CaseState from_state = before != nullptr ? before->state() : entry.from_state();
  switch (entry.kind()) {
    case v1::TRANSITION_KIND_REPORT:
      if (before == nullptr) {
        out.Jurisdiction(owner, Figure::kReceived);
        if (after.recurrence()) out.Jurisdiction(owner, Figure::kRecurrences);
      }
      break;
    case v1::TRANSITION_KIND_RESOLVE:
      if (entry.actor().role() == v1::ROLE_DEPARTMENT) {
        out.Department(entry.actor().department_id(), Figure::kPartsDone);
      }
      break;
    case v1::TRANSITION_KIND_VERIFY:
      if (after.state() != v1::CASE_STATE_VERIFIED) out.Jurisdiction(owner, Figure::kReopened);
      break;
    case v1::TRANSITION_KIND_CLOSE: {
      out.Jurisdiction(owner, Figure::kClosed);
      if (after.overdue_count() == 0) out.Jurisdiction(owner, Figure::kClosedInTime);
      std::string home = HomeTownship(after, topology);
      if (!home.empty()) {
        out.Jurisdiction(home, Figure::kLocalClosed);
        if (!after.left_township()) out.Jurisdiction(home, Figure::kKeptLocal);
      }
      break;
    }
    case v1::TRANSITION_KIND_EVALUATE:
      if (entry.on_behalf()) {
        out.Jurisdiction(owner, Figure::kEvaluatedOnBehalf);
        out.Jurisdiction(owner, Figure::kOnBehalfScoreSum, entry.score());
      } else {
        out.Jurisdiction(owner, Figure::kEvaluated);
        out.Jurisdiction(owner, Figure::kScoreSum, entry.score());
        if (entry.score() >= 4) out.Jurisdiction(owner, Figure::kSatisfied);
      }
      break;
    case v1::TRANSITION_KIND_RETURN:
      out.Jurisdiction(from, Figure::kReturns);
      break;
    case v1::TRANSITION_KIND_REFUSE:
      out.Jurisdiction(owner, Figure::kReturns);
      out.Department(DepartmentOf(entry), Figure::kRefusals);
      break;
    case v1::TRANSITION_KIND_REPORT_IN: {
      std::string dept = DepartmentOf(entry);
      out.Department(dept, Figure::kReportedIn);
      bool late = false;
      if (before != nullptr) {
        for (const auto& s : before->summons()) {
          if (s.department_id() == dept && s.reported_in_at_ms() == 0 && s.done_at_ms() == 0 &&
              s.refused_at_ms() == 0) {
            late = s.no_show();
            break;
          }
        }
      }
      if (!late) out.Department(dept, Figure::kReportedInOnTime);
      break;
    }
    default:
      break;
  }

  // Each accept and resolve limit an owner is given ends once: met or late
  // by the owner's decision, or missed (an OVERDUE naming it). It counts for
  // that owner, judged by its own limit: a level that took a case over after
  // another missed is not charged with the other's miss.
  auto missed = [&entry](std::string_view step) {
    if (entry.kind() != v1::TRANSITION_KIND_OVERDUE) return false;
    for (const auto& m : entry.deadlines_missed()) {
      if (m == step) return true;
    }
    return false;
  };
  // Responses: the decision on a reported case by its owner, in time when
  // made by that owner's accept_by.
  if (from_state == v1::CASE_STATE_REPORTED && after.state() != v1::CASE_STATE_REPORTED &&
      (entry.kind() == v1::TRANSITION_KIND_ACCEPT || entry.kind() == v1::TRANSITION_KIND_WHISTLE ||
       entry.kind() == v1::TRANSITION_KIND_ESCALATE)) {
    const int64_t by = before != nullptr ? before->deadlines().accept_by_ms() : 0;
    out.Jurisdiction(from, Figure::kResponded);
    if (by == 0 || entry.at_ms() <= by) out.Jurisdiction(from, Figure::kRespondedInTime);
  }
  if (missed("accept")) out.Jurisdiction(from, Figure::kResponsesMissed);
  // Resolutions, by whoever's transition completed them (the owner's own
  // resolve or the last department's part), in time when by the owner's resolve_by.
  if (entry.kind() == v1::TRANSITION_KIND_RESOLVE && after.state() == v1::CASE_STATE_RESOLVED &&
      from_state != v1::CASE_STATE_RESOLVED) {
    const int64_t by = before != nullptr ? before->deadlines().resolve_by_ms() : 0;
    out.Jurisdiction(owner, Figure::kResolved);
    if (by == 0 || entry.at_ms() <= by) out.Jurisdiction(owner, Figure::kResolvedInTime);
  }
  if (missed("resolve")) out.Jurisdiction(from, Figure::kResolutionsMissed);
  // Escalations, counted for the level that escalated (a caller's, or a
  // missed limit's automatic one).
  if ((entry.kind() == v1::TRANSITION_KIND_ESCALATE ||
       entry.kind() == v1::TRANSITION_KIND_OVERDUE) &&
      !from.empty() && from != owner && topology.IsWithin(from, owner)) {
    out.Jurisdiction(from, Figure::kEscalationsOut);
  }
  // The evaluation window closed unevaluated.
  if (after.evaluation_expired() && (before == nullptr || !before->evaluation_expired())) {
    out.Jurisdiction(owner, Figure::kEvaluationExpired);
  }
  // Summons made, and no-shows (they stay set: only new ones count).
  auto summons_before = SummonsCount(before);
  for (const auto& [dept, n] : SummonsCount(&after)) {
    auto it = summons_before.find(dept);
    int added = n - (it == summons_before.end() ? 0 : it->second);
    if (added > 0) out.Department(dept, Figure::kSummoned, added);
  }
  auto shows_before = NoShows(before);
  for (const auto& [dept, n] : NoShows(&after)) {
    auto it = shows_before.find(dept);
    int added = n - (it == shows_before.end() ? 0 : it->second);
    if (added <= 0) continue;
    out.Department(dept, Figure::kNoShows, added);
    if (const v1::Department* d = topology.FindDepartment(dept); d != nullptr) {
      out.Jurisdiction(d->jurisdiction_id(), Figure::kNoShows, added);
    }
  }
  // The gauge: -1 where it counted before, +1 where it counts now.
  const bool was = before != nullptr && CountsOverdue(*before);
  const bool is = CountsOverdue(after);
  if (was && (!is || before->owner_id() != owner)) {
    out.Jurisdiction(before->owner_id(), Figure::kOverdueNow, -1, kGaugeDay);
  }
  if (is && (!was || before->owner_id() != owner)) {
    out.Jurisdiction(owner, Figure::kOverdueNow, 1, kGaugeDay);
  }
  return out.Take();
}

}  // namespace whistle::core::assessment
