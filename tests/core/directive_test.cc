// core directive machine over the Shizuishan topology: who may issue what to
// whom, expansion to units, sign/complete rules, late stamps and counts that
// add up at every level.
#include "core/directive.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <memory>
#include <set>

#include "core/policy.h"
#include "tests/core/callers.h"

namespace whistle::core {
namespace {

using testing::MakeCaller;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr int64_t kHour = 3'600'000;

class DirectiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    topology_ = new std::shared_ptr<const Topology>(*Topology::Build(ShizuishanTopology()));
    policy_ = new std::shared_ptr<const Policy>(*Policy::Build(DefaultPolicy()));
  }
  static void TearDownTestSuite() {
    delete topology_;
    delete policy_;
  }
  const Topology& topo() const { return **topology_; }
  Context ctx() const { return Context{**topology_, **policy_}; }

  CheckedCaller Checked(v1::Caller c) const { return *CheckCaller(std::move(c), ctx()); }

  static v1::DirectiveDraft Draft(const std::string& subtree, v1::Level level) {
    v1::DirectiveDraft d;
    d.set_title("排查出租房消防隐患");
    d.set_text("every rental house by Friday");
    d.set_deadline_unix_ms(kNow + 48 * kHour);
    d.mutable_targets()->mutable_level()->set_subtree_id(subtree);
    d.mutable_targets()->mutable_level()->set_level(level);
    return d;
  }

  v1::Directive Issued(const v1::DirectiveDraft& draft) const {
    auto checked =
        CheckIssue(Checked(MakeCaller("lead", v1::ROLE_LEADER, "szs")), draft, ctx(), kNow);
    EXPECT_TRUE(checked.ok()) << checked.status().ToString();
    return NewDirective(*checked, "D1", kNow);
  }

  static std::shared_ptr<const Topology>* topology_;
  static std::shared_ptr<const Policy>* policy_;
};
std::shared_ptr<const Topology>* DirectiveTest::topology_ = nullptr;
std::shared_ptr<const Policy>* DirectiveTest::policy_ = nullptr;

TEST_F(DirectiveTest, EveryGridOfTheCityIs1903Units) {
  v1::Directive d = Issued(Draft("szs", v1::LEVEL_GRID));
  EXPECT_EQ(ExpandTargets(d.draft().targets(), topo()).size(), 1903u);
  // a node hosting one county expands only that county's grids
  size_t sum = 0;
  for (const char* county : {"dwk", "hn", "pl"}) {
    sum += ExpandTargets(d.draft().targets(), topo(), county).size();
  }
  EXPECT_EQ(sum, 1903u);
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.state(), v1::DIRECTIVE_STATE_ACTIVE);
}

TEST_F(DirectiveTest, OnlyLeadersIssueAndOnlyInsideTheirSubtree) {
  auto staff = CheckIssue(Checked(MakeCaller("s", v1::ROLE_STAFF, "szs")),
                          Draft("szs", v1::LEVEL_GRID), ctx(), kNow);
  EXPECT_EQ(staff.status().code(), Code::kPermissionDenied);
  auto county_leader = Checked(MakeCaller("l", v1::ROLE_LEADER, "dwk"));
  auto outside = CheckIssue(county_leader, Draft("pl", v1::LEVEL_GRID), ctx(), kNow);
  EXPECT_EQ(outside.status().code(), Code::kPermissionDenied);
  EXPECT_NE(outside.status().message().find("draft.targets.level.subtree_id"), std::string::npos);
  EXPECT_TRUE(CheckIssue(county_leader, Draft("dwk", v1::LEVEL_GRID), ctx(), kNow).ok());
}

