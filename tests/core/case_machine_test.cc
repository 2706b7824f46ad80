#include "core/case_machine.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/core/callers.h"

namespace whistle::core {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr char kCaseId[] = "szs-000000000001";
constexpr char kGrid[] = "dwk-s01-c03-g002";
constexpr char kCommunity[] = "dwk-s01-c03";
constexpr char kStreet[] = "dwk-s01";
constexpr char kPolice[] = "dwk-s01-police_station";
constexpr char kJudicial[] = "dwk-s01-judicial_office";

using testing::MakeCaller;

v1::Command Accept() {
  v1::Command c;
  c.mutable_accept();
  return c;
}
v1::Command Keep() {
  v1::Command c;
  c.mutable_keep();
  return c;
}
v1::Command Dispatch(const std::string& dept) {
  v1::Command c;
  c.mutable_dispatch()->set_department_id(dept);
  return c;
}
v1::Command Escalate(const std::string& reason = "needs the street") {
  v1::Command c;
  c.mutable_escalate()->set_reason(reason);
  return c;
}
v1::Command Whistle(const std::vector<std::string>& depts) {
  v1::Command c;
  c.mutable_whistle();
  for (const auto& d : depts) c.mutable_whistle()->add_department_ids(d);
  return c;
}
v1::Command ReportIn() {
  v1::Command c;
  c.mutable_report_in();
  return c;
}
v1::Command Resolve() {
  v1::Command c;
  c.mutable_resolve()->set_note("done");
  return c;
}
v1::Command Verify(bool fixed) {
  v1::Command c;
  c.mutable_verify()->set_fixed(fixed);
  return c;
}
v1::Command Close() {
  v1::Command c;
  c.mutable_close();
  return c;
}
v1::Command Evaluate(int score) {
  v1::Command c;
  c.mutable_evaluate()->set_score(score);
  return c;
}
v1::Command Return(const std::string& reason = "misrouted") {
  v1::Command c;
  c.mutable_return_case()->set_reason(reason);
  return c;
}
v1::Command Reject(const std::string& reason = "not ours") {
  v1::Command c;
  c.mutable_reject()->set_reason(reason);
  return c;
}
v1::Command Supervise() {
  v1::Command c;
  c.mutable_supervise()->set_note("hurry");
  return c;
}
v1::Command Overdue() {
  v1::Command c;
  c.mutable_overdue();
  return c;
}
std::vector<std::string> Missed(const v1::HistoryEntry& e) {
  return {e.deadlines_missed().begin(), e.deadlines_missed().end()};
}
v1::Command OnBehalf(int score) {
  v1::Command c = Evaluate(score);
  c.mutable_evaluate()->set_on_behalf(true);
  return c;
}
v1::Command Transfer(const std::string& to, const std::string& category = "",
                     const std::string& reason = "misrouted") {
  v1::Command c;
  c.mutable_transfer()->set_to_jurisdiction_id(to);
  c.mutable_transfer()->set_category(category);
  c.mutable_transfer()->set_reason(reason);
  return c;
}
v1::Command Refuse(const std::string& reason = "not ours") {
  v1::Command c;
  c.mutable_refuse()->set_reason(reason);
  return c;
}

class CaseMachineTest : public ::testing::Test {
 protected:
  CaseMachineTest()
      : topology_(*Topology::Build(ShizuishanTopology())),
        policy_(*Policy::Build(DefaultPolicy())),
        ctx_{*topology_, *policy_} {}

  v1::ReportCommand NeighbourDispute(v1::Severity severity = v1::SEVERITY_GENERAL,
                                     const std::string& category = "dispute.neighbour") {
    v1::ReportCommand r;
    r.set_request_id("req-1");
    r.set_category(category);
    r.set_severity(severity);
    r.mutable_place()->set_grid_id(kGrid);
    r.mutable_place()->set_address("长胜街道 3 号楼");
    r.mutable_place()->set_latitude(39.0);
    r.mutable_place()->set_longitude(106.4);
    r.set_text("楼上漏水, 邻里争吵");
    r.add_attachments()->set_uri("s3://photos/1.jpg");
    return r;
  }

  // A report as the node makes it: checked at the edge, then the transition.
  StatusOr<Transition> ReportAs(const v1::ReportCommand& report, const v1::Caller& caller,
                                const std::string& case_id = kCaseId, int64_t now = kT0) {
    auto checked = CheckReport(caller, report, ctx_);
    if (!checked.ok()) return checked.status();
    return Report(*checked, case_id, now, ctx_);
  }

  // A command as the node applies it: the timer's overdue on the system
  // caller's own path, anything else checked at the edge first.
  StatusOr<Transition> Act(const v1::Case& c, const v1::Command& command, const v1::Caller& caller,
                           int64_t now) {
    if (IsSystemCaller(caller) && command.has_overdue()) {
      return ApplyOverdue(c, command.overdue(), now, ctx_);
    }
    auto checked = CheckCommand(caller, command, ctx_);
    if (!checked.ok()) return checked.status();
    return Apply(c, *checked, now, ctx_);
  }

  v1::Case NewCase(v1::Severity severity = v1::SEVERITY_GENERAL,
                   const std::string& category = "dispute.neighbour") {
    auto t = ReportAs(NeighbourDispute(severity, category), grid_worker_);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    history_ = {t->entry};
    return t->next;
  }

  // Applies `command` and expects success; records the history entry.
  v1::Case Do(const v1::Case& c, const v1::Command& command, const v1::Caller& caller,
              int64_t now) {
    auto t = Act(c, command, caller, now);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok()) return c;
    history_.push_back(t->entry);
    last_effects_ = t->effects;
    return t->next;
  }

  Status Fail(const v1::Case& c, const v1::Command& command, const v1::Caller& caller,
              int64_t now) {
    auto t = Act(c, command, caller, now);
    EXPECT_FALSE(t.ok());
    return t.status();
  }

  // Street-owned case with both departments summoned.
  v1::Case Whistled() {
    v1::Case c = NewCase();
    c = Do(c, Accept(), community_staff_, kT0 + 5 * kMinute);
    c = Do(c, Escalate(), community_staff_, kT0 + 10 * kMinute);
    return Do(c, Whistle({kPolice, kJudicial}), street_staff_, kT0 + 15 * kMinute);
  }

  std::shared_ptr<const Topology> topology_;
  std::shared_ptr<const Policy> policy_;
  Context ctx_;
  std::vector<v1::HistoryEntry> history_;
  Effects last_effects_;

  v1::Caller grid_worker_ = MakeCaller("gw-wang", v1::ROLE_GRID_WORKER, kGrid);
  v1::Caller other_grid_worker_ = MakeCaller("gw-li", v1::ROLE_GRID_WORKER, "dwk-s01-c03-g001");
  v1::Caller community_staff_ = MakeCaller("cs-zhang", v1::ROLE_STAFF, kCommunity);
  v1::Caller street_staff_ = MakeCaller("ss-liu", v1::ROLE_STAFF, kStreet);
  v1::Caller county_leader_ = MakeCaller("ld-dwk", v1::ROLE_LEADER, "dwk");
  v1::Caller hn_leader_ = MakeCaller("ld-hn", v1::ROLE_LEADER, "hn");
  v1::Caller city_leader_ = MakeCaller("ld-szs", v1::ROLE_LEADER, "szs");
  v1::Caller police_ = MakeCaller("desk-police", v1::ROLE_DEPARTMENT, kPolice);
  v1::Caller judicial_ = MakeCaller("desk-judicial", v1::ROLE_DEPARTMENT, kJudicial);
};

// ---- The scenario, end to end ----

