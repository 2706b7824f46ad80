// Report idempotency across a federation: a report whose owner is hosted on
// another node is forwarded over the node links to that node, which dedupes it
// per (user, request id) and creates the case; so a client that fails over to
// another node gets the first case back, and counts and assessment count it
// once. When the owner's node is down the report is still taken (created where
// it came in, handed over later), and the owner's node then answers a retry
// with that case. A forwarded report is hostile bytes: checked again.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "core/topology.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/link_support.h"
#include "tests/e2e/scenario.h"
#include "whistle/v1/assessment.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

// The dispute of the issue: a grid of 大武口区, owned inside the county (dwk node).
v1::ReportCommand Leak(const std::string& request_id) {
  auto r = NeighbourDispute(DawukouIds(), request_id);
  r.set_text("漏水");
  return r;
}

// The assessment counter `name` of `subject` as `node` has it now (-1 on error).
int64_t Received(WhistledProcess& node, const std::string& subject) {
  auto stub = v1::AssessmentService::NewStub(node.channel());
  grpc::ClientContext ctx;
  kCityLeader.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::AssessRequest req;
  req.set_jurisdiction_id(subject);
  v1::AssessResponse out;
  if (!stub->Assess(&ctx, req, &out).ok()) return -1;
  auto it = out.counts().find("received");
  return it == out.counts().end() ? -1 : it->second;
}

bool LinkUp(WhistledProcess& node, const std::string& peer) {
  return LinkOf(node.channel(), peer).connected();
}

class ReportForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fed_ = std::make_unique<LocalFederation>(LocalFederation::CountySplit());
    ASSERT_TRUE(fed_->ok()) << fed_->Describe();
    ASSERT_TRUE(WaitFor([&] { return LinkUp(city(), "dwk"); })) << fed_->Describe();
  }
  WhistledProcess& city() { return fed_->node("szs"); }
  WhistledProcess& county() { return fed_->node("dwk"); }
  std::unique_ptr<LocalFederation> fed_;
};

// QA's repro: the same report at the county node, then at the city node.
TEST_F(ReportForwardTest, RetryAtAnotherNodeReturnsTheFirstCase) {
  const Identity wang = GridWorker(DawukouIds());
  v1::Case first;
  auto s = ReportCase(county().channel(), wang, Leak("r1"), &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(first.id().rfind("dwk-", 0), 0u) << first.id();

  v1::Case again;
  s = ReportCase(city().channel(), wang, Leak("r1"), &again);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << fed_->Describe();
  EXPECT_EQ(again.id(), first.id());
  // Read at the city right after its answer: it is there.
  v1::Case read;
  s = GetCase(city().channel(), kCityLeader, first.id(), &read);
  EXPECT_TRUE(s.ok()) << s.error_message();

  // Other content with the same request id at the city: refused by the owner's node.
  auto other = Leak("r1");
  other.set_text("漏水, 又吵起来了");
  v1::Case refused;
  s = ReportCase(city().channel(), wang, other, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_NE(s.error_message().find("\"r1\""), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find(first.id()), std::string::npos) << s.error_message();

  // Counted once on both nodes, and in the assessment (the city's from the county's rows).
  EXPECT_TRUE(WaitFor([&] { return CountedCases(city().channel()) == 1; }, 5s))
      << CountedCases(city().channel());
  std::this_thread::sleep_for(500ms);  // a second case would have reached the city by now
  EXPECT_EQ(CountedCases(city().channel()), 1);
  EXPECT_EQ(CountedCases(county().channel()), 1);
  EXPECT_EQ(Received(county(), "dwk"), 1);
  EXPECT_TRUE(WaitFor([&] { return Received(city(), "dwk") == 1; }, 5s)) << Received(city(), "dwk");
  EXPECT_TRUE(WaitFor([&] { return Received(city(), "szs") == 1; }, 5s)) << Received(city(), "szs");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(Received(city(), "szs"), 1);
  v1::Case after;
  ASSERT_TRUE(GetCase(county().channel(), kCityLeader, first.id(), &after).ok());
  EXPECT_EQ(after.text(), "漏水");
  EXPECT_EQ(after.history_length(), first.history_length());
}

// The owner's node is down: the city takes the report (a city-numbered case),
// hands it over once the county is back, and the county then answers a retry
// with that case; so does the city.
TEST_F(ReportForwardTest, ReportTakenWhileOwnerDownIsFoundThereAfterwards) {
  const Identity wang = GridWorker(DawukouIds());
  fed_->Kill("dwk");
  ASSERT_TRUE(WaitFor([&] { return !LinkUp(city(), "dwk"); })) << fed_->Describe();

  v1::Case taken;
  auto s = ReportCase(city().channel(), wang, Leak("r2"), &taken);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(taken.id().rfind("szs-", 0), 0u) << taken.id();

  ASSERT_TRUE(fed_->Restart("dwk")) << fed_->Describe();
  // The hand-over arrives: the county owns the case.
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Case c;
        return GetCase(county().channel(), kCityLeader, taken.id(), &c).ok() && !c.read_only();
      },
      15s))
      << fed_->Describe();

  v1::Case retry;
  s = ReportCase(county().channel(), wang, Leak("r2"), &retry);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(retry.id(), taken.id());
  auto other = Leak("r2");
  other.set_severity(v1::SEVERITY_MAJOR);
  s = ReportCase(county().channel(), wang, other, &retry);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_NE(s.error_message().find(taken.id()), std::string::npos) << s.error_message();

  ASSERT_TRUE(WaitFor([&] { return LinkUp(city(), "dwk"); })) << fed_->Describe();
  s = ReportCase(city().channel(), wang, Leak("r2"), &retry);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(retry.id(), taken.id());
  EXPECT_EQ(CountedCases(county().channel()), 1);
  EXPECT_EQ(CountedCases(city().channel()), 1);
}