TEST_F(DirectiveTest, BadDraftsNameTheField) {
  auto leader = Checked(MakeCaller("l", v1::ROLE_LEADER, "szs"));
  auto expect_field = [&](v1::DirectiveDraft d, const std::string& field) {
    auto r = CheckIssue(leader, std::move(d), ctx(), kNow);
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().ToString();
  };
  auto d = Draft("szs", v1::LEVEL_GRID);
  d.clear_title();
  expect_field(d, "draft.title");
  d = Draft("szs", v1::LEVEL_GRID);
  d.set_text("bad \xFC byte");
  expect_field(d, "draft.text");
  d = Draft("szs", v1::LEVEL_GRID);
  d.set_deadline_unix_ms(kNow - 1);
  expect_field(d, "draft.deadline_unix_ms");
  expect_field(Draft("nowhere", v1::LEVEL_GRID), "draft.targets.level.subtree_id");
  expect_field(Draft("dwk", v1::LEVEL_COUNTY), "draft.targets.level.level");
  d = Draft("szs", v1::LEVEL_GRID);
  d.clear_targets();
  expect_field(d, "draft.targets");
  d = Draft("szs", v1::LEVEL_GRID);
  d.mutable_targets()->mutable_departments()->add_ids("dwk-s01-police_station");
  d.mutable_targets()->mutable_departments()->add_ids("dwk-s01-police_station");
  expect_field(d, "draft.targets.departments.ids[1]");
  d.mutable_targets()->mutable_departments()->set_ids(1, "no-such-dept");
  expect_field(d, "draft.targets.departments.ids[1]");
}

TEST_F(DirectiveTest, DeadlinesAtMostFiveYearsAhead) {
  auto leader = Checked(MakeCaller("l", v1::ROLE_LEADER, "szs"));
  constexpr int64_t kDay = 24 * kHour;
  const int64_t last = kNow + 1826 * kDay;  // five years, one leap day included
  auto d = Draft("szs", v1::LEVEL_GRID);
  d.set_deadline_unix_ms(last);
  EXPECT_TRUE(CheckIssue(leader, d, ctx(), kNow).ok());
  for (int64_t far : {last + 1, std::numeric_limits<int64_t>::max()}) {
    d.set_deadline_unix_ms(far);
    auto r = CheckIssue(leader, d, ctx(), kNow);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << far;
    EXPECT_NE(r.status().message().find("draft.deadline_unix_ms: at most 5 years"),
              std::string::npos)
        << r.status().ToString();
  }
  v1::Directive issued = Issued(Draft("szs", v1::LEVEL_GRID));
  auto lead = MakeCaller("l", v1::ROLE_LEADER, "szs");
  v1::AmendDirective amend;
  amend.set_deadline_unix_ms(last);
  EXPECT_TRUE(ApplyAmend(issued, lead, amend, topo(), kNow).ok());
  for (int64_t far : {last + 1, std::numeric_limits<int64_t>::max()}) {
    amend.set_deadline_unix_ms(far);
    auto r = ApplyAmend(issued, lead, amend, topo(), kNow);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << far;
    EXPECT_NE(r.status().message().find("amend.deadline_unix_ms: at most 5 years"),
              std::string::npos)
        << r.status().ToString();
  }
}

TEST_F(DirectiveTest, DraftFingerprintTellsDraftsApart) {
  const auto base = Draft("szs", v1::LEVEL_GRID);
  EXPECT_EQ(DraftFingerprint(base), DraftFingerprint(Draft("szs", v1::LEVEL_GRID)));
  std::set<std::string> seen = {DraftFingerprint(base)};
  auto differs = [&](const v1::DirectiveDraft& d, const char* what) {
    EXPECT_TRUE(seen.insert(DraftFingerprint(d)).second) << what;
  };
  auto d = base;
  d.set_title("B-other");
  differs(d, "title");
  d = base;
  d.set_text("");
  differs(d, "text");
  d = base;
  d.set_deadline_unix_ms(base.deadline_unix_ms() + 1);
  differs(d, "deadline");
  d = base;
  d.add_attachments()->set_uri("s3://a");
  differs(d, "attachment");
  differs(Draft("dwk", v1::LEVEL_GRID), "subtree");
  differs(Draft("szs", v1::LEVEL_COMMUNITY), "level");
  d = base;
  d.mutable_targets()->mutable_jurisdictions()->add_ids("dwk");
  differs(d, "listed jurisdictions");
  d = base;
  d.mutable_targets()->mutable_departments()->add_ids("dwk");
  differs(d, "listed departments");
  // Field boundaries count: "ab" + "" is not "a" + "b".
  d = base;
  d.set_title("ab");
  d.set_text("");
  auto e = d;
  e.set_title("a");
  e.set_text("b");
  EXPECT_NE(DraftFingerprint(d), DraftFingerprint(e));
  // Stored with issue records: the same draft keeps its fingerprint across versions.
  EXPECT_EQ(DraftFingerprint(base), "v1:1419026d3c2cfbca");
  auto reused = IssueRequestReused("mayor", "req-1", "szs-d-000000000007");
  EXPECT_EQ(reused.code(), Code::kAlreadyExists);
  EXPECT_NE(reused.message().find("request_id: \"req-1\""), std::string::npos) << reused.message();
  EXPECT_NE(reused.message().find("szs-d-000000000007"), std::string::npos) << reused.message();
}