TEST_F(CaseMachineTest, FullClosedLoop) {
  v1::Case c = NewCase();
  EXPECT_EQ(c.id(), kCaseId);
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(c.owner_id(), kCommunity);
  EXPECT_EQ(c.routed_to_id(), kCommunity);
  EXPECT_EQ(c.reporter(), "gw-wang");
  EXPECT_EQ(c.deadlines().accept_by_ms(), kT0 + 30 * kMinute);
  EXPECT_EQ(c.next_deadline_ms(), kT0 + 30 * kMinute);
  EXPECT_EQ(c.history_length(), 1);

  c = Do(c, Accept(), community_staff_, kT0 + 5 * kMinute);
  EXPECT_EQ(c.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_TRUE(c.accepted_in_time());
  EXPECT_EQ(c.deadlines().accept_by_ms(), 0);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), kT0 + 5 * kMinute + 72 * kHour);

  c = Do(c, Escalate("邻里矛盾激化, 需街道协调"), community_staff_, kT0 + 10 * kMinute);
  EXPECT_EQ(c.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(c.owner_id(), kStreet);
  EXPECT_EQ(c.escalations(), 1);
  EXPECT_EQ(last_effects_.handover_to, kStreet);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), kT0 + 10 * kMinute + 72 * kHour);

  c = Do(c, Whistle({kPolice, kJudicial}), street_staff_, kT0 + 15 * kMinute);
  EXPECT_EQ(c.state(), v1::CASE_STATE_IN_PROGRESS);
  ASSERT_EQ(c.summons_size(), 2);
  EXPECT_EQ(c.summons(0).report_in_by_ms(), kT0 + 15 * kMinute + 2 * kHour);
  EXPECT_EQ(last_effects_.summon, (std::vector<std::string>{kPolice, kJudicial}));
  EXPECT_EQ(c.next_deadline_ms(), kT0 + 15 * kMinute + 2 * kHour);

  c = Do(c, ReportIn(), police_, kT0 + 30 * kMinute);
  c = Do(c, ReportIn(), judicial_, kT0 + 40 * kMinute);
  EXPECT_EQ(c.summons(1).reported_in_at_ms(), kT0 + 40 * kMinute);
  EXPECT_EQ(c.next_deadline_ms(), c.deadlines().resolve_by_ms());

  c = Do(c, Resolve(), police_, kT0 + 3 * kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_IN_PROGRESS);
  c = Do(c, Resolve(), judicial_, kT0 + 4 * kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_TRUE(c.resolved_in_time());
  EXPECT_EQ(c.deadlines().resolve_by_ms(), 0);
  EXPECT_EQ(c.deadlines().verify_by_ms(), kT0 + 28 * kHour);

  c = Do(c, Verify(true), grid_worker_, kT0 + 5 * kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_VERIFIED);
  c = Do(c, Close(), street_staff_, kT0 + 6 * kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_CLOSED);
  EXPECT_EQ(c.closed_at_ms(), kT0 + 6 * kHour);
  EXPECT_EQ(c.deadlines().evaluate_by_ms(), kT0 + 78 * kHour);
  EXPECT_EQ(c.next_deadline_ms(), kT0 + 78 * kHour);  // the evaluate limit fires too
  c = Do(c, Evaluate(5), grid_worker_, kT0 + 7 * kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_EVALUATED);
  EXPECT_EQ(c.satisfaction(), 5);
  EXPECT_EQ(c.updated_at_ms(), kT0 + 7 * kHour);

  using K = v1::TransitionKind;
  const std::vector<K> kinds = {
      v1::TRANSITION_KIND_REPORT,  v1::TRANSITION_KIND_ACCEPT,    v1::TRANSITION_KIND_ESCALATE,
      v1::TRANSITION_KIND_WHISTLE, v1::TRANSITION_KIND_REPORT_IN, v1::TRANSITION_KIND_REPORT_IN,
      v1::TRANSITION_KIND_RESOLVE, v1::TRANSITION_KIND_RESOLVE,   v1::TRANSITION_KIND_VERIFY,
      v1::TRANSITION_KIND_CLOSE,   v1::TRANSITION_KIND_EVALUATE};
  const std::vector<std::string> owners = {kCommunity, kCommunity, kStreet, kStreet,
                                           kStreet,    kStreet,    kStreet, kStreet,
                                           kStreet,    kStreet,    kStreet};
  ASSERT_EQ(history_.size(), kinds.size());
  EXPECT_EQ(c.history_length(), static_cast<int64_t>(kinds.size()));
  for (size_t i = 0; i < history_.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(history_[i].seq(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(history_[i].case_id(), kCaseId);
    EXPECT_EQ(history_[i].kind(), kinds[i]);
    EXPECT_EQ(history_[i].jurisdiction_id(), owners[i]);
    if (i > 0) {
      EXPECT_EQ(history_[i].from_state(), history_[i - 1].to_state());
      EXPECT_EQ(history_[i].from_jurisdiction_id(), owners[i - 1]);
    }
  }
  EXPECT_EQ(history_[2].note(), "邻里矛盾激化, 需街道协调");
  EXPECT_EQ(history_[2].from_jurisdiction_id(), kCommunity);
  EXPECT_EQ(history_[3].department_ids_size(), 2);
  EXPECT_EQ(history_[4].actor().department_id(), kPolice);
  EXPECT_EQ(history_[10].score(), 5);
  EXPECT_EQ(history_[10].to_state(), v1::CASE_STATE_EVALUATED);
}

TEST_F(CaseMachineTest, RoutingFollowsGradedResponse) {
  const std::pair<v1::Severity, std::string> cases[] = {
      {v1::SEVERITY_GENERAL, kCommunity},
      {v1::SEVERITY_SERIOUS, kStreet},
      {v1::SEVERITY_MAJOR, "dwk"},
      {v1::SEVERITY_EXTRAORDINARY, "szs"},
  };
  for (const auto& [severity, owner] : cases) {
    auto routed = RouteReport(NeighbourDispute(severity), ctx_);
    ASSERT_TRUE(routed.ok());
    EXPECT_EQ(*routed, owner) << v1::Severity_Name(severity);
  }
  EXPECT_EQ(*RouteReport(NeighbourDispute(v1::SEVERITY_GENERAL, "public_order"), ctx_), kStreet);
  EXPECT_EQ(*RouteReport(NeighbourDispute(v1::SEVERITY_GENERAL, "petition"), ctx_), kStreet);
  // The checked report carries the route; the case is owned there.
  auto checked = CheckReport(grid_worker_, NeighbourDispute(v1::SEVERITY_MAJOR), ctx_);
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  EXPECT_EQ(checked->owner(), "dwk");
  EXPECT_EQ(Report(*checked, kCaseId, kT0, ctx_)->next.owner_id(), "dwk");
  EXPECT_EQ(NewCase(v1::SEVERITY_SERIOUS).deadlines().accept_by_ms(), kT0 + 10 * kMinute);
}

TEST_F(CaseMachineTest, DispatchKeepReturnReject) {
  v1::Case c = NewCase(v1::SEVERITY_SERIOUS);  // owned by the street
  c = Do(c, Accept(), street_staff_, kT0);
  v1::Case dispatched = Do(c, Dispatch(kPolice), street_staff_, kT0 + kMinute);
  EXPECT_EQ(dispatched.state(), v1::CASE_STATE_DISPATCHED);
  EXPECT_EQ(dispatched.handler_department_id(), kPolice);
  EXPECT_EQ(last_effects_.summon, std::vector<std::string>{kPolice});
  v1::Case in_progress = Do(dispatched, ReportIn(), police_, kT0 + 2 * kMinute);
  EXPECT_EQ(in_progress.state(), v1::CASE_STATE_IN_PROGRESS);
  v1::Case resolved = Do(in_progress, Resolve(), police_, kT0 + 3 * kMinute);
  EXPECT_EQ(resolved.state(), v1::CASE_STATE_RESOLVED);

  v1::Case kept = Do(c, Keep(), street_staff_, kT0 + kMinute);
  EXPECT_EQ(kept.state(), v1::CASE_STATE_IN_PROGRESS);
  v1::Case staff_resolved = Do(kept, Resolve(), street_staff_, kT0 + 2 * kMinute);
  EXPECT_EQ(staff_resolved.state(), v1::CASE_STATE_RESOLVED);

  v1::Case returned = Do(c, Return(), street_staff_, kT0 + kMinute);
  EXPECT_EQ(returned.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(returned.owner_id(), "dwk");
  EXPECT_EQ(returned.deadlines().accept_by_ms(), kT0 + 11 * kMinute);
  EXPECT_EQ(returned.deadlines().resolve_by_ms(), 0);
  EXPECT_EQ(last_effects_.handover_to, "dwk");

  v1::Case rejected = Do(c, Reject(), street_staff_, kT0 + kMinute);
  EXPECT_EQ(rejected.state(), v1::CASE_STATE_REJECTED);
  EXPECT_EQ(rejected.next_deadline_ms(), 0);
  EXPECT_FALSE(IsOpen(rejected.state()));
  EXPECT_TRUE(IsSettled(rejected.state()));

  // A department of another street cannot be dispatched.
  Status other = Fail(c, Dispatch("dwk-s02-police_station"), street_staff_, kT0);
  EXPECT_EQ(other.code(), Code::kInvalidArgument);
  EXPECT_EQ(other.message().rfind("command.dispatch.department_id:", 0), 0u);
  // A county bureau hangs off an ancestor, so it can.
  EXPECT_TRUE(Act(c, Dispatch("dwk-public_security"), street_staff_, kT0).ok());
}

TEST_F(CaseMachineTest, WhistleFromReportedAcceptsImplicitly) {
  v1::Case c = NewCase(v1::SEVERITY_SERIOUS);
  c = Do(c, Whistle({kPolice}), street_staff_, kT0 + kMinute);
  EXPECT_EQ(c.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_TRUE(c.accepted_in_time());
  EXPECT_EQ(c.deadlines().accept_by_ms(), 0);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), kT0 + kMinute + 48 * kHour);
  // Whistling again adds only the new department.
  c = Do(c, Whistle({kPolice, kJudicial}), street_staff_, kT0 + 2 * kMinute);
  EXPECT_EQ(c.summons_size(), 2);
  EXPECT_EQ(last_effects_.summon, std::vector<std::string>{kJudicial});
  EXPECT_EQ(history_.back().department_ids_size(), 1);
}

TEST_F(CaseMachineTest, VerifyNotFixedReopens) {
  v1::Case c = Whistled();
  c = Do(c, Resolve(), street_staff_, kT0 + kHour);
  c = Do(c, Verify(false), grid_worker_, kT0 + 2 * kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(c.deadlines().verify_by_ms(), 0);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), kT0 + 2 * kHour + 72 * kHour);
}

TEST_F(CaseMachineTest, SuperviseByHigherLevel) {
  v1::Case c = NewCase();
  c = Do(c, Supervise(), county_leader_, kT0 + kMinute);
  EXPECT_EQ(c.supervisions(), 1);
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(Fail(c, Supervise(), community_staff_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Supervise(), grid_worker_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Supervise(), hn_leader_, kT0).code(), Code::kPermissionDenied);
}

// ---- Every FAILED_PRECONDITION names the state ----

struct Snapshot {
  std::string label;
  v1::Case c;
};

TEST_F(CaseMachineTest, FailedPreconditionsNameTheState) {
  std::vector<Snapshot> snaps;
  v1::Case c = NewCase();
  snaps.push_back({"reported", c});
  snaps.push_back({"rejected", Do(c, Reject(), city_leader_, kT0)});
  c = Do(c, Accept(), community_staff_, kT0 + kMinute);
  snaps.push_back({"accepted", c});
  c = Do(c, Escalate(), community_staff_, kT0 + 2 * kMinute);
  snaps.push_back({"accepted-street", c});
  snaps.push_back({"dispatched", Do(c, Dispatch(kPolice), street_staff_, kT0 + 3 * kMinute)});
  c = Do(c, Whistle({kPolice}), street_staff_, kT0 + 3 * kMinute);
  snaps.push_back({"in-progress", c});
  c = Do(c, ReportIn(), police_, kT0 + 4 * kMinute);
  c = Do(c, Resolve(), police_, kT0 + 5 * kMinute);
  snaps.push_back({"resolved", c});
  c = Do(c, Verify(true), grid_worker_, kT0 + 6 * kMinute);
  snaps.push_back({"verified", c});
  c = Do(c, Close(), street_staff_, kT0 + 7 * kMinute);
  snaps.push_back({"closed", c});
  c = Do(c, Evaluate(4), grid_worker_, kT0 + 8 * kMinute);
  snaps.push_back({"evaluated", c});

  struct Rule {
    const char* name;
    v1::Command command;
    std::vector<v1::CaseState> allowed;
    const v1::Caller* who = nullptr;  // default: the city leader
  };
  const std::vector<v1::CaseState> active = {v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED,
                                             v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS};
  const std::vector<Rule> rules = {
      {"accept", Accept(), {v1::CASE_STATE_REPORTED}},
      {"dispatch",
       Dispatch("dwk-public_security"),
       {v1::CASE_STATE_ACCEPTED, v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}},
      {"keep", Keep(), {v1::CASE_STATE_ACCEPTED}},
      {"escalate", Escalate(), active},
      {"whistle", Whistle({"dwk-public_security"}), active},
      {"resolve", Resolve(), {v1::CASE_STATE_IN_PROGRESS}},
      {"verify", Verify(true), {v1::CASE_STATE_RESOLVED}},
      {"close", Close(), {v1::CASE_STATE_VERIFIED}},
      {"evaluate", Evaluate(3), {v1::CASE_STATE_CLOSED}, &grid_worker_},
      {"transfer", Transfer("", "dispute.family"), active},
      {"return", Return(), {v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED}},
      {"reject", Reject(), {v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED}},
      {"supervise",
       Supervise(),
       {v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED, v1::CASE_STATE_DISPATCHED,
        v1::CASE_STATE_IN_PROGRESS, v1::CASE_STATE_RESOLVED, v1::CASE_STATE_VERIFIED}},
  };
  int checked = 0;
  for (const auto& rule : rules) {
    for (const auto& snap : snaps) {
      bool allowed = false;
      for (auto s : rule.allowed) allowed |= snap.c.state() == s;
      if (allowed) continue;
      SCOPED_TRACE(std::string(rule.name) + " on " + snap.label);
      Status s = Fail(snap.c, rule.command, rule.who ? *rule.who : city_leader_, kT0 + kHour);
      EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
      EXPECT_NE(
          s.message().find("case szs-000000000001 is " + v1::CaseState_Name(snap.c.state()) + "; "),
          std::string::npos)
          << s.message();
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);

  const v1::Case& closed = snaps[8].c;
  EXPECT_EQ(Fail(closed, Accept(), city_leader_, kT0).message(),
            "case szs-000000000001 is CASE_STATE_CLOSED; accept needs CASE_STATE_REPORTED");
  EXPECT_EQ(Fail(snaps[0].c, Whistle({kPolice}), community_staff_, kT0).message(),
            "case szs-000000000001 is CASE_STATE_REPORTED; owner \"dwk-s01-c03\" is "
            "LEVEL_COMMUNITY; whistle needs LEVEL_TOWNSHIP or higher");

  // Department paths.
  const v1::Case& in_progress = snaps[5].c;
  v1::Case reported_in = Do(in_progress, ReportIn(), police_, kT0 + kHour);
  EXPECT_EQ(Fail(reported_in, ReportIn(), police_, kT0 + kHour).message(),
            "case szs-000000000001 is CASE_STATE_IN_PROGRESS; department "
            "\"dwk-s01-police_station\" has no pending summons");
  Status early = Fail(in_progress, Resolve(), police_, kT0 + kHour);
  EXPECT_EQ(early.code(), Code::kFailedPrecondition);
  EXPECT_NE(early.message().find("is CASE_STATE_IN_PROGRESS"), std::string::npos);
  Status late = Fail(snaps[6].c, ReportIn(), police_, kT0 + kHour);
  EXPECT_EQ(late.message(),
            "case szs-000000000001 is CASE_STATE_RESOLVED; report_in needs "
            "CASE_STATE_DISPATCHED or CASE_STATE_IN_PROGRESS");

  // Nowhere to go above the city.
  v1::Case top = NewCase(v1::SEVERITY_EXTRAORDINARY);
  EXPECT_EQ(Fail(top, Escalate(), city_leader_, kT0).message(),
            "case szs-000000000001 is CASE_STATE_REPORTED; owner \"szs\" is already at the top");
  EXPECT_EQ(Fail(top, Return(), city_leader_, kT0).code(), Code::kFailedPrecondition);
  // Dispatching an already summoned department.
  EXPECT_EQ(Fail(in_progress, Dispatch(kPolice), street_staff_, kT0).code(),
            Code::kFailedPrecondition);
}

// ---- Permissions ----

TEST_F(CaseMachineTest, ReportPermissions) {
  auto other = ReportAs(NeighbourDispute(), other_grid_worker_);
  EXPECT_EQ(other.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(other.status().message(),
            "caller jurisdiction \"dwk-s01-c03-g001\" does not contain grid "
            "\"dwk-s01-c03-g002\"");
  auto department = ReportAs(NeighbourDispute(), police_);
  EXPECT_EQ(department.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(department.status().message(),
            "departments do not report cases; department \"dwk-s01-police_station\"");
  EXPECT_EQ(ReportAs(NeighbourDispute(), hn_leader_).status().code(), Code::kPermissionDenied);
  // One-window intake: staff anywhere above the grid may report.
  auto staff = ReportAs(NeighbourDispute(), county_leader_);
  ASSERT_TRUE(staff.ok());
  EXPECT_EQ(staff->next.owner_id(), kCommunity);
  EXPECT_EQ(staff->next.reporter(), "ld-dwk");
  // The caller is checked first, then the report, then the permission.
  v1::ReportCommand bad = NeighbourDispute();
  bad.clear_text();
  EXPECT_EQ(ReportAs(bad, MakeCaller("u", v1::ROLE_STAFF, "ghost")).status().message(),
            "caller.jurisdiction_id: unknown jurisdiction \"ghost\"");
  EXPECT_EQ(ReportAs(bad, other_grid_worker_).status().message(), "report.text: required");
  EXPECT_EQ(ReportAs(NeighbourDispute(), grid_worker_, "").status().message(), "case_id: required");
}

TEST_F(CaseMachineTest, ActionPermissions) {
  v1::Case c = NewCase();
  Status s = Fail(c, Accept(), hn_leader_, kT0);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "caller jurisdiction \"hn\" has no authority over owner \"dwk-s01-c03\" of case "
            "szs-000000000001");
  EXPECT_EQ(Fail(c, Reject(), hn_leader_, kT0).code(), Code::kPermissionDenied);
  Status gw = Fail(c, Accept(), grid_worker_, kT0);
  EXPECT_EQ(gw.code(), Code::kPermissionDenied);
  EXPECT_EQ(gw.message(), "role ROLE_GRID_WORKER may not accept case szs-000000000001");
  EXPECT_EQ(Fail(c, Accept(), police_, kT0).code(), Code::kPermissionDenied);
  // Staff of a sibling community.
  auto sibling = MakeCaller("cs-x", v1::ROLE_STAFF, "dwk-s01-c04");
  EXPECT_EQ(Fail(c, Accept(), sibling, kT0).code(), Code::kPermissionDenied);
  // Permission is checked before state: a closed case still says PERMISSION_DENIED.
  v1::Case closed = c;
  closed.set_state(v1::CASE_STATE_CLOSED);
  EXPECT_EQ(Fail(closed, Accept(), hn_leader_, kT0).code(), Code::kPermissionDenied);
}

TEST_F(CaseMachineTest, CommunityStaffMayNotWhistle) {
  v1::Case c = NewCase();
  c = Do(c, Accept(), community_staff_, kT0);
  // At the community the level is wrong ...
  Status own = Fail(c, Whistle({kPolice}), community_staff_, kT0);
  EXPECT_EQ(own.code(), Code::kFailedPrecondition);
  EXPECT_NE(own.message().find("LEVEL_COMMUNITY"), std::string::npos);
  // ... and once the street owns it, the community has no authority.
  c = Do(c, Escalate(), community_staff_, kT0);
  EXPECT_EQ(Fail(c, Whistle({kPolice}), community_staff_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Whistle({kPolice}), hn_leader_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Whistle({"hn-s01-police_station"}), street_staff_, kT0).code(),
            Code::kInvalidArgument);
}

TEST_F(CaseMachineTest, DepartmentsActOnlyForThemselves) {
  v1::Case c = NewCase(v1::SEVERITY_SERIOUS);
  c = Do(c, Whistle({kPolice}), street_staff_, kT0);
  Status s = Fail(c, ReportIn(), judicial_, kT0);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "department \"dwk-s01-judicial_office\" was not summoned to case szs-000000000001");
  EXPECT_EQ(Fail(c, Resolve(), judicial_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Accept(), police_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Escalate(), police_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, ReportIn(), street_staff_, kT0).code(), Code::kPermissionDenied);
}

TEST_F(CaseMachineTest, VerifyAndEvaluatePermissions) {
  v1::Case c = Whistled();
  c = Do(c, Resolve(), street_staff_, kT0 + kHour);
  EXPECT_EQ(Fail(c, Verify(true), other_grid_worker_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Verify(true), community_staff_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Verify(true), police_, kT0).code(), Code::kPermissionDenied);
  c = Do(c, Verify(true), county_leader_, kT0 + kHour);
  c = Do(c, Close(), street_staff_, kT0 + kHour);
  EXPECT_EQ(Fail(c, Evaluate(5), other_grid_worker_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Evaluate(5), hn_leader_, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, OnBehalf(5), hn_leader_, kT0).code(), Code::kPermissionDenied);
  // A grid worker's report is rated by that grid worker (it asks the
  // resident): nobody rates in its place, not even on the resident's behalf.
  v1::Caller other_street_staff = MakeCaller("ss-other", v1::ROLE_STAFF, kStreet);
  EXPECT_EQ(Fail(c, Evaluate(2), other_street_staff, kT0).code(), Code::kPermissionDenied);
  Status blocked = Fail(c, OnBehalf(2), other_street_staff, kT0);
  EXPECT_EQ(blocked.code(), Code::kPermissionDenied);
  EXPECT_NE(blocked.message().find("who rates it for the resident"), std::string::npos)
      << blocked.message();
  // A case staff took in (a hotline call): staff who did not handle it rate
  // on the resident's behalf only, marked so; the staff reporter's own
  // rating is marked on behalf too (it is not the resident's voice).
  v1::Case desk = c;
  desk.set_reporter("desk-li");
  desk.set_reporter_role(v1::ROLE_STAFF);
  EXPECT_EQ(Fail(desk, Evaluate(2), other_street_staff, kT0).code(), Code::kPermissionDenied);
  auto rated = Act(desk, OnBehalf(2), other_street_staff, kT0);
  ASSERT_TRUE(rated.ok()) << rated.status().ToString();
  EXPECT_TRUE(rated->next.evaluated_on_behalf());
  EXPECT_TRUE(rated->entry.on_behalf());
  auto by_reporter = Act(desk, Evaluate(4), MakeCaller("desk-li", v1::ROLE_STAFF, kStreet), kT0);
  ASSERT_TRUE(by_reporter.ok()) << by_reporter.status().ToString();
  EXPECT_TRUE(by_reporter->next.evaluated_on_behalf());
}

// The reporter evaluates as the reporter only in the role it reported in: the
// same user name with another role has that role's rights, no more.
TEST_F(CaseMachineTest, ReporterEvaluatesOnlyInItsReportingRole) {
  v1::Case c = Whistled();
  EXPECT_EQ(c.reporter(), grid_worker_.user());
  EXPECT_EQ(c.reporter_role(), v1::ROLE_GRID_WORKER);
  c = Do(c, Resolve(), street_staff_, kT0 + kHour);
  c = Do(c, Verify(true), county_leader_, kT0 + kHour);
  c = Do(c, Close(), street_staff_, kT0 + kHour);
  v1::Caller same_user_staff = MakeCaller(grid_worker_.user(), v1::ROLE_STAFF, "hn");
  v1::Caller same_user_dept = MakeCaller(grid_worker_.user(), v1::ROLE_DEPARTMENT, kPolice);
  EXPECT_EQ(Fail(c, Evaluate(5), same_user_staff, kT0).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Evaluate(5), same_user_dept, kT0).code(), Code::kPermissionDenied);
  // A case recorded before reporter_role existed: authority only.
  v1::Case legacy = c;
  legacy.clear_reporter_role();
  EXPECT_EQ(Fail(legacy, Evaluate(5), grid_worker_, kT0).code(), Code::kPermissionDenied);
  EXPECT_TRUE(Act(c, Evaluate(5), grid_worker_, kT0).ok());
}

TEST_F(CaseMachineTest, OnlyTheSystemRecordsOverdue) {
  v1::Case c = NewCase();
  Status human = Fail(c, Overdue(), city_leader_, kT0 + kHour);
  EXPECT_EQ(human.code(), Code::kPermissionDenied);
  EXPECT_EQ(human.message(), "overdue is recorded by the node itself, not by \"ld-szs\"");
  // The system caller is no caller from outside: it never passes the check.
  EXPECT_EQ(CheckCommand(SystemCaller(), Accept(), ctx_).status().message(),
            "caller.role: required");
  EXPECT_EQ(SystemCaller().user(), "system");
  EXPECT_EQ(SystemCaller().role(), v1::ROLE_UNSPECIFIED);
  EXPECT_TRUE(IsSystemCaller(SystemCaller()));
  EXPECT_FALSE(IsSystemCaller(city_leader_));
  v1::OverdueCommand long_name;
  long_name.set_deadline(std::string(65, 'd'));
  EXPECT_EQ(ApplyOverdue(c, long_name, kT0 + kHour, ctx_).status().message(),
            "command.overdue.deadline: must be at most 64 bytes, got 65");
}

// ---- Deadlines ----

TEST_F(CaseMachineTest, CasesStayInsideTheHostedSubtree) {
  // A node hosting only the community: nothing can climb above it yet.
  ctx_.hosted_root = kCommunity;
  v1::Case c = Do(NewCase(), Accept(), community_staff_, kT0 + kMinute);
  Status s = Fail(c, Escalate(), community_staff_, kT0 + 2 * kMinute);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("hosted by another node"), std::string::npos) << s.message();
  // A missed deadline is still counted, but the case stays where it is.
  c = Do(c, Overdue(), SystemCaller(), c.deadlines().dispatch_by_ms() + 1);
  EXPECT_EQ(c.overdue_count(), 1);
  EXPECT_EQ(c.owner_id(), kCommunity);
  EXPECT_TRUE(last_effects_.handover_to.empty());
  ctx_.hosted_root = {};
}

