// End to end: real whistled processes on 127.0.0.1, driven over gRPC.
#include "tests/e2e/scenario.h"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <thread>

namespace whistle::testing {
namespace {

class ScenarioTest : public ::testing::Test {
 protected:
  ScenarioIds ids = DawukouIds();
  TempDir dir;

  std::string ReportOne(WhistledProcess& node, const std::string& request_id) {
    auto stub = node.cases();
    v1::Case created;
    auto status = Report(*stub, GridWorker(ids), NeighbourDispute(ids, request_id), &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.id();
  }
};

TEST_F(ScenarioTest, WholeLifecycleOverGrpc) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.log_path();
  auto stub = node.cases();
  v1::Case c;
  ASSERT_TRUE(Report(*stub, GridWorker(ids), NeighbourDispute(ids, "r-1"), &c).ok());
  EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(c.owner_id(), ids.community);  // graded response: 一般 stays in the community

  for (const auto& step : ScenarioSteps(ids, c.id())) {
    v1::Case after;
    auto status = Act(*stub, step.who, step.case_id, step.command, &after);
    ASSERT_TRUE(status.ok()) << step.name << ": " << status.error_message();
    EXPECT_EQ(after.state(), step.expect_state) << step.name;
  }

  v1::Case final_case;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), c.id(), &final_case).ok());
  EXPECT_EQ(final_case.state(), v1::CASE_STATE_EVALUATED);
  EXPECT_EQ(final_case.owner_id(), ids.township);
  EXPECT_EQ(final_case.satisfaction(), 5);
  ASSERT_EQ(final_case.summons_size(), 2);
  for (const auto& s : final_case.summons()) {
    EXPECT_GT(s.reported_in_at_ms(), 0) << s.department_id();
    EXPECT_GT(s.done_at_ms(), 0) << s.department_id();
  }

  v1::GetHistoryResponse history;
  ASSERT_TRUE(History(*stub, GridWorker(ids), c.id(), &history).ok());
  std::vector<v1::TransitionKind> kinds;
  for (const auto& e : history.entries()) kinds.push_back(e.kind());
  std::vector<v1::TransitionKind> want = {
      v1::TRANSITION_KIND_REPORT,  v1::TRANSITION_KIND_ACCEPT,    v1::TRANSITION_KIND_ESCALATE,
      v1::TRANSITION_KIND_WHISTLE, v1::TRANSITION_KIND_REPORT_IN, v1::TRANSITION_KIND_REPORT_IN,
      v1::TRANSITION_KIND_RESOLVE, v1::TRANSITION_KIND_RESOLVE,   v1::TRANSITION_KIND_VERIFY,
      v1::TRANSITION_KIND_CLOSE,   v1::TRANSITION_KIND_EVALUATE};
  EXPECT_EQ(kinds, want);
  EXPECT_EQ(history.entries(2).from_jurisdiction_id(), ids.community);
  EXPECT_EQ(history.entries(2).jurisdiction_id(), ids.township);
  EXPECT_EQ(history.entries(4).actor().department_id(), ids.police);

  grpc::ClientContext ctx;
  Identity{"zhao.street", "staff", ids.township, ""}.Apply(ctx);
  v1::CountCasesRequest count_req;
  v1::CountCasesResponse counts;
  ASSERT_TRUE(stub->Count(&ctx, count_req, &counts).ok());
  int64_t evaluated = 0;
  for (const auto& row : counts.counts()) {
    if (row.state() == v1::CASE_STATE_EVALUATED) evaluated = row.count();
  }
  EXPECT_EQ(evaluated, 1);
}

TEST_F(ScenarioTest, RetriedReportCreatesNoSecondCase) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running());
  std::string first = ReportOne(node, "same-request");
  std::string second = ReportOne(node, "same-request");
  EXPECT_EQ(first, second);
  std::string third = ReportOne(node, "other-request");
  EXPECT_NE(first, third);
}