TEST_F(DirectiveTest, DepartmentsBelowAreTargetsOfACountyLeader) {
  v1::DirectiveDraft d = Draft("dwk", v1::LEVEL_GRID);
  d.mutable_targets()->mutable_departments()->add_ids("dwk-s01-police_station");
  auto checked = CheckIssue(Checked(MakeCaller("l", v1::ROLE_LEADER, "dwk")), d, ctx(), kNow);
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_EQ(checked->unit_count(), 1);
  EXPECT_EQ(UnitJurisdiction("dwk-s01-police_station", topo()), "dwk-s01");
  auto units = ExpandTargets(checked->get().targets(), topo(), "dwk-s01");
  ASSERT_EQ(units.size(), 1u);
}

TEST_F(DirectiveTest, SignThenCompleteStampsLatenessAndCounts) {
  v1::Directive d = Issued(Draft("szs", v1::LEVEL_GRID));
  const std::string unit = "dwk-s01-c01-g001";
  v1::Receipt r = NewReceipt(d.id(), unit, topo());
  auto worker = MakeCaller("gw", v1::ROLE_GRID_WORKER, unit);
  auto signed_ = ApplySign(d, r, worker, {}, topo(), kNow + kHour);
  ASSERT_TRUE(signed_.ok()) << signed_.status().ToString();
  EXPECT_EQ(signed_->next.state(), v1::RECEIPT_STATE_SIGNED);
  EXPECT_FALSE(signed_->next.signed_late());
  EXPECT_EQ(signed_->delta.signed_(), 1);
  EXPECT_EQ(signed_->delta.total(), 0);

  auto twice = ApplySign(d, signed_->next, worker, {}, topo(), kNow + kHour);
  EXPECT_EQ(twice.status().code(), Code::kFailedPrecondition);

  v1::CompleteReceipt done;
  done.set_note("checked 14 houses");
  auto completed = ApplyComplete(d, signed_->next, worker, done, topo(), kNow + 72 * kHour);
  ASSERT_TRUE(completed.ok());
  EXPECT_TRUE(completed->next.done_late());
  EXPECT_EQ(completed->delta.done(), 1);
  EXPECT_EQ(completed->delta.signed_(), 0);
  EXPECT_EQ(completed->delta.done_late(), 1);
}

TEST_F(DirectiveTest, NobodySignsForAnotherUnit) {
  v1::Directive d = Issued(Draft("szs", v1::LEVEL_GRID));
  v1::Receipt r = NewReceipt(d.id(), "dwk-s01-c01-g001", topo());
  auto other =
      ApplySign(d, r, MakeCaller("gw", v1::ROLE_GRID_WORKER, "dwk-s01-c01-g002"), {}, topo(), kNow);
  EXPECT_EQ(other.status().code(), Code::kPermissionDenied);
  auto above = ApplySign(d, r, MakeCaller("l", v1::ROLE_LEADER, "dwk"), {}, topo(), kNow);
  EXPECT_EQ(above.status().code(), Code::kPermissionDenied);
  auto dept = ApplySign(d, r, MakeCaller("p", v1::ROLE_DEPARTMENT, "dwk-s01-police_station"), {},
                        topo(), kNow);
  EXPECT_EQ(dept.status().code(), Code::kPermissionDenied);
}