TEST_F(CaseMachineTest, MissedAcceptEscalates) {
  v1::Case c = NewCase();
  const int64_t accept_by = c.deadlines().accept_by_ms();
  Status early = Fail(c, Overdue(), SystemCaller(), accept_by);
  EXPECT_EQ(early.code(), Code::kFailedPrecondition);
  EXPECT_EQ(early.message(), "case szs-000000000001 is CASE_STATE_REPORTED; nothing overdue at " +
                                 std::to_string(accept_by));

  c = Do(c, Overdue(), SystemCaller(), accept_by + 1);
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(c.owner_id(), kStreet);
  EXPECT_EQ(c.overdue_count(), 1);
  EXPECT_EQ(c.escalations(), 1);
  EXPECT_EQ(c.deadlines().accept_by_ms(), accept_by + 1 + 30 * kMinute);
  EXPECT_EQ(c.next_deadline_ms(), c.deadlines().accept_by_ms());
  EXPECT_EQ(last_effects_.handover_to, kStreet);
  EXPECT_EQ(history_.back().kind(), v1::TRANSITION_KIND_OVERDUE);
  EXPECT_EQ(history_.back().from_jurisdiction_id(), kCommunity);
  EXPECT_EQ(history_.back().jurisdiction_id(), kStreet);
  EXPECT_EQ(history_.back().actor().user(), "system");

  EXPECT_EQ(Missed(history_.back()), (std::vector<std::string>{"accept"}));
  EXPECT_TRUE(history_.back().notice_to_id().empty());

  // Accepted late at the street.
  v1::Case accepted = Do(c, Accept(), street_staff_, accept_by + 1 + 31 * kMinute);
  EXPECT_FALSE(accepted.accepted_in_time());
  // Even inside the street's own window: the case was not accepted in time.
  accepted = Do(c, Accept(), street_staff_, accept_by + 1 + kMinute);
  EXPECT_FALSE(accepted.accepted_in_time());

  // "小事不出社区": the street is the limit. Missed again, the case stays at
  // the street; the county gets a supervision notice each time, and the
  // street a new window so the next miss is noticed again.
  int64_t now = c.deadlines().accept_by_ms();
  for (int round = 1; round <= 3; ++round) {
    SCOPED_TRACE(round);
    c = Do(c, Overdue(), SystemCaller(), now + 1);
    EXPECT_EQ(c.owner_id(), kStreet);
    EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
    EXPECT_EQ(c.escalations(), 1);
    EXPECT_EQ(c.supervisions(), round);
    EXPECT_EQ(c.overdue_count(), round + 1);
    EXPECT_TRUE(last_effects_.handover_to.empty());
    EXPECT_EQ(history_.back().notice_to_id(), "dwk");
    EXPECT_EQ(Missed(history_.back()), (std::vector<std::string>{"accept"}));
    EXPECT_EQ(c.deadlines().accept_by_ms(), now + 1 + 30 * kMinute);
    // The standing notice the county lists (InboxService.SupervisionNotices).
    EXPECT_EQ(c.notice_to_id(), "dwk");
    EXPECT_EQ(c.noticed_at_ms(), now + 1);
    EXPECT_EQ(c.notices(), round);
    EXPECT_EQ(std::vector<std::string>(c.notice_missed().begin(), c.notice_missed().end()),
              (std::vector<std::string>{"accept"}));
    now = c.deadlines().accept_by_ms();
  }
  // Accepted: the case is still open at the street, the notice stands.
  c = Do(c, Accept(), street_staff_, now);
  EXPECT_EQ(c.notice_to_id(), "dwk");
  EXPECT_EQ(c.notices(), 3);
  // Handed to the county: the street's notice ends.
  c = Do(c, Escalate(), street_staff_, now + kMinute);
  EXPECT_EQ(c.owner_id(), "dwk");
  EXPECT_TRUE(c.notice_to_id().empty());
  EXPECT_EQ(c.notices(), 0);
  EXPECT_EQ(c.noticed_at_ms(), 0);
  EXPECT_EQ(c.notice_missed_size(), 0);
}