TEST_F(ScenarioTest, SigkillMidScenarioLosesNoAcknowledgedStep) {
  std::string case_id;
  auto steps = ScenarioSteps(ids, "");
  const size_t half = 5;  // accept, escalate, whistle, two report-ins
  std::vector<v1::Case> acknowledged;
  {
    WhistledProcess node(dir.path());
    ASSERT_TRUE(node.running());
    case_id = ReportOne(node, "crash-1");
    steps = ScenarioSteps(ids, case_id);
    auto stub = node.cases();
    for (size_t i = 0; i < half; ++i) {
      v1::Case after;
      ASSERT_TRUE(Act(*stub, steps[i].who, case_id, steps[i].command, &after).ok())
          << steps[i].name;
      acknowledged.push_back(after);
    }
    EXPECT_EQ(node.Kill(), -SIGKILL);
  }
  WhistledProcess restarted(dir.path());
  ASSERT_TRUE(restarted.running());
  auto stub = restarted.cases();
  v1::Case after_restart;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), case_id, &after_restart).ok());
  EXPECT_EQ(after_restart.SerializeAsString(), acknowledged.back().SerializeAsString());
  v1::GetHistoryResponse history;
  ASSERT_TRUE(History(*stub, GridWorker(ids), case_id, &history).ok());
  EXPECT_EQ(history.entries_size(), static_cast<int>(half) + 1);

  for (size_t i = half; i < steps.size(); ++i) {
    v1::Case after;
    auto status = Act(*stub, steps[i].who, case_id, steps[i].command, &after);
    ASSERT_TRUE(status.ok()) << steps[i].name << ": " << status.error_message();
    EXPECT_EQ(after.state(), steps[i].expect_state) << steps[i].name;
  }
  // A retried report after the restart still finds the first case.
  EXPECT_EQ(ReportOne(restarted, "crash-1"), case_id);
}

TEST_F(ScenarioTest, SigtermDrainsAndExitsZero) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running());
  std::string id = ReportOne(node, "term-1");
  EXPECT_EQ(node.Terminate(), 0);
  WhistledProcess again(dir.path());
  ASSERT_TRUE(again.running());
  auto stub = again.cases();
  v1::Case c;
  EXPECT_TRUE(Get(*stub, GridWorker(ids), id, &c).ok());
}

TEST_F(ScenarioTest, SigtermUnderLoadLosesNoAcknowledgedReport) {
  std::vector<std::string> acknowledged;
  {
    WhistledProcess node(dir.path());
    ASSERT_TRUE(node.running());
    std::mutex mu;
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t) {
      clients.emplace_back([&, t] {
        auto stub = node.cases();
        for (int i = 0;; ++i) {
          v1::Case c;
          auto report =
              NeighbourDispute(ids, "load-" + std::to_string(t) + "-" + std::to_string(i));
          if (!Report(*stub, GridWorker(ids), report, &c).ok()) return;  // node is gone
          std::lock_guard lock(mu);
          acknowledged.push_back(c.id());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    EXPECT_EQ(node.Terminate(), 0) << node.log_path();
    for (auto& c : clients) c.join();
  }
  ASSERT_GT(acknowledged.size(), 0u);
  WhistledProcess restarted(dir.path());
  ASSERT_TRUE(restarted.running());
  auto stub = restarted.cases();
  for (const auto& id : acknowledged) {
    v1::Case c;
    ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &c).ok()) << id << " lost";
  }
}

TEST_F(ScenarioTest, ReadinessFlipsToNotServingOnSigterm) {
  WhistledProcess node(dir.path(), {"--drain-delay-ms", "3000"});
  ASSERT_TRUE(node.running());
  EXPECT_EQ(node.HealthStatus(), 1);  // SERVING once the store is open and the server up
  node.Signal(SIGTERM);
  int status = -1;
  for (int i = 0; i < 40 && status != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = node.HealthStatus();
  }
  EXPECT_EQ(status, 2);  // NOT_SERVING while draining
  EXPECT_EQ(node.ExitCode(20000), 0);
}

TEST_F(ScenarioTest, MissedAcceptDeadlineEscalatesAcrossRestart) {
  std::string policy_path = dir.path() + "-policy.json";
  {
    std::ofstream out(policy_path);
    out << R"({"categories":[{"id":"dispute.neighbour","name":"邻里纠纷"}],
               "ownership":[{"severity":"SEVERITY_GENERAL","owner_level":"LEVEL_COMMUNITY"}],
               "limits":{"accept_seconds":1}})";
  }
  std::string id;
  {
    WhistledProcess node(dir.path(), {"--policy-file", policy_path});
    ASSERT_TRUE(node.running()) << node.log_path();
    id = ReportOne(node, "late-1");
    node.Kill();  // the deadline passes while the node is down
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  WhistledProcess node(dir.path(), {"--policy-file", policy_path});
  ASSERT_TRUE(node.running());
  auto stub = node.cases();
  v1::Case c;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &c).ok());
    if (c.overdue_count() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(c.overdue_count(), 1);
  // The first overdue moved it from the community one level up; under load the
  // township's own 1 s limit may pass too, so later entries are not pinned.
  v1::GetHistoryResponse history;
  ASSERT_TRUE(History(*stub, GridWorker(ids), id, &history).ok());
  ASSERT_GE(history.entries_size(), 2);
  EXPECT_EQ(history.entries(1).kind(), v1::TRANSITION_KIND_OVERDUE);
  EXPECT_EQ(history.entries(1).from_jurisdiction_id(), ids.community);
  EXPECT_EQ(history.entries(1).jurisdiction_id(), ids.township);
  EXPECT_EQ(history.entries(1).actor().user(), "system");
  // The older policy form escalates a community's case no higher than the
  // township: a later miss there notifies the county and the case stays.
  for (int i = 2; i < history.entries_size(); ++i) {
    EXPECT_EQ(history.entries(i).jurisdiction_id(), ids.township);
    EXPECT_EQ(history.entries(i).notice_to_id(), ids.county);
  }
}

}  // namespace
}  // namespace whistle::testing

