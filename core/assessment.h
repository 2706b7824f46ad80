// Assessment (考核): what one transition adds to the figures of the
// jurisdictions and departments it concerns. Pure: (case before, case after,
// history entry, topology) -> counter deltas per (subject, day, figure). The
// jurisdiction actor writes the deltas in the same batch as the transition;
// storage/assessment_store.h sums them per period. The definitions, one line
// per figure, are in docs/assessment.md; this file and that one agree.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/topology.h"
#include "whistle/v1/case.pb.h"

namespace whistle::core::assessment {

// Counters. Stored by number (never renumber; append only). Rates are pairs
// (numerator, denominator) of these, so they add up over days and nodes.
enum class Figure : uint8_t {
  kReceived = 1,            // reports received
  kRecurrences = 2,         // of which recurrences (same grid + category within the window)
  kResponded = 3,           // responses (accept, whistle or escalate of a reported case)
  kRespondedInTime = 4,     //   of which within the responding owner's own accept limit
  kResolved = 5,            // cases resolved
  kResolvedInTime = 6,      //   of which within the resolving owner's own resolve limit
  kEvaluated = 7,           // residents' own ratings
  kSatisfied = 8,           //   of which 4 or 5
  kScoreSum = 9,            //   sum of their scores (mean = sum / evaluated)
  kEvaluatedOnBehalf = 10,  // ratings by staff on a resident's behalf (apart)
  kOnBehalfScoreSum = 11,   //   sum of their scores
  kEvaluationExpired = 12,  // evaluation windows that closed unevaluated
  kClosed = 13,             // cases closed
  kClosedInTime = 14,       //   of which never missed an accept/dispatch/resolve/verify limit
  kLocalClosed = 15,        // closed cases reported in the township (kept-local denominator)
  kKeptLocal = 16,          //   of which never owned outside that township
  kEscalationsOut = 17,     // escalations (by a caller or a missed deadline) out of the subject
  kReturns = 18,            // 退回 by the subject, and 退单 of the subject's dispatches
  kReopened = 19,           // verifications that found the case not fixed
  kNoShows = 20,            // summoned departments that missed report-in
  kOverdueNow = 21,         // gauge (no day): open cases whose current step missed a limit
  kSummoned = 22,           // department: summoned or dispatched
  kReportedIn = 23,         // department: reported in
  kReportedInOnTime = 24,   // department: reported in before its report-in limit
  kRefusals = 25,           // department: dispatches refused (退单)
  kPartsDone = 26,          // department: its part reported done
  kResponsesMissed = 27,    // accept limits that passed on the subject (the owner then)
  kResolutionsMissed = 28,  // resolve limits that passed on the subject (the owner then)
};
inline constexpr int kFigureCount = 28;  // highest Figure value

// Stable lower-case name ("received", "responded_in_time", ...); "" if unknown.
std::string_view FigureName(Figure f);
std::optional<Figure> FigureFromName(std::string_view name);
// Every figure, in number order.
const std::array<Figure, kFigureCount>& AllFigures();
bool IsGauge(Figure f);

// Days are calendar days in UTC+08:00 (China Standard Time), numbered from
// 1970-01-01 (day 0 began at 1969-12-31T16:00Z).
inline constexpr int64_t kDayMs = 24LL * 3600 * 1000;
inline constexpr int64_t kDayOffsetMs = 8LL * 3600 * 1000;
int64_t DayOf(int64_t at_ms);
// First millisecond (UTC epoch ms) of `day`.
int64_t DayStartMs(int64_t day);
// The day of a gauge row.
inline constexpr int64_t kGaugeDay = -1;

enum class SubjectKind : char { kJurisdiction = 'j', kDepartment = 'd' };

struct Delta {
  SubjectKind kind;
  std::string subject;  // jurisdiction or department id
  int64_t day;          // DayOf(entry.at_ms), or kGaugeDay
  Figure figure;
  int64_t value;
  // The level of the jurisdiction the event is first attributed to (before the
  // copies for its ancestors); LEVEL_UNSPECIFIED for department rows. For metrics.
  bool primary = true;  // false: a copy for an ancestor (subtree figures)
  v1::Level level = v1::LEVEL_UNSPECIFIED;
};

// Sets the node's bookkeeping on `after` before it is stored: left_township
// (owned outside the township of routed_to) and overdue_now (an overdue entry
// without a change of owner sets it; any other change of state or owner clears it).
void Annotate(const v1::Case* before, v1::Case& after, const v1::HistoryEntry& entry,
              const Topology& topology);

// The deltas of one transition (`before` nullptr for a report). Jurisdiction
// figures are subtree figures: each is also added to every ancestor.
// `after` must be annotated already.
std::vector<Delta> Deltas(const v1::Case* before, const v1::Case& after,
                          const v1::HistoryEntry& entry, const Topology& topology);

// Calendar of days (UTC+08:00): "2026-11-27"; the Monday of the week; the
// first and last day of the month.
std::string DayName(int64_t day);
int64_t WeekStart(int64_t day);
int64_t MonthStart(int64_t day);
int64_t MonthEnd(int64_t day);

// Rates and means, derived from the counters at read time (never stored).
struct RateDef {
  std::string_view name;
  Figure numerator;
  std::vector<Figure> denominator;  // summed
  bool department;                  // a department's rate (else a jurisdiction's)
};
const std::vector<RateDef>& Rates();
const RateDef* FindRate(std::string_view name);
// Ranking order of a count: true when fewer is better (escalations, returns,
// reopened, no-shows, recurrences, overdue, expired evaluations, refusals).
bool FewerIsBetter(Figure f);

// One child in a ranking. A rate compares by value n/d exactly (2/3 equals
// 4/6; 4/4 equals 3/3: equal values tie whatever the denominators); a count
// compares as is.
struct Standing {
  std::string id;
  bool defined = true;  // a rate with denominator 0 is undefined: unranked
  int64_t numerator = 0;
  int64_t denominator = 1;
  int64_t count = 0;
  int rank = 0;  // set by RankStandings: 1-based, equal values share one (1, 2, 2, 4); 0 unranked
};
// Sorts best first (a rate: higher first, then the larger denominator, then
// id; a count: higher first, or lower when `ascending`, then id; undefined
// rates last) and sets the ranks.
void RankStandings(std::vector<Standing>& standings, bool rate, bool ascending);

// Recurrence: `last_report_ms` is the time of the previous report of the same
// grid and category (0 = none); true when within `window_ms` (> 0).
bool IsRecurrence(int64_t last_report_ms, int64_t now_ms, int64_t window_ms);

}  // namespace whistle::core::assessment