// The link to the owner's node goes silent after the forward is sent: the
// caller gets UNAVAILABLE and the city creates nothing of its own; the retry
// once the link is back is answered by the owner's node, one case in all.
TEST(ReportForwardCutTest, ForwardWithoutAnswerIsUnavailableAndTheRetryMakesOneCase) {
  FederationOptions options;
  options.proxied = {"dwk"};
  // Silence is noticed after three keepalives: long enough that the forward is surely
  // sent over the paused link first.
  options.extra_flags = {"--link-keepalive-ms", "1000"};
  LocalFederation fed(LocalFederation::CountySplit(), options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  WhistledProcess& city = fed.node("szs");
  WhistledProcess& county = fed.node("dwk");
  ASSERT_TRUE(WaitFor([&] { return LinkUp(city, "dwk"); })) << fed.Describe();
  const Identity wang = GridWorker(DawukouIds());

  fed.proxy("dwk")->Pause();
  v1::Case lost;
  auto s = ReportCase(city.channel(), wang, Leak("r3"), &lost);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
      << s.error_message() << " " << lost.ShortDebugString();
  EXPECT_EQ(CountedCases(city.channel()), 0);  // nothing taken here
  fed.proxy("dwk")->Resume();
  // (A retry while the city knows the link is down would be taken at the city: a
  // second case if the county did get the forward. Clients retry with backoff.)
  ASSERT_TRUE(WaitFor([&] { return LinkUp(city, "dwk"); }, 30s)) << fed.Describe();

  v1::Case made;
  ASSERT_TRUE(WaitFor(
      [&] {
        s = ReportCase(city.channel(), wang, Leak("r3"), &made);
        return s.error_code() != grpc::StatusCode::UNAVAILABLE;
      },
      30s))
      << s.error_message() << "\n"
      << fed.Describe();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(made.id().rfind("dwk-", 0), 0u) << made.id();
  v1::Case again;
  ASSERT_TRUE(ReportCase(county.channel(), wang, Leak("r3"), &again).ok());
  EXPECT_EQ(again.id(), made.id());
  EXPECT_TRUE(WaitFor([&] { return CountedCases(city.channel()) == 1; }, 5s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(CountedCases(city.channel()), 1);
  EXPECT_EQ(CountedCases(county.channel()), 1);
}

// A fake child node forwards reports to a parent that hosts their owner: each
// wrong one is refused with the code a client would get, and changes nothing;
// the well-formed one is created once, deduplicated like a client's.
TEST(ReportForwardHostileTest, ForwardedReportsAreCheckedAgain) {
  TempDir dir;
  WhistledProcess parent(dir.path() + "/szs", {"--node-id", "szs", "--child-jurisdictions", "dwk",
                                               "--link-keepalive-ms", "200"});
  ASSERT_TRUE(parent.running()) << parent.LogTail();
  RawLink link(parent.channel());
  ASSERT_TRUE(link.Write(HelloFrame(ValidHello("fakedwk", "dwk"))));
  v1::LinkFrame frame;
  ASSERT_TRUE(link.ReadSkippingPings(&frame));
  ASSERT_TRUE(frame.has_welcome()) << frame.ShortDebugString();

  const auto topology = *core::Topology::Build(core::ShizuishanTopology());
  std::string own_grid;  // a grid the parent hosts (outside dwk)
  for (const auto& j : topology->config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID && !topology->IsWithin(j.id(), "dwk")) {
      own_grid = j.id();
      break;
    }
  }
  ASSERT_FALSE(own_grid.empty());
  auto report = [&](const std::string& request_id) {
    v1::ReportCommand r;
    r.set_request_id(request_id);
    r.set_category("dispute.neighbour");
    r.set_severity(v1::SEVERITY_GENERAL);
    r.mutable_place()->set_grid_id(own_grid);
    r.set_text("漏水");
    return r;
  };
  auto forward = [&](uint64_t id, const v1::Caller& caller, const v1::ReportCommand& r) {
    v1::LinkFrame f;
    f.mutable_forward()->set_id(id);
    *f.mutable_forward()->mutable_caller() = caller;
    *f.mutable_forward()->mutable_report() = r;
    f.mutable_forward()->set_owner_id("szs");
    return f;
  };
  v1::Caller worker;
  worker.set_user("gw.x");
  worker.set_role(v1::ROLE_GRID_WORKER);
  worker.set_jurisdiction_id(own_grid);
  v1::Caller stranger = worker;  // a grid worker of a dwk grid: not this grid
  stranger.set_jurisdiction_id(DawukouIds().grid);
  v1::Caller department;
  department.set_user("dept.x");
  department.set_role(v1::ROLE_DEPARTMENT);
  department.set_department_id(DawukouIds().police);
  v1::Caller nobody;
  v1::Caller bad_user = worker;
  bad_user.set_user("gw x\x01");
  auto unknown_grid = report("h-5");
  unknown_grid.mutable_place()->set_grid_id("nowhere");
  auto no_request_id = report("");
  auto no_category = report("h-7");
  no_category.clear_category();
  v1::LinkFrame looping = forward(8, worker, report("h-8"));
  looping.mutable_forward()->set_hops(99);

  const std::map<uint64_t, std::pair<v1::LinkFrame, int>> hostile = {
      {1, {forward(1, stranger, report("h-1")), 7}},    // caller's jurisdiction lacks the grid
      {2, {forward(2, department, report("h-2")), 7}},  // departments do not report
      {3, {forward(3, nobody, report("h-3")), 3}},      // no caller
      {4, {forward(4, bad_user, report("h-4")), 3}},    // a user id that is no id
      {5, {forward(5, worker, unknown_grid), 3}},       // unknown grid
      {6, {forward(6, worker, no_request_id), 3}},      // no request id
      {7, {forward(7, worker, no_category), 3}},        // no category
      {8, {looping, 14}},                               // too many hops
  };
  for (const auto& [id, f] : hostile) ASSERT_TRUE(link.Write(f.first));
  std::map<uint64_t, v1::ForwardAnswer> answers;
  while (answers.size() < hostile.size() && link.ReadSkippingPings(&frame)) {
    if (frame.has_answer()) answers[frame.answer().id()] = frame.answer();
  }
  ASSERT_EQ(answers.size(), hostile.size());
  for (const auto& [id, f] : hostile) {
    EXPECT_EQ(answers[id].code(), f.second) << "forward " << id << ": " << answers[id].message();
    EXPECT_FALSE(answers[id].has_case_()) << "forward " << id;
  }
  EXPECT_NE(answers[5].message().find("report.place.grid_id"), std::string::npos)
      << answers[5].message();
  EXPECT_EQ(CountedCases(parent.channel()), 0);

  // The well-formed one: created on the parent, once; other content is refused.
  auto next = [&](uint64_t want) {
    while (link.ReadSkippingPings(&frame)) {
      if (frame.has_answer() && frame.answer().id() == want) return frame.answer();
    }
    return v1::ForwardAnswer();
  };
  ASSERT_TRUE(link.Write(forward(20, worker, report("ok-1"))));
  v1::ForwardAnswer made = next(20);
  ASSERT_EQ(made.code(), 0) << made.message();
  EXPECT_EQ(made.case_().id().rfind("szs-", 0), 0u) << made.case_().id();
  EXPECT_EQ(made.sync().case_().id(), made.case_().id());
  ASSERT_TRUE(link.Write(forward(21, worker, report("ok-1"))));
  v1::ForwardAnswer same = next(21);
  EXPECT_EQ(same.code(), 0) << same.message();
  EXPECT_EQ(same.case_().id(), made.case_().id());
  auto changed = report("ok-1");
  changed.set_text("不漏了");
  ASSERT_TRUE(link.Write(forward(22, worker, changed)));
  v1::ForwardAnswer reused = next(22);
  EXPECT_EQ(reused.code(), 6) << reused.message();
  EXPECT_NE(reused.message().find(made.case_().id()), std::string::npos) << reused.message();
  link.Finish();

  EXPECT_TRUE(Alive(parent.pid())) << parent.LogTail();
  EXPECT_EQ(CountedCases(parent.channel()), 1);
  v1::Case stored;
  ASSERT_TRUE(GetCase(parent.channel(), kCityLeader, made.case_().id(), &stored).ok());
  EXPECT_EQ(stored.text(), "漏水");
  EXPECT_EQ(stored.reporter(), "gw.x");
}

}  // namespace
}  // namespace whistle::testing