TEST_F(DirectiveTest, AmendAndCancelByTheIssuingLevelOnly) {
  v1::Directive d = Issued(Draft("szs", v1::LEVEL_GRID));
  v1::AmendDirective amend;
  amend.set_deadline_unix_ms(kNow + 96 * kHour);
  auto county = ApplyAmend(d, MakeCaller("l", v1::ROLE_LEADER, "dwk"), amend, topo(), kNow);
  EXPECT_EQ(county.status().code(), Code::kPermissionDenied);
  auto amended = ApplyAmend(d, MakeCaller("l", v1::ROLE_LEADER, "szs"), amend, topo(), kNow);
  ASSERT_TRUE(amended.ok());
  EXPECT_EQ(amended->version(), 2);
  EXPECT_EQ(amended->draft().deadline_unix_ms(), kNow + 96 * kHour);

  v1::CancelDirective cancel;
  auto no_reason =
      ApplyCancel(*amended, MakeCaller("l", v1::ROLE_LEADER, "szs"), cancel, topo(), kNow);
  EXPECT_EQ(no_reason.status().code(), Code::kInvalidArgument);
  cancel.set_reason("merged into D2");
  auto cancelled =
      ApplyCancel(*amended, MakeCaller("l", v1::ROLE_LEADER, "szs"), cancel, topo(), kNow);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->version(), 3);
  v1::Receipt r = NewReceipt(d.id(), "dwk-s01-c01-g001", topo());
  auto sign = ApplySign(*cancelled, r, MakeCaller("gw", v1::ROLE_GRID_WORKER, "dwk-s01-c01-g001"),
                        {}, topo(), kNow);
  EXPECT_EQ(sign.status().code(), Code::kFailedPrecondition);
}

// Random signers over all 1,903 grids: counts summed per county and per
// township equal a hand count from the receipts, at every level.
TEST_F(DirectiveTest, CountsAddUpAtEveryLevel) {
  v1::Directive d = Issued(Draft("szs", v1::LEVEL_GRID));
  std::map<std::string, v1::ProgressCounts> by_jurisdiction;  // every ancestor-or-self
  std::vector<v1::Receipt> receipts;
  for (const auto& unit : ExpandTargets(d.draft().targets(), topo())) {
    receipts.push_back(NewReceipt(d.id(), unit, topo()));
  }
  auto add_up = [&](const std::string& unit, const v1::ProgressCounts& delta) {
    AddCounts(&by_jurisdiction[unit], delta);
    for (const auto* up : topo().Path(unit)) AddCounts(&by_jurisdiction[up->id()], delta);
  };
  for (const auto& r : receipts) add_up(r.unit_id(), CountsOf(r));
  uint32_t seed = 7;
  for (auto& r : receipts) {
    seed = seed * 1103515245 + 12345;
    int64_t when = kNow + static_cast<int64_t>(seed % 96) * kHour;
    auto worker = MakeCaller("gw", v1::ROLE_GRID_WORKER, r.unit_id());
    if (seed % 3 == 0) continue;
    auto t = seed % 3 == 1 ? ApplySign(d, r, worker, {}, topo(), when)
                           : ApplyComplete(d, r, worker, {}, topo(), when);
    ASSERT_TRUE(t.ok());
    add_up(r.unit_id(), t->delta);
    r = t->next;
  }
  for (const char* level_root : {"szs", "dwk", "hn", "pl", "dwk-s01"}) {
    v1::ProgressCounts hand;
    for (const auto& r : receipts) {
      if (topo().IsWithin(r.unit_id(), level_root)) AddCounts(&hand, CountsOf(r));
    }
    EXPECT_EQ(hand.SerializeAsString(), by_jurisdiction[level_root].SerializeAsString())
        << level_root;
  }
  EXPECT_EQ(by_jurisdiction["szs"].total(), 1903);
  EXPECT_GT(Overdue(d, by_jurisdiction["szs"], kNow + 49 * kHour), 0);
  EXPECT_EQ(Overdue(d, by_jurisdiction["szs"], kNow), 0);
}

}  // namespace
}  // namespace whistle::core