TEST_F(CaseMachineTest, AcceptedButNotDispatchedInAnHourEscalates) {
  v1::Case c = Do(NewCase(), Accept(), community_staff_, kT0 + kMinute);
  const int64_t dispatch_by = kT0 + kMinute + kHour;
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), dispatch_by);
  EXPECT_EQ(c.next_deadline_ms(), dispatch_by);
  c = Do(c, Overdue(), SystemCaller(), dispatch_by + 1);
  EXPECT_EQ(c.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(c.owner_id(), kStreet);
  EXPECT_EQ(c.overdue_count(), 1);
  EXPECT_EQ(history_.back().note(), "dispatch");
  // The street gets its own hour; keeping the case ends the window.
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), dispatch_by + 1 + kHour);
  c = Do(c, Keep(), street_staff_, dispatch_by + 2);
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), 0);
  EXPECT_EQ(c.next_deadline_ms(), c.deadlines().resolve_by_ms());
}

TEST_F(CaseMachineTest, NoShowsAreMarked) {
  v1::Case c = Whistled();
  const int64_t whistled_at = kT0 + 15 * kMinute;
  c = Do(c, ReportIn(), police_, whistled_at + kHour);
  const int64_t report_in_by = whistled_at + 2 * kHour;
  EXPECT_EQ(c.next_deadline_ms(), report_in_by);
  c = Do(c, Overdue(), SystemCaller(), report_in_by + 1);
  EXPECT_EQ(last_effects_.no_shows, std::vector<std::string>{kJudicial});
  EXPECT_TRUE(last_effects_.handover_to.empty());
  EXPECT_FALSE(c.summons(0).no_show());
  EXPECT_TRUE(c.summons(1).no_show());
  EXPECT_EQ(c.summons(1).report_in_by_ms(), 0);
  EXPECT_EQ(c.overdue_count(), 0);
  EXPECT_EQ(c.owner_id(), kStreet);
  EXPECT_EQ(c.next_deadline_ms(), c.deadlines().resolve_by_ms());
  EXPECT_EQ(history_.back().department_ids(0), kJudicial);
  // A late department may still report in.
  c = Do(c, ReportIn(), judicial_, report_in_by + kHour);
  EXPECT_TRUE(c.summons(1).no_show());
}

