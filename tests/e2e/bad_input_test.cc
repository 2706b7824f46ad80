// Bad input and permissions over gRPC: the right status, a message naming
// the field, and nothing changed.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/e2e/scenario.h"

namespace whistle::testing {
namespace {

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    node_ = new WhistledProcess(dir_->path());
  }
  static void TearDownTestSuite() {
    delete node_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_TRUE(node_->running());
    stub = node_->cases();
  }

  // A fresh case in REPORTED, owned by the community.
  std::string NewCase() {
    v1::Case c;
    auto status = Report(*stub, GridWorker(ids),
                         NeighbourDispute(ids, "bad-" + std::to_string(counter_++)), &c);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return c.id();
  }

  // The case and its history are as they were.
  void ExpectUnchanged(const std::string& id, const v1::Case& before) {
    v1::Case now;
    ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &now).ok());
    EXPECT_EQ(now.SerializeAsString(), before.SerializeAsString());
  }

  static inline TempDir* dir_ = nullptr;
  static inline WhistledProcess* node_ = nullptr;
  static inline int counter_ = 0;
  ScenarioIds ids = DawukouIds();
  std::unique_ptr<v1::CaseService::Stub> stub;
};

TEST_F(BadInputTest, MissingIdentityIsUnauthenticated) {
  v1::Case c;
  auto status = Report(*stub, Identity{}, NeighbourDispute(ids, "anon"), &c);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(status.error_message().find("authorization"), std::string::npos);
}

TEST_F(BadInputTest, ReportFieldsAreNamed) {
  struct Case {
    std::function<void(v1::ReportCommand&)> spoil;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](auto& r) { r.set_category("no.such.category"); }, "report.category"},
      {[](auto& r) { r.set_severity(v1::SEVERITY_UNSPECIFIED); }, "report.severity"},
      {[](auto& r) { r.mutable_place()->set_grid_id("nowhere"); }, "report.place.grid_id"},
      {[](auto& r) { r.set_text(""); }, "report.text"},
      {[](auto& r) { r.set_request_id(""); }, "report.request_id"},
  };
  for (const auto& bad : cases) {
    auto report = NeighbourDispute(ids, "field-" + bad.field);
    bad.spoil(report);
    v1::Case c;
    auto status = Report(*stub, GridWorker(ids), report, &c);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.field;
    EXPECT_NE(status.error_message().find(bad.field), std::string::npos)
        << bad.field << " not named in: " << status.error_message();
  }
}

TEST_F(BadInputTest, BadCommandChangesNothing) {
  std::string id = NewCase();
  v1::Case before;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &before).ok());
  v1::Command cmd;
  cmd.mutable_evaluate()->set_score(7);
  v1::Case out;
  auto status = Act(*stub, GridWorker(ids), id, cmd, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("command.evaluate.score"), std::string::npos)
      << status.error_message();
  ExpectUnchanged(id, before);

  v1::Command empty;
  status = Act(*stub, GridWorker(ids), id, empty, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ExpectUnchanged(id, before);
}

TEST_F(BadInputTest, WrongStateIsFailedPreconditionNamingTheState) {
  std::string id = NewCase();
  v1::Case before;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &before).ok());
  v1::Command cmd;
  cmd.mutable_close();
  v1::Case out;
  auto status = Act(*stub, Identity{"li.community", "staff", ids.community, ""}, id, cmd, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("REPORTED"), std::string::npos) << status.error_message();
  ExpectUnchanged(id, before);
}

