// core/assessment: the deltas one transition adds, the bookkeeping on the
// case, and the calendar of days (UTC+08:00).
#include "core/assessment.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "core/topology.h"

namespace whistle::core::assessment {
namespace {

// 2026-11-27T00:00:00+08:00 = 2026-11-26T16:00:00Z.
constexpr int64_t kDayStart = 1795708800000LL;

using Key = std::tuple<char, std::string, int64_t, Figure>;

class AssessmentTest : public ::testing::Test {
 protected:
  AssessmentTest()
      : topology_ptr_(*Topology::Build(ShizuishanTopology())), topology_(*topology_ptr_) {}

  std::map<Key, int64_t> Apply(const v1::Case* before, v1::Case& after, v1::HistoryEntry entry) {
    entry.set_from_state(before != nullptr ? before->state() : v1::CASE_STATE_UNSPECIFIED);
    entry.set_to_state(after.state());
    entry.set_from_jurisdiction_id(before != nullptr ? before->owner_id() : "");
    entry.set_jurisdiction_id(after.owner_id());
    Annotate(before, after, entry, topology_);
    std::map<Key, int64_t> out;
    for (const auto& d : Deltas(before, after, entry, topology_)) {
      out[{static_cast<char>(d.kind), d.subject, d.day, d.figure}] += d.value;
    }
    return out;
  }

  static v1::HistoryEntry Entry(v1::TransitionKind kind, int64_t at) {
    v1::HistoryEntry e;
    e.set_kind(kind);
    e.set_at_ms(at);
    return e;
  }

  static v1::Case NewCase(const std::string& owner) {
    v1::Case c;
    c.set_id("szs-000000000001");
    c.set_category("dispute.neighbour");
    c.set_owner_id(owner);
    c.set_routed_to_id(owner);
    c.mutable_place()->set_grid_id("dwk-s01-c01-g001");
    c.set_state(v1::CASE_STATE_REPORTED);
    return c;
  }

  std::shared_ptr<const Topology> topology_ptr_;
  const Topology& topology_;
};

TEST_F(AssessmentTest, DaysAreUtcPlusEight) {
  EXPECT_EQ(DayName(DayOf(kDayStart)), "2026-11-27");
  EXPECT_EQ(DayName(DayOf(kDayStart - 1)), "2026-11-26");  // 23:59:59.999 at +08:00
  EXPECT_EQ(DayStartMs(DayOf(kDayStart + 5 * 3600 * 1000)), kDayStart);
  const int64_t day = DayOf(kDayStart);
  EXPECT_EQ(DayName(WeekStart(day)), "2026-11-23");  // a Monday
  EXPECT_EQ(DayName(MonthStart(day)), "2026-11-01");
  EXPECT_EQ(DayName(MonthEnd(day)), "2026-11-30");
  EXPECT_EQ(DayName(MonthEnd(DayOf(kDayStart + 40 * kDayMs))), "2027-01-31");
  EXPECT_EQ(DayName(MonthEnd(MonthStart(DayOf(kDayStart + 100 * kDayMs)))), "2027-03-31");
  EXPECT_EQ(DayName(DayOf(0)), "1970-01-01");
}

TEST_F(AssessmentTest, ReportCountsForTheOwnerAndEveryAncestorOnItsDay) {
  v1::Case c = NewCase("dwk-s01-c01");
  c.set_recurrence(true);
  auto d = Apply(nullptr, c, Entry(v1::TRANSITION_KIND_REPORT, kDayStart - 1));
  const int64_t day = DayOf(kDayStart) - 1;
  for (const char* j : {"dwk-s01-c01", "dwk-s01", "dwk", "szs"}) {
    EXPECT_EQ((d[{'j', j, day, Figure::kReceived}]), 1) << j;
    EXPECT_EQ((d[{'j', j, day, Figure::kRecurrences}]), 1) << j;
  }
  EXPECT_EQ((d.count({'j', "dwk-s02", day, Figure::kReceived})), 0u);
  EXPECT_EQ(d.size(), 8u);
}

TEST_F(AssessmentTest, ResponseInTimeOrLateCountsForTheOwnerThatResponded) {
  v1::Case before = NewCase("dwk-s01-c01");
  before.mutable_deadlines()->set_accept_by_ms(kDayStart);
  v1::Case in_time = before;
  in_time.set_state(v1::CASE_STATE_ACCEPTED);
  in_time.mutable_deadlines()->set_accept_by_ms(0);
  auto d = Apply(&before, in_time, Entry(v1::TRANSITION_KIND_ACCEPT, kDayStart));
  const int64_t day = DayOf(kDayStart);
  EXPECT_EQ((d[{'j', "dwk-s01-c01", day, Figure::kResponded}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01-c01", day, Figure::kRespondedInTime}]), 1);

  // After its accept_by (the timer not yet fired): a response, late.
  v1::Case late = in_time;
  d = Apply(&before, late, Entry(v1::TRANSITION_KIND_ACCEPT, kDayStart + 1));
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kResponded}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kRespondedInTime})), 0u);