// The street owns a general matter: the policy escalates it no higher than
// the township, so a missed resolve there notifies the county (督办) and the
// street keeps the case with a new resolve deadline; resolving later is late.
TEST_F(CaseMachineTest, MissedResolveAtTheLimitNotifiesTheLevelAbove) {
  v1::Case c = Whistled();
  const int64_t resolve_by = c.deadlines().resolve_by_ms();
  c = Do(c, ReportIn(), police_, kT0 + kHour);
  c = Do(c, ReportIn(), judicial_, kT0 + kHour);
  c = Do(c, Overdue(), SystemCaller(), resolve_by + 1);
  EXPECT_EQ(c.state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_EQ(c.owner_id(), kStreet);
  EXPECT_TRUE(last_effects_.handover_to.empty());
  EXPECT_EQ(c.overdue_count(), 1);
  EXPECT_EQ(c.supervisions(), 1);
  EXPECT_EQ(history_.back().notice_to_id(), "dwk");
  EXPECT_EQ(Missed(history_.back()), (std::vector<std::string>{"resolve"}));
  EXPECT_EQ(c.deadlines().resolve_by_ms(), resolve_by + 1 + 72 * kHour);
  EXPECT_EQ(c.next_deadline_ms(), c.deadlines().resolve_by_ms());
  EXPECT_TRUE(c.resolve_missed());
  EXPECT_EQ(c.notice_to_id(), "dwk");
  EXPECT_EQ(c.notices(), 1);
  c = Do(c, Resolve(), street_staff_, resolve_by + kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_FALSE(c.resolved_in_time());
  EXPECT_TRUE(c.notice_to_id().empty()) << "resolved: the notice is answered";
  EXPECT_EQ(c.summons(0).done_at_ms(), resolve_by + kHour);

  const int64_t verify_by = c.deadlines().verify_by_ms();
  c = Do(c, Overdue(), SystemCaller(), verify_by + 1);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(c.overdue_count(), 2);
  EXPECT_EQ(c.supervisions(), 2);
  EXPECT_EQ(Missed(history_.back()), (std::vector<std::string>{"verify"}));
  EXPECT_EQ(c.notice_to_id(), "dwk");
  EXPECT_EQ(c.notices(), 1) << "a fresh notice after resolution counts from one";
  EXPECT_EQ(c.deadlines().verify_by_ms(), verify_by + 1 + 24 * kHour);
  EXPECT_EQ(c.next_deadline_ms(), c.deadlines().verify_by_ms());
}

// Below the limit a missed resolve escalates, and the new owner holds the
// case with deadlines for its next step (the hole: "deadlines": {}).
TEST_F(CaseMachineTest, MissedResolveBelowTheLimitEscalatesWithDeadlines) {
  v1::Case c = Do(NewCase(), Accept(), community_staff_, kT0 + kMinute);
  c = Do(c, Keep(), community_staff_, kT0 + 2 * kMinute);
  const int64_t resolve_by = c.deadlines().resolve_by_ms();
  const int64_t at = resolve_by + 1;
  c = Do(c, Overdue(), SystemCaller(), at);
  EXPECT_EQ(c.owner_id(), kStreet);
  EXPECT_EQ(last_effects_.handover_to, kStreet);
  EXPECT_EQ(c.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(c.escalations(), 1);
  EXPECT_EQ(c.supervisions(), 0);
  EXPECT_TRUE(history_.back().notice_to_id().empty());
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), at + kHour);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), at + 72 * kHour);
  EXPECT_EQ(c.next_deadline_ms(), at + kHour);
  // Manual escalation too: the county gets deadlines.
  v1::Caller street_leader = MakeCaller("ld-s01", v1::ROLE_LEADER, kStreet);
  c = Do(c, Escalate(), street_leader, at + kMinute);
  EXPECT_EQ(c.owner_id(), "dwk");
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), at + kMinute + kHour);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), at + kMinute + 72 * kHour);
  // The county is above the limit: a missed dispatch notifies the city and
  // keeps the case at the county with a new hour.
  c = Do(c, Overdue(), SystemCaller(), at + kMinute + kHour + 1);
  EXPECT_EQ(c.owner_id(), "dwk");
  EXPECT_EQ(history_.back().notice_to_id(), "szs");
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), at + kMinute + 2 * kHour + 1);
}

// ---- Field validation ----

TEST_F(CaseMachineTest, CheckReportNamesTheField) {
  auto error = [this](const v1::ReportCommand& r) {
    Status s = CheckReport(grid_worker_, r, ctx_).status();
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    return s.message();
  };
  EXPECT_TRUE(CheckReport(grid_worker_, NeighbourDispute(), ctx_).ok());
  v1::ReportCommand r = NeighbourDispute();
  r.clear_request_id();
  EXPECT_EQ(error(r), "report.request_id: required");
  r = NeighbourDispute();
  r.set_request_id(std::string(129, 'x'));
  EXPECT_EQ(error(r), "report.request_id: must be at most 128 bytes, got 129");
  r = NeighbourDispute();
  r.set_category("ufo");
  EXPECT_EQ(error(r), "report.category: unknown category \"ufo\"");
  r = NeighbourDispute();
  r.clear_severity();
  EXPECT_EQ(error(r).rfind("report.severity: required", 0), 0u);
  r = NeighbourDispute();
  r.mutable_place()->set_grid_id("nowhere");
  EXPECT_EQ(error(r), "report.place.grid_id: unknown grid \"nowhere\"");
  r.mutable_place()->set_grid_id(kCommunity);
  EXPECT_EQ(error(r), "report.place.grid_id: \"dwk-s01-c03\" is LEVEL_COMMUNITY, not a grid");
  r.mutable_place()->clear_grid_id();
  EXPECT_EQ(error(r), "report.place.grid_id: required");
  r = NeighbourDispute();
  r.mutable_place()->set_latitude(91);
  EXPECT_EQ(error(r).rfind("report.place.latitude:", 0), 0u);
  r = NeighbourDispute();
  r.mutable_place()->set_longitude(-181);
  EXPECT_EQ(error(r).rfind("report.place.longitude:", 0), 0u);
  r = NeighbourDispute();
  r.clear_text();
  EXPECT_EQ(error(r), "report.text: required");
  r.set_text(std::string(4001, 'x'));
  EXPECT_EQ(error(r), "report.text: must be at most 4000 bytes, got 4001");
  r = NeighbourDispute();
  r.add_attachments();
  EXPECT_EQ(error(r), "report.attachments[1].uri: required");
  r = NeighbourDispute();
  r.mutable_attachments(0)->set_uri(std::string(2049, 'u'));
  EXPECT_EQ(error(r).rfind("report.attachments[0].uri:", 0), 0u);
  r = NeighbourDispute();
  for (int i = 0; i < 20; ++i) r.add_attachments()->set_uri("u");
  EXPECT_EQ(error(r), "report.attachments: at most 20 allowed, got 21");
}

