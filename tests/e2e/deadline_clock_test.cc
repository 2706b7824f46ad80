// Deadlines on a real whistled running on the test clock
// (--test-clock-start-ms): time is moved by AdminService, never slept for.
// A deadline fires as soon as the clock passes it and not before; deadlines
// that pass while the node is down fire once each after the restart, in due
// order, and never again.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/e2e/scenario.h"
#include "tests/e2e/whistled_process.h"
#include "whistle/v1/admin.grpc.pb.h"
#include "whistle/v1/watch.grpc.pb.h"

#ifndef WHISTLECTL_PATH
#error "WHISTLECTL_PATH must name the whistlectl binary"
#endif

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kStart = 1'750'000'000'000;  // the test clock's start (2025-06-15)
constexpr int64_t kAcceptMs = 600'000;         // the policy's accept limit: 10 minutes
constexpr int64_t kDispatchMs = 1'200'000;
constexpr int64_t kReportInMs = 1'800'000;
constexpr int64_t kResolveMs = 3'600'000;
constexpr int64_t kVerifyMs = 7'200'000;
constexpr int64_t kEvaluateMs = 10'800'000;

// A short-limit policy: general cases are the community's, every step has a
// limit of its own (so a test can tell which one fired).
std::string WritePolicy(const std::string& path) {
  std::ofstream(path) << R"({
    "categories": [{"id": "dispute.neighbour", "name": "邻里纠纷"}],
    "ownership": [{"severity": "SEVERITY_GENERAL", "owner_level": "LEVEL_COMMUNITY"}],
    "limits": {"accept_seconds": 600, "accept_urgent_seconds": 600, "dispatch_seconds": 1200,
               "report_in_seconds": 1800, "report_in_emergency_seconds": 1800,
               "resolve_general_seconds": 3600, "resolve_serious_seconds": 3600,
               "resolve_major_seconds": 3600, "resolve_extraordinary_seconds": 3600,
               "verify_seconds": 7200, "evaluate_seconds": 10800}})";
  return path;
}

class DeadlineClockTest : public ::testing::Test {
 protected:
  void SetUp() override { policy_ = WritePolicy(dir_.path() + "-policy.json"); }

  // The timer's longest sleep at its default (60 s; the harness passes 200 ms):
  // a deadline that fires within the test fired because the timer was woken.
  std::vector<std::string> Flags(int64_t start_ms) {
    auto flags = WhistledProcess::TestClockFlags(start_ms);
    flags.insert(flags.end(), {"--policy-file", policy_, "--timer-interval-ms=60000"});
    return flags;
  }