TEST_F(BadInputTest, UnknownCaseIsNotFound) {
  v1::Command cmd;
  cmd.mutable_accept();
  v1::Case out;
  auto status = Act(*stub, Identity{"li.community", "staff", ids.community, ""}, "szs-999999999999",
                    cmd, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BadInputTest, CallersActOnlyInsideTheirJurisdiction) {
  // A grid worker of another county reports into this grid.
  v1::Case c;
  auto status = Report(*stub, Identity{"grid.hn", "grid_worker", "", ""},
                       NeighbourDispute(ids, "outsider"), &c);
  EXPECT_NE(status.error_code(), grpc::StatusCode::OK);

  std::string id = NewCase();
  v1::Case before;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), id, &before).ok());
  v1::Command supervise;
  supervise.mutable_supervise()->set_note("催办");
  v1::Case out;
  status = Act(*stub, Identity{"leader.hn", "leader", "hn", ""}, id, supervise, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();

  v1::Command accept;
  accept.mutable_accept();
  status = Act(*stub, GridWorker(ids), id, accept, &out);  // grid workers do not accept
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  ExpectUnchanged(id, before);

  // A department reports in where it was not summoned.
  status = Act(
      *stub, Identity{"desk.police", "department", "", ids.police}, id,
      [] {
        v1::Command c;
        c.mutable_report_in();
        return c;
      }(),
      &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  ExpectUnchanged(id, before);

  // Reading a case of another county.
  status = Get(*stub, Identity{"leader.hn", "leader", "hn", ""}, id, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST(StartupTest, BrokenTopologyStopsStartupNamingTheEntry) {
  TempDir dir;
  std::string path = dir.path() + "/topology.json";
  {
    std::ofstream out(path);
    out << R"({"jurisdictions":[
      {"id":"city","name":"c","level":"LEVEL_CITY"},
      {"id":"county-a","name":"a","level":"LEVEL_COUNTY","parent_id":"city"},
      {"id":"town-x","name":"x","level":"LEVEL_TOWNSHIP","parent_id":"county-zz"}]})";
  }
  auto [code, output] = RunWhistled({"--topology-file", path, "--data-dir", dir.path() + "/d",
                                     "--listen", "127.0.0.1:0", "--metrics-listen", ""});
  EXPECT_NE(code, 0);
  EXPECT_NE(output.find("county-zz"), std::string::npos) << output;
}

TEST(StartupTest, BadFlagStopsStartupNamingTheFlag) {
  auto [code, output] = RunWhistled({"--listen", "nonsense"});
  EXPECT_NE(code, 0);
  EXPECT_NE(output.find("--listen"), std::string::npos) << output;
  std::tie(code, output) = RunWhistled({"--no-such-flag", "1"});
  EXPECT_NE(code, 0);
  EXPECT_NE(output.find("--no-such-flag"), std::string::npos) << output;
}

}  // namespace
}  // namespace whistle::testing

namespace whistle::testing {
namespace {

TEST(HostedSubtreeTest, NodeHostingOneStreetKeepsCasesInside) {
  TempDir dir;
  ScenarioIds ids = DawukouIds();
  WhistledProcess node(dir.path(), {"--hosted-jurisdiction", ids.township});
  ASSERT_TRUE(node.running()) << node.log_path();
  auto stub = node.cases();
  v1::Case c;
  ASSERT_TRUE(Report(*stub, GridWorker(ids), NeighbourDispute(ids, "h-1"), &c).ok());
  Identity community{"li", "staff", ids.community, ""};
  Identity street{"zhao", "staff", ids.township, ""};
  v1::Command accept, escalate;
  accept.mutable_accept();
  escalate.mutable_escalate()->set_reason("上报");
  ASSERT_TRUE(Act(*stub, community, c.id(), accept, &c).ok());
  ASSERT_TRUE(Act(*stub, community, c.id(), escalate, &c).ok());
  EXPECT_EQ(c.owner_id(), ids.township);
  v1::Case before = c;
  auto status = Act(*stub, street, c.id(), escalate, &c);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("hosted by another node"), std::string::npos)
      << status.error_message();
  v1::Case now;
  ASSERT_TRUE(Get(*stub, GridWorker(ids), before.id(), &now).ok());
  EXPECT_EQ(now.SerializeAsString(), before.SerializeAsString());
}

}  // namespace
}  // namespace whistle::testing