TEST_F(CaseMachineTest, CheckCommandNamesTheField) {
  auto error = [this](const v1::Command& c) {
    Status s = CheckCommand(street_staff_, c, ctx_).status();
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    return s.message();
  };
  EXPECT_EQ(error(v1::Command()), "command: no action set");
  v1::Command report;
  report.mutable_report();
  EXPECT_EQ(error(report).rfind("command.report:", 0), 0u);
  EXPECT_EQ(error(Escalate("")), "command.escalate.reason: required");
  EXPECT_EQ(error(Return("")), "command.return_case.reason: required");
  EXPECT_EQ(error(Reject("")), "command.reject.reason: required");
  EXPECT_EQ(error(Whistle({})), "command.whistle.department_ids: at least one required");
  EXPECT_EQ(error(Whistle({kPolice, "ghost"})),
            "command.whistle.department_ids[1]: unknown department \"ghost\"");
  EXPECT_EQ(error(Whistle({kPolice, kPolice})),
            "command.whistle.department_ids[1]: duplicate \"dwk-s01-police_station\"");
  EXPECT_EQ(error(Evaluate(7)), "command.evaluate.score: must be 1..5, got 7");
  EXPECT_EQ(error(Evaluate(0)), "command.evaluate.score: must be 1..5, got 0");
  EXPECT_EQ(error(Dispatch("")), "command.dispatch.department_id: required");
  EXPECT_EQ(error(Dispatch("ghost")),
            "command.dispatch.department_id: unknown department \"ghost\"");
  v1::Command note = Accept();
  note.mutable_accept()->set_note(std::string(4001, 'n'));
  EXPECT_EQ(error(note), "command.accept.note: must be at most 4000 bytes, got 4001");
  EXPECT_TRUE(CheckCommand(street_staff_, Supervise(), ctx_).ok());
  // The caller is checked before the command.
  EXPECT_EQ(
      CheckCommand(MakeCaller("", v1::ROLE_STAFF, kStreet), Evaluate(7), ctx_).status().message(),
      "caller.user: required");
}

TEST_F(CaseMachineTest, CheckCallerNamesTheField) {
  auto error = [this](const v1::Caller& c) {
    Status s = CheckCaller(c, ctx_).status();
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    return s.message();
  };
  EXPECT_TRUE(CheckCaller(grid_worker_, ctx_).ok());
  EXPECT_EQ(CheckCaller(police_, ctx_)->get().department_id(), kPolice);
  EXPECT_EQ(error(MakeCaller("", v1::ROLE_STAFF, kStreet)), "caller.user: required");
  EXPECT_EQ(error(MakeCaller(std::string(129, 'u'), v1::ROLE_STAFF, kStreet))
                .rfind("caller.user: must be at most 128", 0),
            0u);
  EXPECT_EQ(error(MakeCaller("u", v1::ROLE_UNSPECIFIED, kStreet)), "caller.role: required");
  EXPECT_EQ(error(MakeCaller("u", v1::ROLE_STAFF, "ghost")),
            "caller.jurisdiction_id: unknown jurisdiction \"ghost\"");
  EXPECT_EQ(error(MakeCaller("u", v1::ROLE_LEADER, "")),
            "caller.jurisdiction_id: required for role ROLE_LEADER");
  EXPECT_EQ(error(MakeCaller("u", v1::ROLE_DEPARTMENT, "ghost")),
            "caller.department_id: unknown department \"ghost\"");
  EXPECT_EQ(error(MakeCaller("u", v1::ROLE_GRID_WORKER, kCommunity)),
            "caller.jurisdiction_id: a grid worker belongs to a grid; \"dwk-s01-c03\" is "
            "LEVEL_COMMUNITY");
}

// Only the Check functions make checked values: an unchecked caller, report
// or command cannot reach Report or Apply.
static_assert(!std::is_default_constructible_v<CheckedCaller>);
static_assert(!std::is_constructible_v<CheckedCaller, v1::Caller>);
static_assert(!std::is_convertible_v<v1::Caller, CheckedCaller>);
static_assert(!std::is_default_constructible_v<CheckedReport>);
static_assert(
    !std::is_constructible_v<CheckedReport, CheckedCaller, v1::ReportCommand, std::string>);
static_assert(!std::is_default_constructible_v<CheckedCommand>);
static_assert(!std::is_constructible_v<CheckedCommand, CheckedCaller, v1::Command>);

// ---- The transition table ----

// The lines of the comment table at the top of core/case_machine.cc, without "// ".
std::string CommentTable() {
  std::ifstream in(WHISTLE_SOURCE_DIR "/core/case_machine.cc");
  std::string line, out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("// command ", 0) == 0) inside = true;
    if (!inside) continue;
    if (line == "//") break;
    out += line.substr(line.size() > 2 ? 3 : 2) + "\n";
  }
  return out;
}

TEST(TransitionTableTest, TheCommentMirrorsTheCode) {
  const std::string code = TransitionTable();
  EXPECT_EQ(CommentTable(), code) << "paste this at the top of core/case_machine.cc:\n"
                                  << [&] {
                                       std::istringstream lines(code);
                                       std::string line, out;
                                       while (std::getline(lines, line))
                                         out += (line.empty() ? "//" : "// " + line) + "\n";
                                       return out;
                                     }();
  // Every line fits the 100 columns of .clang-format once commented.
  std::istringstream lines(code);
  std::string line;
  while (std::getline(lines, line)) EXPECT_LE(line.size() + 3, 100u) << line;
}

TEST_F(CaseMachineTest, EveryCommandHasARule) {
  // A command kind without a row would answer "command: no action set".
  v1::Case c = NewCase();
  for (const v1::Command& command :
       {Accept(), Dispatch(kPolice), Keep(), Escalate(), Whistle({kPolice}), ReportIn(), Resolve(),
        Verify(true), Close(), Evaluate(3), Return(), Reject(), Supervise(), Overdue(),
        Transfer("dwk-s01-c04"), Refuse()}) {
    SCOPED_TRACE(command.ShortDebugString());
    for (const v1::Caller& caller : {city_leader_, police_}) {
      auto t = Act(c, command, caller, kT0);
      if (!t.ok()) {
        EXPECT_NE(t.status().message(), "command: no action set");
      }
    }
  }
  EXPECT_EQ(v1::Command::descriptor()->oneof_decl(0)->field_count(), 17)
      << "a new command needs a row in kRules (core/case_machine.cc)";
}

TEST(CaseStateTest, OpenAndSettled) {
  EXPECT_TRUE(IsOpen(v1::CASE_STATE_REPORTED));
  EXPECT_TRUE(IsOpen(v1::CASE_STATE_VERIFIED));
  EXPECT_FALSE(IsOpen(v1::CASE_STATE_CLOSED));
  EXPECT_FALSE(IsOpen(v1::CASE_STATE_EVALUATED));
  EXPECT_FALSE(IsOpen(v1::CASE_STATE_REJECTED));
  EXPECT_FALSE(IsSettled(v1::CASE_STATE_RESOLVED));
  EXPECT_TRUE(IsSettled(v1::CASE_STATE_CLOSED));
}

}  // namespace
}  // namespace whistle::core

// ---- Whistling downward; supervision is a leader's ----

namespace whistle::core {
namespace {

TEST_F(CaseMachineTest, CountyAndCityLeadersAndTheOwnersStaffWhistleDownward) {
  // A case owned by the county 大武口区.
  v1::Case c = NewCase();
  c = Do(c, Escalate(), community_staff_, kT0 + kMinute);
  c = Do(c, Escalate(), street_staff_, kT0 + 2 * kMinute);
  ASSERT_EQ(c.owner_id(), "dwk");

  // The county leader summons a township's police station and judicial office.
  v1::Case by_leader = Do(c, Whistle({kPolice, kJudicial}), county_leader_, kT0 + 3 * kMinute);
  EXPECT_EQ(by_leader.summons_size(), 2);
  EXPECT_EQ(last_effects_.summon, (std::vector<std::string>{kPolice, kJudicial}));
  // So does the city leader, and the county's own staff (dispatch too).
  EXPECT_TRUE(Act(c, Whistle({kPolice}), city_leader_, kT0 + 3 * kMinute).ok());
  v1::Caller county_staff = MakeCaller("cs-dwk", v1::ROLE_STAFF, "dwk");
  EXPECT_TRUE(Act(c, Whistle({kPolice}), county_staff, kT0 + 3 * kMinute).ok());
  EXPECT_TRUE(Act(c, Dispatch(kPolice), county_staff, kT0 + 4 * kMinute).ok());

  // City staff has authority over the county's case but is neither its
  // owner's staff nor a leader: upward only.
  v1::Caller city_staff = MakeCaller("cs-szs", v1::ROLE_STAFF, "szs");
  Status down = Fail(c, Whistle({kPolice}), city_staff, kT0 + 3 * kMinute);
  EXPECT_EQ(down.code(), Code::kInvalidArgument);
  EXPECT_EQ(down.message().rfind("command.whistle.department_ids[0]: \"" + std::string(kPolice) +
                                     "\" hangs neither off owner \"dwk\"",
                                 0),
            0u)
      << down.message();
  EXPECT_TRUE(Act(c, Whistle({"dwk-public_security"}), city_staff, kT0 + 3 * kMinute).ok());

  // Another county's township stays out of reach, even for the city leader.
  Status other = Fail(c, Whistle({"hn-s01-police_station"}), city_leader_, kT0 + 3 * kMinute);
  EXPECT_EQ(other.code(), Code::kInvalidArgument);

  // A township-owned case: the township's staff may not reach down past it
  // to a sibling township (not in the owner's subtree).
  v1::Case street = NewCase();
  street = Do(street, Escalate(), community_staff_, kT0 + kMinute);
  EXPECT_EQ(Fail(street, Whistle({"dwk-s02-police_station"}), street_staff_, kT0 + kHour).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Fail(street, Whistle({"dwk-s02-police_station"}), county_leader_, kT0 + kHour).code(),
            Code::kInvalidArgument);
}

TEST_F(CaseMachineTest, OnlyLeadersSupervise) {
  v1::Case c = NewCase();
  v1::Caller county_staff = MakeCaller("cs-dwk", v1::ROLE_STAFF, "dwk");
  Status s = Fail(c, Supervise(), county_staff, kT0 + kMinute);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("only a leader"), std::string::npos) << s.message();
  EXPECT_TRUE(Act(c, Supervise(), county_leader_, kT0 + kMinute).ok());
  EXPECT_TRUE(Act(c, Supervise(), city_leader_, kT0 + kMinute).ok());
  // Staff keep the daily work: accepting is theirs.
  EXPECT_TRUE(Act(c, Accept(), community_staff_, kT0 + kMinute).ok());
}

}  // namespace
}  // namespace whistle::core