  // Escalating a reported case is its owner's response, and an escalation out.
  v1::Case up = before;
  up.set_owner_id("dwk-s01");
  up.set_state(v1::CASE_STATE_ACCEPTED);
  up.set_accepted_in_time(true);
  d = Apply(&before, up, Entry(v1::TRANSITION_KIND_ESCALATE, kDayStart));
  EXPECT_EQ((d[{'j', "dwk-s01-c01", day, Figure::kResponded}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01-c01", day, Figure::kEscalationsOut}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kEscalationsOut}]), 1);  // subtree figure
  EXPECT_FALSE(up.left_township());
}

// The level that missed is charged, not the level that took over: the
// community ignores a case, its accept limit passes, the case moves up to the
// township, which accepts at once inside its own window. The community: one
// response due, missed; the township: one response in time, although the
// case as a whole was not accepted in time (Case.accept_missed stays set).
TEST_F(AssessmentTest, AMissedLimitCountsForTheOwnerThatMissedIt) {
  const int64_t day = DayOf(kDayStart);
  const int64_t hour = 3600 * 1000;
  v1::Case reported = NewCase("dwk-s01-c01");
  reported.mutable_deadlines()->set_accept_by_ms(kDayStart);
  v1::Case moved = reported;
  moved.set_owner_id("dwk-s01");
  moved.set_accept_missed(true);
  moved.mutable_deadlines()->set_accept_by_ms(kDayStart + 1 + hour);
  auto overdue = Entry(v1::TRANSITION_KIND_OVERDUE, kDayStart + 1);
  overdue.add_deadlines_missed("accept");
  auto d = Apply(&reported, moved, overdue);
  EXPECT_EQ((d[{'j', "dwk-s01-c01", day, Figure::kResponsesMissed}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kResponsesMissed}]), 1);  // subtree figure
  EXPECT_EQ((d.count({'j', "dwk-s01-c01", day, Figure::kResponded})), 0u);

  v1::Case accepted = moved;
  accepted.set_state(v1::CASE_STATE_ACCEPTED);
  accepted.set_accepted_in_time(false);  // the case's sticky fact: not used for the township
  accepted.mutable_deadlines()->set_accept_by_ms(0);
  accepted.mutable_deadlines()->set_resolve_by_ms(kDayStart + 10 * hour);
  d = Apply(&moved, accepted, Entry(v1::TRANSITION_KIND_ACCEPT, kDayStart + 2));
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kResponded}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kRespondedInTime}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01-c01", day, Figure::kResponded})), 0u);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kResponsesMissed})), 0u);

