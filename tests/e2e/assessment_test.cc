// Assessment end to end on a real whistled with the test clock: about 50
// cases over three townships and two months, acted on as real callers would
// (reports, accepts, escalations, whistles, no-shows, returns, refusals,
// reopens, ratings 1-5 and on the resident's behalf, recurrences). The test
// reads every case's history back and computes each figure by hand with its
// own code (docs/assessment.md, one line per figure), then compares with
// Assess for the townships, the county, the city, a community and a
// department, and with Rank; again after a restart; and bad input and
// callers who may not ask.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/policy.h"
#include "core/topology.h"
#include "tests/e2e/assessment_scenario.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/whistled_process.h"

namespace whistle::testing {
namespace {

class AssessmentE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<WhistledProcess>(
        dir_.path(), WhistledProcess::TestClockFlags(AssessmentScenario::kStartMs));
    ASSERT_TRUE(node_->running()) << node_->LogTail();
  }

  TempDir dir_;
  std::unique_ptr<WhistledProcess> node_;
};

TEST_F(AssessmentE2eTest, FiguresEqualHandCountsFromTheHistoriesAndSurviveARestart) {
  AssessmentScenario scenario([this](const std::string&) { return node_.get(); },
                              [this]() { return node_.get(); });
  ASSERT_NO_FATAL_FAILURE(scenario.Run());
  ASSERT_GE(scenario.case_ids().size(), 48u);
  ASSERT_NO_FATAL_FAILURE(scenario.CompareAll(*node_, "before restart"));

  // The node stops and starts again later (its clock jumps by the time it was down).
  node_->SetTestClockStart(scenario.now() + 1000);
  ASSERT_TRUE(node_->Restart()) << node_->LogTail();
  scenario.Settle(*node_);
  ASSERT_NO_FATAL_FAILURE(scenario.CompareAll(*node_, "after restart"));
}