// ---- The closed loop's holes (issue 8) ----

namespace whistle::core {
namespace {

// The owner's resolve does not stamp a department that never reported in:
// a no-show stays one; a pending summons stays pending and becomes a no-show
// when its deadline passes, even on a resolved case.
TEST_F(CaseMachineTest, OwnersResolveKeepsNoShowsAndPendingSummons) {
  v1::Case c = Whistled();  // police and judicial summoned at kT0 + 15 min
  const int64_t report_in_by = c.summons(0).report_in_by_ms();
  c = Do(c, ReportIn(), police_, kT0 + 20 * kMinute);
  c = Do(c, Resolve(), street_staff_, kT0 + kHour);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(c.summons(0).done_at_ms(), kT0 + kHour);  // police came: done
  EXPECT_EQ(c.summons(1).done_at_ms(), 0);            // judicial never came
  EXPECT_EQ(c.summons(1).report_in_by_ms(), report_in_by);
  EXPECT_EQ(c.next_deadline_ms(), report_in_by);
  c = Do(c, Overdue(), SystemCaller(), report_in_by + 1);
  EXPECT_TRUE(c.summons(1).no_show());
  EXPECT_EQ(c.summons(1).done_at_ms(), 0);
  EXPECT_EQ(Missed(history_.back()), (std::vector<std::string>{"report_in"}));
  EXPECT_EQ(history_.back().department_ids(0), kJudicial);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);

  // A no-show before the resolve stays one after it.
  v1::Case d = Whistled();
  d = Do(d, Overdue(), SystemCaller(), report_in_by + 1);
  ASSERT_TRUE(d.summons(0).no_show());
  d = Do(d, Resolve(), street_staff_, report_in_by + kHour);
  EXPECT_TRUE(d.summons(0).no_show());
  EXPECT_TRUE(d.summons(1).no_show());
  EXPECT_EQ(d.summons(0).done_at_ms(), 0);
  EXPECT_EQ(d.summons(1).done_at_ms(), 0);
}

// Escalate keeps no-shows (and what reported in) and drops only the pending
// summons, naming them in the entry.
TEST_F(CaseMachineTest, EscalateKeepsNoShowsAndDropsPendingSummons) {
  v1::Case c = Whistled();
  const int64_t report_in_by = c.summons(0).report_in_by_ms();
  c = Do(c, Overdue(), SystemCaller(), report_in_by + 1);  // both no-shows
  v1::Caller county_staff = MakeCaller("cs-dwk", v1::ROLE_STAFF, "dwk");
  // One more summons, still pending, from the county's bureau.
  c = Do(c, Whistle({"dwk-public_security"}), street_staff_, report_in_by + 2);
  ASSERT_EQ(c.summons_size(), 3);
  v1::Caller street_leader = MakeCaller("ld-s01", v1::ROLE_LEADER, kStreet);
  c = Do(c, Escalate("beyond the street"), street_leader, report_in_by + 3);
  EXPECT_EQ(c.owner_id(), "dwk");
  ASSERT_EQ(c.summons_size(), 2);
  EXPECT_TRUE(c.summons(0).no_show());
  EXPECT_TRUE(c.summons(1).no_show());
  EXPECT_EQ(std::vector<std::string>(history_.back().department_ids().begin(),
                                     history_.back().department_ids().end()),
            std::vector<std::string>{"dwk-public_security"});
  EXPECT_NE(c.deadlines().dispatch_by_ms(), 0);
  EXPECT_NE(c.deadlines().resolve_by_ms(), 0);
  // The county may summon the bureau again.
  EXPECT_TRUE(Act(c, Dispatch("dwk-public_security"), county_staff, report_in_by + 4).ok());
}

// The evaluate limit fires: the window closes, the case counts as not
// evaluated, and a late evaluation is refused.
TEST_F(CaseMachineTest, EvaluateLimitFires) {
  v1::Case c = Whistled();
  c = Do(c, ReportIn(), police_, kT0 + 20 * kMinute);
  c = Do(c, ReportIn(), judicial_, kT0 + 20 * kMinute);
  c = Do(c, Resolve(), street_staff_, kT0 + kHour);
  c = Do(c, Verify(true), grid_worker_, kT0 + 2 * kHour);
  c = Do(c, Close(), street_staff_, kT0 + 3 * kHour);
  const int64_t evaluate_by = c.deadlines().evaluate_by_ms();
  EXPECT_EQ(evaluate_by, kT0 + 3 * kHour + 72 * kHour);
  EXPECT_EQ(c.next_deadline_ms(), evaluate_by);
  EXPECT_EQ(Fail(c, Overdue(), SystemCaller(), evaluate_by).code(), Code::kFailedPrecondition);
  c = Do(c, Overdue(), SystemCaller(), evaluate_by + 1);
  EXPECT_EQ(c.state(), v1::CASE_STATE_CLOSED);
  EXPECT_TRUE(c.evaluation_expired());
  EXPECT_EQ(c.deadlines().evaluate_by_ms(), 0);
  EXPECT_EQ(c.next_deadline_ms(), 0);
  EXPECT_EQ(c.overdue_count(), 0);  // the resident's silence is not the unit's miss
  EXPECT_EQ(Missed(history_.back()), (std::vector<std::string>{"evaluate"}));
  Status late = Fail(c, Evaluate(5), grid_worker_, evaluate_by + 2);
  EXPECT_EQ(late.code(), Code::kFailedPrecondition);
  EXPECT_NE(late.message().find("evaluation_expired"), std::string::npos) << late.message();
}

// ---- Triage: transfer (分流/下派) and refusal (退单) ----

TEST_F(CaseMachineTest, TransferDownSidewaysAndRecategorise) {
  // A serious case at the street, handed down to a community of its own.
  v1::Case c = NewCase(v1::SEVERITY_SERIOUS);
  ASSERT_EQ(c.owner_id(), kStreet);
  c = Do(c, Accept(), street_staff_, kT0 + kMinute);
  c = Do(c, Transfer(kCommunity, "", "a community matter"), street_staff_, kT0 + 2 * kMinute);
  EXPECT_EQ(c.owner_id(), kCommunity);
  EXPECT_EQ(last_effects_.handover_to, kCommunity);
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(c.deadlines().accept_by_ms(), kT0 + 2 * kMinute + 10 * kMinute);
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), 0);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), 0);
  EXPECT_EQ(history_.back().kind(), v1::TRANSITION_KIND_TRANSFER);
  EXPECT_EQ(history_.back().note(), "a community matter");
  EXPECT_EQ(history_.back().from_jurisdiction_id(), kStreet);
  EXPECT_EQ(history_.back().jurisdiction_id(), kCommunity);
  // Sideways to the sibling community (inside the parent's subtree), with a
  // corrected category: recorded with the old value, the original kept once.
  c = Do(c, Transfer("dwk-s01-c04", "dispute.family"), community_staff_, kT0 + 3 * kMinute);
  EXPECT_EQ(c.owner_id(), "dwk-s01-c04");
  EXPECT_EQ(c.category(), "dispute.family");
  EXPECT_EQ(c.original_category(), "dispute.neighbour");
  EXPECT_EQ(history_.back().from_category(), "dispute.neighbour");
  EXPECT_EQ(history_.back().category(), "dispute.family");
  v1::Caller c04_staff = MakeCaller("cs-c04", v1::ROLE_STAFF, "dwk-s01-c04");
  c = Do(c, Transfer("", "environment"), c04_staff, kT0 + 4 * kMinute);
  EXPECT_EQ(c.owner_id(), "dwk-s01-c04");
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(c.category(), "environment");
  EXPECT_EQ(c.original_category(), "dispute.neighbour");
  EXPECT_EQ(history_.back().from_category(), "dispute.family");
  // The transferring staff are handlers.
  EXPECT_EQ(std::vector<std::string>(c.handler_users().begin(), c.handler_users().end()),
            (std::vector<std::string>{"ss-liu", "cs-zhang", "cs-c04"}));
}