  // The township misses its resolve limit; the county takes over and resolves
  // inside its own: the township is charged, the county resolved in time.
  v1::Case county = accepted;
  county.set_owner_id("dwk");
  county.set_resolve_missed(true);
  county.mutable_deadlines()->set_resolve_by_ms(kDayStart + 20 * hour);
  auto missed = Entry(v1::TRANSITION_KIND_OVERDUE, kDayStart + 10 * hour + 1);
  missed.add_deadlines_missed("resolve");
  d = Apply(&accepted, county, missed);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kResolutionsMissed}]), 1);
  EXPECT_EQ((d[{'j', "dwk", day, Figure::kResolutionsMissed}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kResolved})), 0u);
  v1::Case resolved = county;
  resolved.set_state(v1::CASE_STATE_RESOLVED);
  resolved.set_resolved_in_time(false);  // sticky, not used for the county
  auto resolve = Entry(v1::TRANSITION_KIND_RESOLVE, kDayStart + 11 * hour);
  d = Apply(&county, resolved, resolve);
  EXPECT_EQ((d[{'j', "dwk", day, Figure::kResolved}]), 1);
  EXPECT_EQ((d[{'j', "dwk", day, Figure::kResolvedInTime}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kResolved})), 0u);
  // Resolved after its own limit (before the timer fired): late.
  d = Apply(&county, resolved, Entry(v1::TRANSITION_KIND_RESOLVE, kDayStart + 20 * hour + 1));
  EXPECT_EQ((d[{'j', "dwk", day, Figure::kResolved}]), 1);
  EXPECT_EQ((d.count({'j', "dwk", day, Figure::kResolvedInTime})), 0u);

  // The rates: in time / (decided + missed).
  const RateDef* response = FindRate("response_rate");
  ASSERT_NE(response, nullptr);
  EXPECT_EQ(response->denominator,
            (std::vector<Figure>{Figure::kResponded, Figure::kResponsesMissed}));
  const RateDef* resolution = FindRate("resolution_rate");
  ASSERT_NE(resolution, nullptr);
  EXPECT_EQ(resolution->denominator,
            (std::vector<Figure>{Figure::kResolved, Figure::kResolutionsMissed}));
}

TEST_F(AssessmentTest, ClosureOnTimeAndKeptLocal) {
  v1::Case before = NewCase("dwk-s01");
  before.set_routed_to_id("dwk-s01-c01");
  before.set_state(v1::CASE_STATE_VERIFIED);
  v1::Case closed = before;
  closed.set_state(v1::CASE_STATE_CLOSED);
  const int64_t day = DayOf(kDayStart);
  auto d = Apply(&before, closed, Entry(v1::TRANSITION_KIND_CLOSE, kDayStart));
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kClosed}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kClosedInTime}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kLocalClosed}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kKeptLocal}]), 1);
  EXPECT_EQ((d[{'j', "dwk", day, Figure::kKeptLocal}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01-c01", day, Figure::kLocalClosed})), 0u);

  // Owned by the county once: left the township for good, and late.
  v1::Case county = before;
  county.set_owner_id("dwk");
  county.set_state(v1::CASE_STATE_ACCEPTED);
  Apply(&before, county, Entry(v1::TRANSITION_KIND_ESCALATE, kDayStart));
  EXPECT_TRUE(county.left_township());
  v1::Case back = county;
  back.set_owner_id("dwk-s01");
  back.set_state(v1::CASE_STATE_VERIFIED);
  back.set_overdue_count(1);
  v1::Case closed2 = back;
  closed2.set_state(v1::CASE_STATE_CLOSED);
  d = Apply(&back, closed2, Entry(v1::TRANSITION_KIND_CLOSE, kDayStart));
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kLocalClosed}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kKeptLocal})), 0u);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kClosedInTime})), 0u);
}

TEST_F(AssessmentTest, RatingsOnBehalfAreApart) {
  v1::Case before = NewCase("dwk-s01");
  before.set_state(v1::CASE_STATE_CLOSED);
  v1::Case after = before;
  after.set_state(v1::CASE_STATE_EVALUATED);
  auto e = Entry(v1::TRANSITION_KIND_EVALUATE, kDayStart);
  e.set_score(4);
  const int64_t day = DayOf(kDayStart);
  auto d = Apply(&before, after, e);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kEvaluated}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kSatisfied}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kScoreSum}]), 4);
  e.set_on_behalf(true);
  e.set_score(5);
  d = Apply(&before, after, e);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kEvaluated})), 0u);
  EXPECT_EQ((d.count({'j', "dwk-s01", day, Figure::kSatisfied})), 0u);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kEvaluatedOnBehalf}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kOnBehalfScoreSum}]), 5);
}