  std::string ReportOne(WhistledProcess& node, const std::string& request_id, v1::Case* out) {
    auto stub = node.cases();
    auto s = Report(*stub, GridWorker(ids_), NeighbourDispute(ids_, request_id), out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out->id();
  }

  std::vector<v1::HistoryEntry> Entries(WhistledProcess& node, const std::string& id) {
    v1::GetHistoryResponse h;
    auto stub = node.cases();
    auto s = History(*stub, leader_, id, &h);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {h.entries().begin(), h.entries().end()};
  }

  static int Overdues(const std::vector<v1::HistoryEntry>& entries) {
    int n = 0;
    for (const auto& e : entries) n += e.kind() == v1::TRANSITION_KIND_OVERDUE;
    return n;
  }

  // Polls (the timer runs on its own) until case `id` has `n` overdue
  // entries; the clock does not move meanwhile, so no deadline is slept for.
  std::vector<v1::HistoryEntry> WaitOverdues(WhistledProcess& node, const std::string& id, int n) {
    std::vector<v1::HistoryEntry> entries;
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      entries = Entries(node, id);
      if (Overdues(entries) >= n) break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(Overdues(entries), n) << id << "\n" << node.LogTail();
    return entries;
  }

  // Nothing must happen: the timer gets a moment to (wrongly) act.
  void ExpectNoOverdue(WhistledProcess& node, const std::string& id, size_t entries) {
    std::this_thread::sleep_for(300ms);
    auto now = Entries(node, id);
    EXPECT_EQ(now.size(), entries) << id << ": something fired";
    EXPECT_EQ(Overdues(now), 0) << id;
  }

  v1::Case GetCase(WhistledProcess& node, const std::string& id) {
    v1::Case c;
    auto stub = node.cases();
    auto s = Get(*stub, leader_, id, &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return c;
  }

  TempDir dir_;
  std::string policy_;
  ScenarioIds ids_ = DawukouIds();
  Identity leader_{"leader.szs", "leader", "szs", ""};
  Identity staff_{"li", "staff", ids_.community, ""};
};

TEST_F(DeadlineClockTest, AcceptDeadlineFiresOnlyOnceTheClockPassesIt) {
  WhistledProcess node(dir_.path(), Flags(kStart));
  ASSERT_TRUE(node.running()) << node.LogTail();
  v1::Case c;
  const std::string id = ReportOne(node, "late-1", &c);
  ASSERT_EQ(c.deadlines().accept_by_ms(), kStart + kAcceptMs);  // as the policy says
  EXPECT_EQ(c.created_at_ms(), kStart);                         // stamped by the test clock

  ASSERT_EQ(node.AdvanceClock(kAcceptMs - 1), kStart + kAcceptMs - 1);
  ExpectNoOverdue(node, id, 1);
  ASSERT_EQ(node.AdvanceClock(1), kStart + kAcceptMs);  // the deadline's own ms is in time
  ExpectNoOverdue(node, id, 1);

  const int64_t now = node.AdvanceClock(1);
  ASSERT_EQ(now, kStart + kAcceptMs + 1);
  auto entries = WaitOverdues(node, id, 1);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].kind(), v1::TRANSITION_KIND_OVERDUE);
  EXPECT_EQ(entries[1].at_ms(), now);  // stamped with the clock, not the wall
  EXPECT_EQ(entries[1].actor().user(), "system");
  EXPECT_EQ(entries[1].from_jurisdiction_id(), ids_.community);
  // Fired once: the clock standing still, nothing more comes.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Entries(node, id).size(), 2u);
}