// Two nodes: the city node (everything but dwk-s01) and a township node for
// dwk-s01, linked. The township's rows go up to the city node exactly once
// (absolute values over the link's exactly-once inbox): the city node
// answers for dwk-s01, the county and the city, and ranks the county's
// townships with dwk-s01 among them; the same after the township node is
// killed and restarted (resent rows replace, never add).
TEST(AssessmentRollupTest, ChildNodeRowsRollUpExactlyOnce) {
  std::vector<FederationNode> plan = {
      {"szs", "szs", "szs", {"dwk-s01"}, ""},
      {"dwk-s01", "dwks01", "dwk-s01", {}, "szs"},
  };
  FederationOptions options;
  options.extra_flags = WhistledProcess::TestClockFlags(AssessmentScenario::kStartMs);
  LocalFederation fed(plan, options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  AssessmentScenario scenario(
      [&fed](const std::string& j) { return &fed.NodeHosting(j.empty() ? "szs" : j); },
      [&fed]() {
        return std::vector<WhistledProcess*>{&fed.node("szs"), &fed.node("dwk-s01")};
      });
  ASSERT_NO_FATAL_FAILURE(scenario.Run(30));
  ASSERT_NO_FATAL_FAILURE(scenario.CompareAll(fed.node("szs"), "two nodes"));

  fed.node("dwk-s01").SetTestClockStart(scenario.now());
  fed.Kill("dwk-s01");
  ASSERT_TRUE(fed.Restart("dwk-s01")) << fed.Describe();
  ASSERT_NO_FATAL_FAILURE(scenario.CompareAll(fed.node("szs"), "after the child restarted"));
}

// Three levels (city node <- county node <- township node): the township's
// rows reach the city through the county node, which adds its own.
TEST(AssessmentRollupTest, RowsRelayThroughAMiddleNode) {
  FederationOptions options;
  options.extra_flags = WhistledProcess::TestClockFlags(AssessmentScenario::kStartMs);
  LocalFederation fed(LocalFederation::ThreeLevel("dwk-s01"), options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  AssessmentScenario scenario(
      [&fed](const std::string& j) { return &fed.NodeHosting(j.empty() ? "szs" : j); },
      [&fed]() {
        return std::vector<WhistledProcess*>{&fed.node("szs"), &fed.node("dwk"),
                                             &fed.node("dwk-s01")};
      });
  ASSERT_NO_FATAL_FAILURE(scenario.Run(30));
  ASSERT_NO_FATAL_FAILURE(scenario.CompareAll(fed.node("szs"), "asked at the city node"));
  ASSERT_NO_FATAL_FAILURE(scenario.CompareAll(fed.node("dwk"), "asked at the county node", "dwk"));
}

// A node answers for its hosted root's subtree only: asked for a jurisdiction
// above its root (or beside it) it would hold only the part its own cases
// added, so it refuses, naming the node to ask; the city node answers.
TEST(AssessmentRollupTest, ANodeRefusesJurisdictionsAboveItsRoot) {
  std::vector<FederationNode> plan = {
      {"szs", "szs", "szs", {"dwk-s01"}, ""},
      {"dwk-s01", "dwks01", "dwk-s01", {}, "szs"},
  };
  FederationOptions options;
  options.extra_flags = WhistledProcess::TestClockFlags(AssessmentScenario::kStartMs);
  LocalFederation fed(plan, options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  AssessmentScenario scenario(
      [&fed](const std::string& j) { return &fed.NodeHosting(j.empty() ? "szs" : j); },
      [&fed]() {
        return std::vector<WhistledProcess*>{&fed.node("szs"), &fed.node("dwk-s01")};
      });
  const Identity city = {"leader.szs", "leader", "szs", ""};
  const Identity worker = {"gw.dwk-s01-c01-g001", "grid_worker", "dwk-s01-c01-g001", ""};
  ASSERT_FALSE(scenario.ReportOne("dwk-s01-c01-g001", "environment", worker).empty());

  AssessmentClient township(fed.node("dwk-s01").channel());
  v1::AssessResponse own;
  ASSERT_TRUE(township.Assess(city, "dwk-s01", "", {}, &own).ok());
  EXPECT_EQ(own.counts().at("received"), 1);
  for (const std::string above : {"dwk", "szs"}) {
    v1::AssessResponse out;
    grpc::Status s = township.Assess(city, above, "", {}, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << above;
    EXPECT_EQ(s.error_message(), "jurisdiction_id: \"" + above +
                                     "\" lies above this node's root \"dwk-s01\": ask the node "
                                     "hosting it (this node holds only part of its figures)");
    EXPECT_EQ(out.counts_size(), 0) << "no partial figures";
    v1::RankResponse rank;
    s = township.Rank(city, above, "received", {}, &rank);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << above;
    EXPECT_NE(s.error_message().find("lies above this node's root \"dwk-s01\""), std::string::npos)
        << s.error_message();
    EXPECT_EQ(rank.entries_size(), 0);
  }
  // Beside it: a sibling township, and a department hanging off the county.
  v1::AssessResponse out;
  grpc::Status s = township.Assess(city, "dwk-s02", "", {}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("\"dwk-s02\" lies outside this node's root \"dwk-s01\""),
            std::string::npos)
      << s.error_message();
  // A department is named as asked, with the jurisdiction that lies above.
  s = township.Assess(city, "", "dwk-urban_management", {}, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(),
            "department_id: \"dwk-urban_management\" hangs off jurisdiction \"dwk\", which lies "
            "above this node's root \"dwk-s01\": ask the node hosting it (this node holds only "
            "part of its figures)");
  EXPECT_EQ(out.counts_size(), 0) << "no partial figures";

  // The city node hosts them: it answers, with the township's row rolled up.
  AssessmentClient city_node(fed.node("szs").channel());
  int64_t received = -1;
  for (int attempt = 0; attempt < 100 && received != 1; ++attempt) {
    v1::AssessResponse county;
    ASSERT_TRUE(city_node.Assess(city, "dwk", "", {}, &county).ok());
    received = county.counts().at("received");
    if (received != 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(received, 1);
  v1::RankResponse rank;
  ASSERT_TRUE(city_node.Rank(city, "dwk", "received", {}, &rank).ok());
  EXPECT_GT(rank.entries_size(), 1);
}

TEST_F(AssessmentE2eTest, BadInputAndCallersWhoMayNotAskChangeNothing) {
  AssessmentClient client(node_->channel());
  const Identity city = {"leader.szs", "leader", "szs", ""};
  const Identity staff_s01 = {"staff.dwk-s01", "staff", "dwk-s01", ""};
  const Identity worker = {"gw.dwk-s01-c01-g001", "grid_worker", "dwk-s01-c01-g001", ""};
  const Identity desk = {"desk.p", "department", "", "dwk-s01-police_station"};

  // One case, so there is something to protect.
  AssessmentScenario scenario([this](const std::string&) { return node_.get(); },
                              [this]() { return node_.get(); });
  std::string id = scenario.ReportOne("dwk-s01-c01-g001", "environment", worker);
  ASSERT_FALSE(id.empty());
  v1::AssessResponse before;
  ASSERT_TRUE(client.Assess(city, "szs", "", {}, &before).ok());
  EXPECT_EQ(before.counts().at("received"), 1);

  struct Bad {
    const char* what;
    Identity who;
    std::string jurisdiction, department;
    v1::PeriodSpec period;
    grpc::StatusCode code;
    const char* field;
  };
  v1::PeriodSpec reversed;
  reversed.set_from_ms(AssessmentScenario::kStartMs + 2 * 86400000LL);
  reversed.set_to_ms(AssessmentScenario::kStartMs);
  v1::PeriodSpec too_long;
  too_long.set_from_ms(AssessmentScenario::kStartMs);
  too_long.set_to_ms(AssessmentScenario::kStartMs + 800 * 86400000LL);
  v1::PeriodSpec both;
  both.set_period(v1::PERIOD_DAY);
  both.set_from_ms(AssessmentScenario::kStartMs);
  both.set_to_ms(AssessmentScenario::kStartMs);
  v1::PeriodSpec odd_period;
  odd_period.set_period(static_cast<v1::Period>(42));
  const std::vector<Bad> bad = {
      {"unknown jurisdiction", city, "nowhere", "", {}, grpc::INVALID_ARGUMENT, "jurisdiction_id"},
      {"unknown department", city, "", "nope", {}, grpc::INVALID_ARGUMENT, "department_id"},
      {"neither subject", city, "", "", {}, grpc::INVALID_ARGUMENT, "jurisdiction_id"},
      {"both subjects",
       city,
       "szs",
       "dwk-s01-police_station",
       {},
       grpc::INVALID_ARGUMENT,
       "jurisdiction_id"},
      {"from after to", city, "szs", "", reversed, grpc::INVALID_ARGUMENT, "period.to_ms"},
      {"longer than two years", city, "szs", "", too_long, grpc::INVALID_ARGUMENT, "period.to_ms"},
      {"period and range", city, "szs", "", both, grpc::INVALID_ARGUMENT, "period.period"},
      {"unknown period", city, "szs", "", odd_period, grpc::INVALID_ARGUMENT, "period.period"},
      {"grid worker", worker, "dwk-s01-c01-g001", "", {}, grpc::PERMISSION_DENIED, ""},
      {"staff outside their subtree", staff_s01, "dwk-s02", "", {}, grpc::PERMISSION_DENIED, ""},
      {"staff above their subtree", staff_s01, "dwk", "", {}, grpc::PERMISSION_DENIED, ""},
      {"department for another",
       desk,
       "",
       "dwk-s01-judicial_office",
       {},
       grpc::PERMISSION_DENIED,
       ""},
      {"department for a jurisdiction", desk, "dwk-s01", "", {}, grpc::PERMISSION_DENIED, ""},
  };
  for (const auto& b : bad) {
    v1::AssessResponse out;
    grpc::Status s = client.Assess(b.who, b.jurisdiction, b.department, b.period, &out);
    EXPECT_EQ(s.error_code(), b.code) << b.what << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(b.field), std::string::npos)
        << b.what << ": " << s.error_message();
  }
  // Allowed: staff for their own subtree, a department for itself.
  v1::AssessResponse mine;
  EXPECT_TRUE(client.Assess(staff_s01, "dwk-s01-c01", "", {}, &mine).ok());
  EXPECT_TRUE(client.Assess(desk, "", "dwk-s01-police_station", {}, &mine).ok());

  // Rank: unknown figure, a department's rate, a grid worker, outside the subtree.
  struct BadRank {
    const char* what;
    Identity who;
    std::string jurisdiction, figure;
    grpc::StatusCode code;
    const char* field;
  };
  const std::vector<BadRank> bad_rank = {
      {"unknown figure", city, "dwk", "speed", grpc::INVALID_ARGUMENT, "figure"},
      {"empty figure", city, "dwk", "", grpc::INVALID_ARGUMENT, "figure"},
      {"department rate", city, "dwk", "report_in_rate", grpc::INVALID_ARGUMENT, "figure"},
      {"unknown parent", city, "nowhere", "received", grpc::INVALID_ARGUMENT, "jurisdiction_id"},
      {"grid worker", worker, "dwk-s01", "received", grpc::PERMISSION_DENIED, ""},
      {"department", desk, "dwk-s01", "received", grpc::PERMISSION_DENIED, ""},
      {"outside the subtree", staff_s01, "dwk", "received", grpc::PERMISSION_DENIED, ""},
  };
  for (const auto& b : bad_rank) {
    v1::RankResponse out;
    grpc::Status s = client.Rank(b.who, b.jurisdiction, b.figure, {}, &out);
    EXPECT_EQ(s.error_code(), b.code) << b.what << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(b.field), std::string::npos)
        << b.what << ": " << s.error_message();
  }
  v1::AssessResponse after;
  ASSERT_TRUE(client.Assess(city, "szs", "", {}, &after).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(after, before))
      << after.DebugString() << "\n"
      << before.DebugString();
}

}  // namespace
}  // namespace whistle::testing