TEST_F(AssessmentTest, NoShowCountsOnceForTheDepartmentAndItsJurisdiction) {
  v1::Case before = NewCase("dwk-s01");
  before.set_state(v1::CASE_STATE_IN_PROGRESS);
  auto* s = before.add_summons();
  s->set_department_id("dwk-s01-police_station");
  v1::Case after = before;
  after.mutable_summons(0)->set_no_show(true);
  const int64_t day = DayOf(kDayStart);
  auto d = Apply(&before, after, Entry(v1::TRANSITION_KIND_OVERDUE, kDayStart));
  EXPECT_EQ((d[{'d', "dwk-s01-police_station", day, Figure::kNoShows}]), 1);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kNoShows}]), 1);
  // It stays set: the next transition adds nothing.
  v1::Case resolved = after;
  resolved.set_state(v1::CASE_STATE_RESOLVED);
  d = Apply(&after, resolved, Entry(v1::TRANSITION_KIND_RESOLVE, kDayStart));
  EXPECT_EQ((d.count({'d', "dwk-s01-police_station", day, Figure::kNoShows})), 0u);
  // Reporting in late is not on time.
  v1::Case in = after;
  in.mutable_summons(0)->set_reported_in_at_ms(kDayStart);
  auto e = Entry(v1::TRANSITION_KIND_REPORT_IN, kDayStart);
  e.mutable_actor()->set_role(v1::ROLE_DEPARTMENT);
  e.mutable_actor()->set_department_id("dwk-s01-police_station");
  d = Apply(&after, in, e);
  EXPECT_EQ((d[{'d', "dwk-s01-police_station", day, Figure::kReportedIn}]), 1);
  EXPECT_EQ((d.count({'d', "dwk-s01-police_station", day, Figure::kReportedInOnTime})), 0u);
}

TEST_F(AssessmentTest, OverdueNowIsAGaugeThatFollowsTheCase) {
  v1::Case before = NewCase("dwk-s01-c01");
  before.set_state(v1::CASE_STATE_ACCEPTED);
  v1::Case late = before;
  late.set_overdue_count(1);
  auto d = Apply(&before, late, Entry(v1::TRANSITION_KIND_OVERDUE, kDayStart));
  EXPECT_TRUE(late.overdue_now());
  EXPECT_EQ((d[{'j', "dwk-s01-c01", kGaugeDay, Figure::kOverdueNow}]), 1);
  EXPECT_EQ((d[{'j', "szs", kGaugeDay, Figure::kOverdueNow}]), 1);
  // Supervision changes nothing; the next step clears it.
  v1::Case supervised = late;
  d = Apply(&late, supervised, Entry(v1::TRANSITION_KIND_SUPERVISE, kDayStart));
  EXPECT_TRUE(supervised.overdue_now());
  EXPECT_EQ((d.count({'j', "dwk-s01-c01", kGaugeDay, Figure::kOverdueNow})), 0u);
  v1::Case kept = supervised;
  kept.set_state(v1::CASE_STATE_IN_PROGRESS);
  d = Apply(&supervised, kept, Entry(v1::TRANSITION_KIND_KEEP, kDayStart));
  EXPECT_FALSE(kept.overdue_now());
  EXPECT_EQ((d[{'j', "dwk-s01-c01", kGaugeDay, Figure::kOverdueNow}]), -1);
  EXPECT_EQ((d[{'j', "szs", kGaugeDay, Figure::kOverdueNow}]), -1);
}