TEST_F(DeadlineClockTest, TheClockRefusesToGoBackAndIsOnlyForAdminsOfATestNode) {
  WhistledProcess node(dir_.path(), Flags(kStart));
  ASSERT_TRUE(node.running()) << node.LogTail();
  auto admin = v1::AdminService::NewStub(node.channel());
  auto set = [&](const Identity& who, int64_t ms) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::SetClockRequest req;
    req.set_now_ms(ms);
    v1::ClockResponse resp;
    return admin->SetClock(&ctx, req, &resp);
  };
  auto advance = [&](const Identity& who, int64_t ms) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::AdvanceClockRequest req;
    req.set_delta_ms(ms);
    v1::ClockResponse resp;
    return admin->AdvanceClock(&ctx, req, &resp);
  };
  auto back = set(Identity::Admin(), kStart - 1);
  EXPECT_EQ(back.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(back.error_message().rfind("now_ms:", 0), 0u) << back.error_message();
  auto negative = advance(Identity::Admin(), -5);
  EXPECT_EQ(negative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(negative.error_message().rfind("delta_ms:", 0), 0u) << negative.error_message();
  // Past 2200-01-01 (what an assessment can be asked for): refused, naming the field.
  constexpr int64_t kMaxMs = 7'258'118'400'000;  // 2200-01-01 00:00 UTC
  auto late = set(Identity::Admin(), kMaxMs + 1);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(late.error_message().rfind("now_ms:", 0), 0u) << late.error_message();
  auto far = advance(Identity::Admin(), 106'752LL * 86'400'000);  // `clock advance 106752d`
  EXPECT_EQ(far.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(far.error_message().rfind("delta_ms:", 0), 0u) << far.error_message();
  auto just_past = advance(Identity::Admin(), kMaxMs - kStart + 1);
  EXPECT_EQ(just_past.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(set(leader_, kStart + 1).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(advance(staff_, 1).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Nothing moved: the next report is stamped at the start.
  v1::Case c;
  ReportOne(node, "after-refusals", &c);
  EXPECT_EQ(c.created_at_ms(), kStart);

  // A node on the system clock has no test clock to move.
  TempDir other;
  WhistledProcess real(other.path());
  ASSERT_TRUE(real.running()) << real.LogTail();
  auto real_admin = v1::AdminService::NewStub(real.channel());
  grpc::ClientContext ctx;
  Identity::Admin().Apply(ctx);
  v1::AdvanceClockRequest req;
  req.set_delta_ms(1000);
  v1::ClockResponse resp;
  auto s = real_admin->AdvanceClock(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "node not started with --test-clock-start-ms");
}

// On the system clock: a report's deadline wakes the sleeping timer (the
// store's commit hook), so it fires within moments of passing, not at the
// next 60 s wake. The one test that waits for a deadline in real time (1 s):
// the wake on a commit is what it checks.
TEST_F(DeadlineClockTest, ACommittedDeadlineWakesTheTimerOnTheSystemClock) {
  std::ofstream(policy_) << R"({
    "categories": [{"id": "dispute.neighbour", "name": "邻里纠纷"}],
    "ownership": [{"severity": "SEVERITY_GENERAL", "owner_level": "LEVEL_COMMUNITY"}],
    "limits": {"accept_seconds": 1}})";
  WhistledProcess node(dir_.path(), {"--policy-file", policy_, "--timer-interval-ms=60000"});
  ASSERT_TRUE(node.running()) << node.LogTail();
  v1::Case c;
  const std::string id = ReportOne(node, "real-time", &c);
  auto entries = WaitOverdues(node, id, 1);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_GT(entries[1].at_ms(), c.deadlines().accept_by_ms());
  EXPECT_LT(entries[1].at_ms(), c.deadlines().accept_by_ms() + 5'000);
}

TEST(TestClockFlagTest, ABadStartStopsStartUpNamingTheFlag) {
  // Out of 2000-01-01 .. 2200-01-01 (UTC): 1970 and 2200 + 1 ms are refused too.
  for (const std::string bad :
       {"-5", "abc", "99999999999999999999", "1", "946684799999", "7258118400001"}) {
    auto [code, out] = RunWhistled({"--dev-header-identity", "--test-clock-start-ms", bad});
    EXPECT_EQ(code, 2) << bad << ": " << out;
    EXPECT_NE(out.find("--test-clock-start-ms"), std::string::npos) << out;
  }
}

// Runs whistlectl with `args` against `node` as an admin; (exit code, output).
std::pair<int, std::string> Ctl(WhistledProcess& node, const TempDir& dir,
                                const std::string& args) {
  const std::string token = dir.path() + "-admin.token";
  std::ofstream(token) << MintTestToken("ops", "admin", "", "");
  const std::string cmd = std::string(WHISTLECTL_PATH) + " --server " + node.address() +
                          " --token-file " + token + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = p == nullptr ? -1 : pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(DeadlineClockTest, WhistlectlMovesTheClockAndNamesBadArguments) {
  WhistledProcess node(dir_.path(), Flags(kStart));
  ASSERT_TRUE(node.running()) << node.LogTail();
  auto [code, out] = Ctl(node, dir_, "clock advance 90s");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(std::to_string(kStart + 90'000)), std::string::npos) << out;
  std::tie(code, out) = Ctl(node, dir_, "--json clock advance 2d");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(std::to_string(kStart + 90'000 + 2 * 86'400'000)), std::string::npos) << out;
  std::tie(code, out) = Ctl(node, dir_, "clock advance 3x");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("DURATION"), std::string::npos) << out;
  std::tie(code, out) = Ctl(node, dir_, "clock set abc");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("MS"), std::string::npos) << out;
  std::tie(code, out) = Ctl(node, dir_, "clock set " + std::to_string(kStart));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("INVALID_ARGUMENT: now_ms"), std::string::npos) << out;
  std::tie(code, out) = Ctl(node, dir_, "clock advance 106752d");  // would be year 2319
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("INVALID_ARGUMENT: delta_ms"), std::string::npos) << out;
  // Refused moves changed nothing: a report now is stamped 90 s + 2 d after the start.
  v1::Case c;
  ReportOne(node, "after-cli", &c);
  EXPECT_EQ(c.created_at_ms(), kStart + 90'000 + 2 * 86'400'000);
}

// The OVERDUE case changes of the change log, in commit order: read from its
// start until `want` are seen or `wait` passes.
std::vector<std::string> OverdueOrder(WhistledProcess& node, const Identity& who, size_t want,
                                      std::chrono::milliseconds wait) {
  auto stub = v1::WatchService::NewStub(node.channel());
  grpc::ClientContext ctx;
  who.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + wait);
  v1::WatchRequest req;
  req.set_from_token("0");  // from the start of the log
  auto reader = stub->Watch(&ctx, req);
  std::vector<std::string> order;
  v1::Change c;
  while (order.size() < want && reader->Read(&c)) {
    if (c.case_change().kind() == v1::TRANSITION_KIND_OVERDUE) {
      order.push_back(c.case_change().case_id());
    }
  }
  ctx.TryCancel();
  (void)reader->Finish();
  return order;
}

TEST_F(DeadlineClockTest, DeadlinesPassedWhileStoppedFireOnceInDueOrderAfterRestart) {
  WhistledProcess node(dir_.path(), Flags(kStart));
  ASSERT_TRUE(node.running()) << node.LogTail();
  // More cases than the timer sends at once (512), reported 10 ms apart:
  // their accept deadlines pass in that order while the node is down. All have
  // one owner (the community): different owners commit side by side, so only
  // one owner's are in due order (docs/operations.md).
  constexpr int kCases = 600;
  std::vector<std::string> ids;
  {
    auto stub = node.cases();
    auto admin = v1::AdminService::NewStub(node.channel());
    for (int i = 0; i < kCases; ++i) {
      v1::Case c;
      auto s =
          Report(*stub, GridWorker(ids_), NeighbourDispute(ids_, "down-" + std::to_string(i)), &c);
      ASSERT_TRUE(s.ok()) << s.error_message();
      ASSERT_EQ(c.deadlines().accept_by_ms(), kStart + i * 10 + kAcceptMs);
      ids.push_back(c.id());
      grpc::ClientContext ctx;
      Identity::Admin().Apply(ctx);
      v1::AdvanceClockRequest req;
      req.set_delta_ms(10);
      v1::ClockResponse resp;
      ASSERT_TRUE(admin->AdvanceClock(&ctx, req, &resp).ok());
    }
  }
  ASSERT_EQ(node.Terminate(), 0) << node.LogTail();

  // Down for an hour: every deadline passed meanwhile.
  const int64_t restart_at = kStart + 3'600'000;
  node.SetTestClockStart(restart_at);
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  EXPECT_EQ(OverdueOrder(node, leader_, ids.size(), 10s), ids)  // each once, in due order
      << node.LogTail();
  for (const auto& id : {ids.front(), ids[kCases / 2], ids.back()}) {
    auto entries = Entries(node, id);
    ASSERT_EQ(entries.size(), 2u) << id;
    EXPECT_EQ(entries[1].kind(), v1::TRANSITION_KIND_OVERDUE) << id;
    EXPECT_EQ(entries[1].at_ms(), restart_at) << id;
    EXPECT_EQ(entries[1].from_jurisdiction_id(), ids_.community) << id;
  }

  // Restarted again at the same time: nothing fires twice.
  ASSERT_EQ(node.Terminate(), 0) << node.LogTail();
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  EXPECT_EQ(OverdueOrder(node, leader_, ids.size() + 1, 1500ms), ids) << "fired again";
}

// ---- Every step's limit, across escalations, with the clock ----

class LifecycleTest : public DeadlineClockTest {
 protected:
  void SetUp() override {
    DeadlineClockTest::SetUp();
    node_ = std::make_unique<WhistledProcess>(dir_.path(), Flags(kStart));
    ASSERT_TRUE(node_->running()) << node_->LogTail();
    stub_ = node_->cases();
  }

  // Moves the clock to `deadline` (still in time), then 1 ms past it, and
  // returns the one overdue entry that fires; its time proves it fired only
  // after the deadline's own millisecond.
  v1::HistoryEntry FireAt(const std::string& id, int64_t deadline) {
    const int before = Overdues(Entries(*node_, id));
    EXPECT_GT(deadline, clock_) << "deadline " << deadline << " is not ahead of the clock";
    EXPECT_EQ(node_->SetClock(deadline), deadline);
    clock_ = node_->SetClock(deadline + 1);
    auto entries = WaitOverdues(*node_, id, before + 1);
    if (entries.empty() || entries.back().kind() != v1::TRANSITION_KIND_OVERDUE) {
      ADD_FAILURE() << "no overdue after " << deadline;
      return {};
    }
    EXPECT_EQ(entries.back().at_ms(), deadline + 1);
    return entries.back();
  }

  v1::Case Do(const Identity& who, const std::string& id, const v1::Command& cmd) {
    v1::Case out;
    auto s = Act(*stub_, who, id, cmd, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  static bool Missed(const v1::HistoryEntry& e, const std::string& deadline) {
    for (const auto& m : e.deadlines_missed()) {
      if (m == deadline) return true;
    }
    return false;
  }

  static const v1::Summons* SummonsOf(const v1::Case& c, const std::string& dept) {
    for (const auto& s : c.summons()) {
      if (s.department_id() == dept) return &s;
    }
    return nullptr;
  }

  std::unique_ptr<WhistledProcess> node_;
  std::unique_ptr<v1::CaseService::Stub> stub_;
  int64_t clock_ = kStart;
  Identity township_{"zhao", "staff", ids_.township, ""};
  Identity county_{"wang", "staff", ids_.county, ""};
  Identity police_{"desk.police", "department", "", ids_.police};
};

TEST_F(LifecycleTest, EveryStepsLimitFiresAsThePolicySaysAcrossEscalations) {
  v1::Case c;
  const std::string id = ReportOne(*node_, "steps-1", &c);

  // Accept at the community: missed, moved up to the township, a new window there.
  auto e = FireAt(id, c.deadlines().accept_by_ms());
  EXPECT_TRUE(Missed(e, "accept"));
  EXPECT_EQ(e.from_jurisdiction_id(), ids_.community);
  EXPECT_EQ(e.jurisdiction_id(), ids_.township);
  c = GetCase(*node_, id);
  EXPECT_EQ(c.owner_id(), ids_.township);
  EXPECT_EQ(c.deadlines().accept_by_ms(), clock_ + kAcceptMs);

  // Missed again at the township (the auto-escalation ceiling): the county is
  // given a supervision notice and the township keeps the case, with a new window.
  e = FireAt(id, c.deadlines().accept_by_ms());
  EXPECT_TRUE(Missed(e, "accept"));
  EXPECT_EQ(e.notice_to_id(), ids_.county);
  c = GetCase(*node_, id);
  EXPECT_EQ(c.owner_id(), ids_.township);
  EXPECT_EQ(c.deadlines().accept_by_ms(), clock_ + kAcceptMs);

  // Accepted: the dispatch limit runs and fires.
  v1::Command accept;
  accept.mutable_accept();
  c = Do(township_, id, accept);
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), clock_ + kDispatchMs);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), clock_ + kResolveMs);
  e = FireAt(id, c.deadlines().dispatch_by_ms());
  EXPECT_TRUE(Missed(e, "dispatch"));
  EXPECT_EQ(e.notice_to_id(), ids_.county);

  // Whistle: the police report in, the judicial office does not (a no-show).
  v1::Command whistle;
  whistle.mutable_whistle()->add_department_ids(ids_.police);
  whistle.mutable_whistle()->add_department_ids(ids_.judicial);
  c = Do(township_, id, whistle);
  ASSERT_NE(SummonsOf(c, ids_.judicial), nullptr);
  const int64_t report_in_by = SummonsOf(c, ids_.judicial)->report_in_by_ms();
  EXPECT_EQ(report_in_by, clock_ + kReportInMs);
  v1::Command report_in;
  report_in.mutable_report_in();
  Do(police_, id, report_in);
  e = FireAt(id, report_in_by);
  EXPECT_TRUE(Missed(e, "report_in"));
  EXPECT_EQ(std::vector<std::string>(e.department_ids().begin(), e.department_ids().end()),
            std::vector<std::string>{ids_.judicial});

  // Escalated by hand: the no-show survives, and the county has a deadline.
  v1::Command escalate;
  escalate.mutable_escalate()->set_reason("调解未果");
  c = Do(township_, id, escalate);
  EXPECT_EQ(c.owner_id(), ids_.county);
  ASSERT_NE(SummonsOf(c, ids_.judicial), nullptr);
  EXPECT_TRUE(SummonsOf(c, ids_.judicial)->no_show()) << "no-show lost by the escalation";
  EXPECT_GT(c.next_deadline_ms(), clock_) << "the new owner holds the case with no deadline";
  EXPECT_EQ(c.deadlines().dispatch_by_ms(), clock_ + kDispatchMs);
  EXPECT_EQ(c.deadlines().resolve_by_ms(), clock_ + kResolveMs);

  // The county misses its dispatch limit: above the ceiling, the city is noticed.
  e = FireAt(id, c.deadlines().dispatch_by_ms());
  EXPECT_TRUE(Missed(e, "dispatch"));
  EXPECT_EQ(e.notice_to_id(), "szs");
  c = GetCase(*node_, id);
  EXPECT_EQ(c.owner_id(), ids_.county);

  // Resolve limit (from the escalation): fires too.
  v1::Command keep;
  keep.mutable_keep();
  c = Do(county_, id, keep);
  e = FireAt(id, c.deadlines().resolve_by_ms());
  EXPECT_TRUE(Missed(e, "resolve"));
  EXPECT_EQ(e.notice_to_id(), "szs");

  // The owner resolves: the judicial office stays a no-show.
  v1::Command resolve;
  resolve.mutable_resolve();
  c = Do(county_, id, resolve);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);
  ASSERT_NE(SummonsOf(c, ids_.judicial), nullptr);
  EXPECT_TRUE(SummonsOf(c, ids_.judicial)->no_show()) << "no-show erased by the resolve";
  EXPECT_EQ(c.deadlines().verify_by_ms(), clock_ + kVerifyMs);
  e = FireAt(id, c.deadlines().verify_by_ms());
  EXPECT_TRUE(Missed(e, "verify"));

  // Verified and closed: the evaluation window closes on time.
  v1::Command verify;
  verify.mutable_verify()->set_fixed(true);
  Do(GridWorker(ids_), id, verify);
  v1::Command close;
  close.mutable_close();
  c = Do(county_, id, close);
  EXPECT_EQ(c.state(), v1::CASE_STATE_CLOSED);
  EXPECT_EQ(c.deadlines().evaluate_by_ms(), clock_ + kEvaluateMs);
  e = FireAt(id, c.deadlines().evaluate_by_ms());
  EXPECT_TRUE(Missed(e, "evaluate"));
  c = GetCase(*node_, id);
  EXPECT_TRUE(c.evaluation_expired());
  EXPECT_EQ(c.state(), v1::CASE_STATE_CLOSED);
  EXPECT_EQ(c.next_deadline_ms(), 0);  // nothing left to time
  const size_t entries = Entries(*node_, id).size();
  v1::Command rate;
  rate.mutable_evaluate()->set_score(5);
  v1::Case out;
  auto late = Act(*stub_, GridWorker(ids_), id, rate, &out);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << late.error_message();
  // The deadline is cleared once it fired: no made-up "closed at 0" (1970).
  EXPECT_NE(late.error_message().find("evaluation window closed (evaluation_expired)"),
            std::string::npos)
      << late.error_message();
  EXPECT_EQ(late.error_message().find(" at 0"), std::string::npos) << late.error_message();
  EXPECT_EQ(Entries(*node_, id).size(), entries);  // refused: nothing recorded
}

}  // namespace
}  // namespace whistle::testing