TEST_F(CaseMachineTest, TransferRefusalsNameTheRule) {
  v1::Case c = NewCase();  // the community dwk-s01-c03
  const std::string before = c.SerializeAsString();
  auto message = [&](const v1::Command& cmd, const v1::Caller& who) {
    Status s = Fail(c, cmd, who, kT0 + kMinute);
    return std::string(ToString(s.code())) + ": " + s.message();
  };
  EXPECT_EQ(message(Transfer("dwk-s02-c01"), community_staff_),
            "INVALID_ARGUMENT: command.transfer.to_jurisdiction_id: \"dwk-s02-c01\" is outside "
            "the subtree of \"dwk-s01\" (the owner's parent); a transfer goes down into the "
            "owner's subtree or sideways");
  EXPECT_EQ(message(Transfer(kStreet), community_staff_),
            "INVALID_ARGUMENT: command.transfer.to_jurisdiction_id: \"dwk-s01\" is above owner "
            "\"dwk-s01-c03\"; a transfer goes down or sideways (escalate or return goes up)");
  EXPECT_EQ(message(Transfer(kCommunity), community_staff_),
            "INVALID_ARGUMENT: command.transfer.to_jurisdiction_id: \"dwk-s01-c03\" already owns "
            "case szs-000000000001");
  EXPECT_EQ(message(Transfer("", "dispute.neighbour"), community_staff_),
            "INVALID_ARGUMENT: command.transfer.category: case szs-000000000001 is already "
            "\"dispute.neighbour\"");
  EXPECT_EQ(message(Transfer("", "", ""), community_staff_),
            "INVALID_ARGUMENT: command.transfer: set to_jurisdiction_id (hand the case down or "
            "sideways) and/or category (correct it)");
  EXPECT_EQ(message(Transfer("dwk-s01-c04", "", ""), community_staff_),
            "INVALID_ARGUMENT: command.transfer.reason: required");
  EXPECT_EQ(message(Transfer("ghost"), community_staff_),
            "INVALID_ARGUMENT: command.transfer.to_jurisdiction_id: unknown jurisdiction "
            "\"ghost\"");
  EXPECT_EQ(message(Transfer(kGrid), community_staff_),
            "INVALID_ARGUMENT: command.transfer.to_jurisdiction_id: \"dwk-s01-c03-g002\" is a "
            "grid; a case is owned by a community or above");
  EXPECT_EQ(message(Transfer("", "ufo"), community_staff_),
            "INVALID_ARGUMENT: command.transfer.category: unknown category \"ufo\"");
  EXPECT_EQ(message(Transfer("dwk-s01-c04"), grid_worker_),
            "PERMISSION_DENIED: role ROLE_GRID_WORKER may not transfer case szs-000000000001");
  EXPECT_EQ(c.SerializeAsString(), before);
  v1::Case resolved = Whistled();
  resolved = Do(resolved, Resolve(), street_staff_, kT0 + kHour);
  EXPECT_EQ(Fail(resolved, Transfer("dwk-s01-c04"), street_staff_, kT0 + kHour).code(),
            Code::kFailedPrecondition);
}

TEST_F(CaseMachineTest, DepartmentRefusesADispatchAndTheOwnerRedispatches) {
  v1::Case c = NewCase(v1::SEVERITY_SERIOUS);
  c = Do(c, Accept(), street_staff_, kT0);
  c = Do(c, Dispatch(kPolice), street_staff_, kT0 + kMinute);
  const int64_t resolve_by = c.deadlines().resolve_by_ms();
  // A department that was not dispatched cannot refuse; nor can staff.
  EXPECT_EQ(Fail(c, Refuse(), judicial_, kT0 + 2 * kMinute).code(), Code::kPermissionDenied);
  EXPECT_EQ(Fail(c, Refuse(), street_staff_, kT0 + 2 * kMinute).code(), Code::kPermissionDenied);
  v1::Command no_reason = Refuse("");
  EXPECT_EQ(Fail(c, no_reason, police_, kT0 + 2 * kMinute).message(),
            "command.refuse.reason: required");
  c = Do(c, Refuse("对应职能在司法所"), police_, kT0 + 2 * kMinute);
  EXPECT_EQ(c.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(c.returns(), 1);
  EXPECT_TRUE(c.handler_department_id().empty());
  EXPECT_EQ(c.summons(0).refused_at_ms(), kT0 + 2 * kMinute);
  EXPECT_EQ(c.summons(0).refuse_reason(), "对应职能在司法所");
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), kT0 + 2 * kMinute + kHour);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), resolve_by);  // the clock keeps running
  EXPECT_EQ(history_.back().kind(), v1::TRANSITION_KIND_REFUSE);
  // Refused twice? It has nothing open any more.
  EXPECT_EQ(Fail(c, Refuse(), police_, kT0 + 3 * kMinute).code(), Code::kFailedPrecondition);
  // The owner re-dispatches, then replaces the handler while DISPATCHED.
  c = Do(c, Dispatch(kJudicial), street_staff_, kT0 + 3 * kMinute);
  EXPECT_EQ(c.handler_department_id(), kJudicial);
  c = Do(c, Dispatch("dwk-public_security"), street_staff_, kT0 + 4 * kMinute);
  EXPECT_EQ(c.state(), v1::CASE_STATE_DISPATCHED);
  EXPECT_EQ(c.handler_department_id(), "dwk-public_security");
  ASSERT_EQ(c.summons_size(), 2);  // the refused police, the new bureau
  EXPECT_EQ(c.summons(0).department_id(), kPolice);
  EXPECT_EQ(c.summons(1).department_id(), "dwk-public_security");
  // A whistled department cannot refuse (吹哨报到 is not optional).
  v1::Case w = Whistled();
  Status whistled = Fail(w, Refuse(), police_, kT0 + kHour);
  EXPECT_EQ(whistled.code(), Code::kFailedPrecondition);
  EXPECT_NE(whistled.message().find("not its dispatched handler"), std::string::npos);
  // Return counts as a return too.
  v1::Case r = Do(NewCase(), Return(), community_staff_, kT0 + kMinute);
  EXPECT_EQ(r.returns(), 1);
}

// Re-dispatching replaces a handler that never came; a no-show handler stays
// on record as one.
TEST_F(CaseMachineTest, RedispatchKeepsANoShowHandlerOnRecord) {
  v1::Case c = NewCase(v1::SEVERITY_SERIOUS);
  c = Do(c, Accept(), street_staff_, kT0);
  c = Do(c, Dispatch(kPolice), street_staff_, kT0 + kMinute);
  c = Do(c, Overdue(), SystemCaller(), c.summons(0).report_in_by_ms() + 1);
  ASSERT_TRUE(c.summons(0).no_show());
  EXPECT_EQ(c.state(), v1::CASE_STATE_DISPATCHED);
  c = Do(c, Dispatch(kJudicial), street_staff_, kT0 + 3 * kHour);
  ASSERT_EQ(c.summons_size(), 2);
  EXPECT_TRUE(c.summons(0).no_show());
  EXPECT_EQ(c.summons(0).department_id(), kPolice);
  EXPECT_EQ(c.handler_department_id(), kJudicial);
}

// ---- Anti-gaming: refused with PERMISSION_DENIED naming the rule ----

TEST_F(CaseMachineTest, HandlersMayNotVerifyOrRateTheirOwnCase) {
  v1::Case c = Whistled();  // cs-zhang accepted, ss-liu whistled
  c = Do(c, ReportIn(), police_, kT0 + 20 * kMinute);
  c = Do(c, ReportIn(), judicial_, kT0 + 20 * kMinute);
  c = Do(c, Resolve(), street_staff_, kT0 + kHour);
  EXPECT_EQ(std::vector<std::string>(c.handler_users().begin(), c.handler_users().end()),
            (std::vector<std::string>{"cs-zhang", "ss-liu"}));
  auto refused = [&](const v1::Case& at, const v1::Command& cmd, const v1::Caller& who) {
    auto t = Act(at, cmd, who, kT0 + 2 * kHour);
    EXPECT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), Code::kPermissionDenied);
    return t.status().message();
  };
  // The owner's own staff, even one who did not handle it, may not verify.
  EXPECT_EQ(refused(c, Verify(true), street_staff_),
            "anti-gaming: user \"ss-liu\" handled case szs-000000000001 (accepted, dispatched, "
            "kept, whistled, transferred or resolved it) and may not verify it");
  v1::Caller street_other = MakeCaller("ss-other", v1::ROLE_STAFF, kStreet);
  EXPECT_EQ(refused(c, Verify(true), street_other),
            "anti-gaming: case szs-000000000001 is verified by the grid worker of grid "
            "\"dwk-s01-c03-g002\" or by staff/leader of a level above owner \"dwk-s01\", not by "
            "ROLE_STAFF of \"dwk-s01\"");
  // A handler who sits higher up is still a handler.
  v1::Caller zhang_at_county = MakeCaller("cs-zhang", v1::ROLE_LEADER, "dwk");
  EXPECT_NE(refused(c, Verify(true), zhang_at_county).find("handled case"), std::string::npos);
  // A higher level verifies.
  EXPECT_TRUE(Act(c, Verify(true), county_leader_, kT0 + 2 * kHour).ok());
  c = Do(c, Verify(true), grid_worker_, kT0 + 2 * kHour);
  c = Do(c, Close(), street_staff_, kT0 + 3 * kHour);
  // Rating: handlers never, other staff only on_behalf, the reporter as reported.
  EXPECT_NE(refused(c, OnBehalf(5), street_staff_).find("handled case"), std::string::npos);
  EXPECT_EQ(refused(c, OnBehalf(5), street_other),
            "anti-gaming: case szs-000000000001 was reported by grid worker \"gw-wang\", who "
            "rates it for the resident; a rating on the resident's behalf is for cases staff "
            "took in (hotline or desk)");
  // The reporting grid worker gives the resident's own answer: on_behalf from it
  // is refused naming the field, never dropped (it would count as the resident's).
  Status own_on_behalf = Fail(c, OnBehalf(5), grid_worker_, kT0 + 4 * kHour);
  EXPECT_EQ(own_on_behalf.code(), Code::kPermissionDenied);
  EXPECT_EQ(own_on_behalf.message(),
            "anti-gaming: command.evaluate.on_behalf: grid worker \"gw-wang\" reported case "
            "szs-000000000001 and rates it with the resident's own answer, never on their "
            "behalf; send it without on_behalf");
  auto self_rated = Act(c, Evaluate(4), grid_worker_, kT0 + 4 * kHour);
  ASSERT_TRUE(self_rated.ok());
  EXPECT_FALSE(self_rated->next.evaluated_on_behalf());
  EXPECT_FALSE(self_rated->entry.on_behalf());
}

}  // namespace
}  // namespace whistle::core