TEST_F(AssessmentTest, ReturnsRefusalsAndReopen) {
  const int64_t day = DayOf(kDayStart);
  v1::Case before = NewCase("dwk-s01-c01");
  v1::Case returned = before;
  returned.set_owner_id("dwk-s01");
  auto d = Apply(&before, returned, Entry(v1::TRANSITION_KIND_RETURN, kDayStart));
  EXPECT_EQ((d[{'j', "dwk-s01-c01", day, Figure::kReturns}]), 1);
  EXPECT_EQ((d.count({'j', "dwk-s01-c01", day, Figure::kEscalationsOut})), 0u);

  v1::Case dispatched = NewCase("dwk-s01");
  dispatched.set_state(v1::CASE_STATE_DISPATCHED);
  v1::Case refused = dispatched;
  refused.set_state(v1::CASE_STATE_ACCEPTED);
  auto e = Entry(v1::TRANSITION_KIND_REFUSE, kDayStart);
  e.mutable_actor()->set_role(v1::ROLE_DEPARTMENT);
  e.mutable_actor()->set_department_id("dwk-s01-judicial_office");
  d = Apply(&dispatched, refused, e);
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kReturns}]), 1);
  EXPECT_EQ((d[{'d', "dwk-s01-judicial_office", day, Figure::kRefusals}]), 1);

  v1::Case resolved = NewCase("dwk-s01");
  resolved.set_state(v1::CASE_STATE_RESOLVED);
  v1::Case reopened = resolved;
  reopened.set_state(v1::CASE_STATE_IN_PROGRESS);
  d = Apply(&resolved, reopened, Entry(v1::TRANSITION_KIND_VERIFY, kDayStart));
  EXPECT_EQ((d[{'j', "dwk-s01", day, Figure::kReopened}]), 1);
}

TEST_F(AssessmentTest, FigureNamesRoundTrip) {
  for (Figure f : AllFigures()) {
    EXPECT_EQ(FigureFromName(FigureName(f)), f);
  }
  EXPECT_FALSE(FigureFromName("nope"));
  EXPECT_NE(FindRate("response_rate"), nullptr);
  EXPECT_TRUE(IsRecurrence(1000, 2000, 1000));
  EXPECT_FALSE(IsRecurrence(1000, 2001, 1000));
  EXPECT_FALSE(IsRecurrence(0, 2000, 1000));
  EXPECT_FALSE(IsRecurrence(1000, 2000, 0));
}

// Rankings: equal values share a rank (1, 2, 2, 4), zeros included; a rate
// ties on its value whatever the denominators (4/4 and 3/3 are both 100%),
// the larger denominator listed first; undefined rates are unranked, last.
TEST_F(AssessmentTest, EqualValuesShareARank) {
  auto ranks = [](std::vector<Standing> s, bool rate, bool ascending) {
    RankStandings(s, rate, ascending);
    std::vector<std::pair<std::string, int>> out;
    for (const auto& x : s) out.emplace_back(x.id, x.rank);
    return out;
  };
  auto count = [](std::string id, int64_t n) {
    Standing s;
    s.id = std::move(id);
    s.count = n;
    return s;
  };
  using Ranks = std::vector<std::pair<std::string, int>>;
  // no_shows (fewer is better): the QA repro had s01=1 at 9 and s03=1 at 10.
  EXPECT_EQ(
      ranks({count("s01", 1), count("s02", 0), count("s03", 1), count("s04", 0), count("s05", 2)},
            false, true),
      (Ranks{{"s02", 1}, {"s04", 1}, {"s01", 3}, {"s03", 3}, {"s05", 5}}));
  // received (more is better).
  EXPECT_EQ(ranks({count("a", 5), count("b", 7), count("c", 5), count("d", 0)}, false, false),
            (Ranks{{"b", 1}, {"a", 2}, {"c", 2}, {"d", 4}}));
  // All zero: all first.
  EXPECT_EQ(ranks({count("a", 0), count("b", 0)}, false, true), (Ranks{{"a", 1}, {"b", 1}}));

  auto rate = [](std::string id, int64_t n, int64_t d) {
    Standing s;
    s.id = std::move(id);
    s.numerator = n;
    s.denominator = d;
    s.defined = d != 0;
    return s;
  };
  EXPECT_EQ(ranks({rate("a", 3, 3), rate("b", 4, 4), rate("c", 0, 0), rate("d", 2, 3),
                   rate("e", 4, 6), rate("f", 0, 5)},
                  true, false),
            (Ranks{{"b", 1}, {"a", 1}, {"e", 3}, {"d", 3}, {"f", 5}, {"c", 0}}));
}

}  // namespace
}  // namespace whistle::core::assessment
