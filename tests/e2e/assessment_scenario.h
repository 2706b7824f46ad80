// The assessment scenario shared by assessment_test (one node) and the
// two-node rollup test: about 50 cases over three townships of Dawukou and
// two months of test-clock time, acted on through CaseService as real
// callers would; then every figure computed by hand from the histories read
// back (GetHistory), and compared with AssessmentService.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/e2e/whistled_process.h"
#include "whistle/v1/assessment.grpc.pb.h"
#include "whistle/v1/service.grpc.pb.h"

namespace whistle::testing {

class AssessmentClient {
 public:
  explicit AssessmentClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::AssessmentService::NewStub(std::move(channel))) {}
  grpc::Status Assess(const Identity& who, const std::string& jurisdiction,
                      const std::string& department, const v1::PeriodSpec& period,
                      v1::AssessResponse* out);
  grpc::Status Rank(const Identity& who, const std::string& jurisdiction, const std::string& figure,
                    const v1::PeriodSpec& period, v1::RankResponse* out);

 private:
  std::unique_ptr<v1::AssessmentService::Stub> stub_;
};

// Figures of one subject by name (docs/assessment.md), as counted by hand.
using HandFigures = std::map<std::string, int64_t>;

class AssessmentScenario {
 public:
  // 2026-10-01T09:00:00+08:00.
  static constexpr int64_t kStartMs = 1790816400000LL;

  // `node_for(jurisdiction)`: the node to send a case's commands to (the one
  // hosting that jurisdiction); `clock_nodes()`: every node whose test clock
  // moves together.
  AssessmentScenario(std::function<WhistledProcess*(const std::string&)> node_for,
                     std::function<std::vector<WhistledProcess*>()> clock_nodes);
  // Back-compat for one node: the same node for everything.
  AssessmentScenario(std::function<WhistledProcess*(const std::string&)> node_for,
                     std::function<WhistledProcess*()> clock_node);

  // Runs the whole script (ASSERTs inside: wrap in ASSERT_NO_FATAL_FAILURE).
  void Run(int cases = 50);
  // Reports one case now (for small tests); "" on failure.
  std::string ReportOne(const std::string& grid, const std::string& category,
                        const Identity& reporter);
  // Waits until the deadlines due at the clock's time have fired (no history grows).
  void Settle(WhistledProcess& node);

  // Reads every case's history and compares Assess and Rank, asked at
  // `ask`, for the scenario's subjects and periods with the hand counts.
  // `asked_root`: the root `ask` hosts; subjects above or beside it are
  // refused there (FAILED_PRECONDITION), which is checked instead.
  void CompareAll(WhistledProcess& ask, const std::string& label,
                  const std::string& asked_root = "szs");

  const std::vector<std::string>& case_ids() const { return case_ids_; }
  int64_t now() const { return now_; }

  // Hand counts for (kind 'j' or 'd', subject) over UTC+08:00 days [from_day, to_day].
  struct CaseRecord {
    v1::Case c;
    std::vector<v1::HistoryEntry> history;
  };
  static std::map<std::pair<char, std::string>, HandFigures> CountByHand(
      const std::vector<CaseRecord>& cases, int64_t from_day, int64_t to_day,
      int64_t recurrence_window_ms);

 private:
  void Advance(int64_t ms);
  v1::Case Act(const Identity& who, const std::string& case_id, const v1::Command& command,
               const std::string& what);
  void WaitForEntry(const std::string& case_id, v1::TransitionKind kind, const std::string& what);
  std::vector<CaseRecord> ReadAll();
  void RunCase(int i);

  std::function<WhistledProcess*(const std::string&)> node_for_;
  std::function<std::vector<WhistledProcess*>()> clock_nodes_;
  int64_t now_ = kStartMs;
  std::vector<std::string> case_ids_;
  std::map<std::string, std::string> owner_;  // case id -> owner as last seen
  std::vector<std::string> left_open_;        // variant 7: resolved at the end
};

}  // namespace whistle::testing