namespace whistle::testing {
namespace {

// Commands racing with hand-overs: supervisions from the city while the case
// climbs from the community to the county. Every acknowledged command must be
// in the history exactly once, in a gapless sequence.
TEST_F(ScenarioTest, ConcurrentCommandsDuringEscalationStayConsistent) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running());
  std::string id = ReportOne(node, "race-1");
  std::atomic<int> supervised{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> supervisors;
  for (int t = 0; t < 4; ++t) {
    supervisors.emplace_back([&] {
      auto stub = node.cases();
      v1::Command cmd;
      cmd.mutable_supervise()->set_note("督办");
      while (!done) {
        v1::Case out;
        auto status = Act(*stub, Identity{"leader.szs", "leader", "szs", ""}, id, cmd, &out);
        ASSERT_TRUE(status.ok()) << status.error_message();
        ++supervised;
      }
    });
  }
  auto stub = node.cases();
  v1::Command accept, escalate;
  accept.mutable_accept();
  escalate.mutable_escalate()->set_reason("上报");
  v1::Case out;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(Act(*stub, Identity{"li", "staff", ids.community, ""}, id, accept, &out).ok());
  ASSERT_TRUE(Act(*stub, Identity{"li", "staff", ids.community, ""}, id, escalate, &out).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(Act(*stub, Identity{"zhao", "staff", ids.township, ""}, id, escalate, &out).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  done = true;
  for (auto& t : supervisors) t.join();

  v1::Case final_case;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &final_case).ok());
  EXPECT_EQ(final_case.owner_id(), ids.county);
  EXPECT_EQ(final_case.supervisions(), supervised.load());
  v1::GetHistoryResponse history;
  ASSERT_TRUE(History(*stub, GridWorker(ids), id, &history).ok());
  ASSERT_EQ(history.entries_size(), 1 + 3 + supervised.load());
  EXPECT_EQ(final_case.history_length(), history.entries_size());
  for (int i = 0; i < history.entries_size(); ++i) {
    EXPECT_EQ(history.entries(i).seq(), i + 1);
  }
}

}  // namespace
}  // namespace whistle::testing

namespace whistle::testing {
namespace {

// Past --max-inflight-writes a caller is told at once (RESOURCE_EXHAUSTED)
// instead of queueing; what was acknowledged is still all there.
TEST_F(ScenarioTest, OverloadIsRefusedNotQueued) {
  WhistledProcess node(dir.path(), {"--max-inflight-writes", "1"});
  ASSERT_TRUE(node.running());
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<int> refused{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&, t] {
      auto stub = node.cases();
      for (int i = 0; i < 30; ++i) {
        v1::Case c;
        auto status =
            Report(*stub, GridWorker(ids),
                   NeighbourDispute(ids, "o-" + std::to_string(t) + "-" + std::to_string(i)), &c);
        if (status.ok()) {
          std::lock_guard lock(mu);
          acknowledged.push_back(c.id());
        } else {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
              << status.error_message();
          ++refused;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_GT(refused.load(), 0);
  EXPECT_GT(acknowledged.size(), 0u);
  EXPECT_EQ(acknowledged.size() + refused.load(), 16u * 30u);
  auto stub = node.cases();
  for (const auto& id : acknowledged) {
    v1::Case c;
    EXPECT_TRUE(Get(*stub, GridWorker(ids), id, &c).ok()) << id;
  }
}

}  // namespace
}  // namespace whistle::testing
