// Federation end to end: real whistled processes linked over gRPC (township
// -> county -> city), driven through the public API of each caller's own node.
#include "tests/e2e/federation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "tests/e2e/scenario.h"
#include "whistle/v1/link.grpc.pb.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

v1::Command Cmd(const std::function<void(v1::Command&)>& fill) {
  v1::Command c;
  fill(c);
  return c;
}

// A leader at the root may read any case on any node.
const Identity kCityLeader{"sun.city", "leader", "szs", ""};

std::vector<std::string> Lines(const v1::GetHistoryResponse& h) {
  std::vector<std::string> out;
  for (const auto& e : h.entries()) out.push_back(e.SerializeAsString());
  return out;
}

v1::GetHistoryResponse HistoryOn(WhistledProcess& node, const std::string& case_id) {
  v1::GetHistoryResponse h;
  EXPECT_TRUE(History(*node.cases(), kCityLeader, case_id, &h).ok()) << node.address();
  return h;
}

// The seqs of `case_id`'s changes a watch of `subtree` on `node` streams from
// the start of its log, in stream order, once `want` have come (or 10 s).
std::vector<int64_t> WatchedSeqs(WhistledProcess& node, const std::string& subtree,
                                 const std::string& case_id, size_t want) {
  auto stub = v1::WatchService::NewStub(node.channel());
  grpc::ClientContext ctx;
  kCityLeader.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::WatchRequest req;
  req.set_jurisdiction_id(subtree);
  req.set_from_token("0");
  auto stream = stub->Watch(&ctx, req);
  std::vector<int64_t> seqs;
  v1::Change change;
  while (seqs.size() < want && stream->Read(&change)) {
    if (change.case_change().case_id() == case_id) seqs.push_back(change.case_change().seq());
  }
  ctx.TryCancel();
  stream->Finish();
  return seqs;
}

v1::GetLinksResponse LinksOf(WhistledProcess& node) {
  auto stub = v1::NodeService::NewStub(node.channel());
  grpc::ClientContext ctx;
  v1::GetLinksResponse out;
  EXPECT_TRUE(stub->GetLinks(&ctx, v1::GetLinksRequest(), &out).ok());
  return out;
}

bool AllLinksUp(LocalFederation& fed) {
  for (const auto& n : fed.plan()) {
    const v1::GetLinksResponse links = LinksOf(fed.node(n.name));
    for (const auto& l : links.links()) {
      if (!l.connected()) return false;
    }
  }
  return true;
}

class FederationTest : public ::testing::Test {
 protected:
  ScenarioIds ids_ = DawukouIds();
  Identity grid_ = GridWorker(ids_);
  Identity community_{"li.community", "staff", ids_.community, ""};
  Identity street_{"zhao.street", "staff", ids_.township, ""};
  Identity county_{"qian.county", "staff", ids_.county, ""};
  Identity city_{"sun.city", "staff", "szs", ""};
  Identity bureau_{"desk.psb", "department", "", ids_.county + "-public_security"};
  Identity police_{"desk.police", "department", "", ids_.police};

  // Transfers are asynchronous: the sender answers once durable locally.
  static bool OwnedOn(WhistledProcess& node, const std::string& id) {
    return WaitFor([&] {
      v1::Case c;
      return Get(*node.cases(), kCityLeader, id, &c).ok() && !c.read_only();
    });
  }

  // Acts on `node` and expects OK and `state`; returns the answer.
  v1::Case Step(WhistledProcess& node, const Identity& who, const std::string& id,
                const v1::Command& command, v1::CaseState state) {
    v1::Case out;
    grpc::Status s = Act(*node.cases(), who, id, command, &out);
    EXPECT_TRUE(s.ok()) << command.ShortDebugString() << " on " << node.address() << ": "
                        << s.error_message();
    EXPECT_EQ(out.state(), state) << command.ShortDebugString();
    return out;
  }
};

TEST_F(FederationTest, CaseEscalatesTwiceAcrossProcessesAndHistoryIsIdenticalOnEveryNode) {
  LocalFederation fed(LocalFederation::ThreeLevel(ids_.township));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); })) << fed.Describe();
  auto& township = fed.NodeHosting(ids_.grid);
  auto& county = fed.NodeHosting(ids_.county);
  auto& city = fed.NodeHosting("szs");
  ASSERT_NE(&township, &county);

  v1::Case reported;
  ASSERT_TRUE(Report(*township.cases(), grid_, NeighbourDispute(ids_, "fed-1"), &reported).ok());
  const std::string id = reported.id();
  EXPECT_EQ(id.rfind(LocalFederation::NodeIdFor(ids_.township) + "-", 0), 0u) << id;
  std::vector<int64_t> answered = {reported.history_length()};
  auto step = [&](WhistledProcess& node, const Identity& who, const v1::Command& c,
                  v1::CaseState state) {
    answered.push_back(Step(node, who, id, c, state).history_length());
  };
  step(township, community_, Cmd([](auto& c) { c.mutable_accept(); }), v1::CASE_STATE_ACCEPTED);
  step(township, community_, Cmd([](auto& c) { c.mutable_escalate()->set_reason("to street"); }),
       v1::CASE_STATE_ACCEPTED);
  // Across processes: the township node hands the case to the county node.
  step(township, street_, Cmd([](auto& c) { c.mutable_escalate()->set_reason("to county"); }),
       v1::CASE_STATE_ACCEPTED);
  ASSERT_TRUE(OwnedOn(county, id));
  // The county whistles its own bureau; the desk reports in on the county node.
  step(county, county_,
       Cmd([&](auto& c) { c.mutable_whistle()->add_department_ids(bureau_.department); }),
       v1::CASE_STATE_IN_PROGRESS);
  step(county, bureau_, Cmd([](auto& c) { c.mutable_report_in()->set_note("到场"); }),
       v1::CASE_STATE_IN_PROGRESS);
  // Second hop: county -> city.
  step(county, county_, Cmd([](auto& c) { c.mutable_escalate()->set_reason("to city"); }),
       v1::CASE_STATE_ACCEPTED);
  ASSERT_TRUE(OwnedOn(city, id));
  step(city, city_, Cmd([](auto& c) { c.mutable_keep(); }), v1::CASE_STATE_IN_PROGRESS);
  step(city, city_, Cmd([](auto& c) { c.mutable_resolve(); }), v1::CASE_STATE_RESOLVED);
  // The grid worker verifies and rates on the township node: forwarded two hops up.
  step(township, grid_, Cmd([](auto& c) { c.mutable_verify()->set_fixed(true); }),
       v1::CASE_STATE_VERIFIED);
  step(city, city_, Cmd([](auto& c) { c.mutable_close(); }), v1::CASE_STATE_CLOSED);
  step(township, grid_, Cmd([](auto& c) { c.mutable_evaluate()->set_score(5); }),
       v1::CASE_STATE_EVALUATED);

  for (size_t i = 0; i < answered.size(); ++i) EXPECT_EQ(answered[i], static_cast<int64_t>(i + 1));
  // Every node that touched the case shows the same history, entry by entry.
  auto reference = HistoryOn(city, id);
  ASSERT_EQ(reference.entries_size(), static_cast<int>(answered.size()));
  ASSERT_TRUE(WaitFor([&] {
    return Lines(HistoryOn(county, id)) == Lines(reference) &&
           Lines(HistoryOn(township, id)) == Lines(reference);
  })) << "county:\n"
      << HistoryOn(county, id).DebugString() << "township:\n"
      << HistoryOn(township, id).DebugString();
  // One owner: the city; elsewhere a read-only copy that says where it lives.
  v1::Case on_city, on_township;
  ASSERT_TRUE(Get(*city.cases(), kCityLeader, id, &on_city).ok());
  ASSERT_TRUE(Get(*township.cases(), kCityLeader, id, &on_township).ok());
  EXPECT_FALSE(on_city.read_only());
  EXPECT_EQ(on_city.owner_node_id(), "szs");
  EXPECT_TRUE(on_township.read_only());
  EXPECT_EQ(on_township.owner_id(), "szs");
  EXPECT_EQ(on_township.state(), v1::CASE_STATE_EVALUATED);
}

TEST_F(FederationTest, TownshipWhistlesACountyBureauThatReportsInOnItsOwnNode) {
  LocalFederation fed(LocalFederation::ThreeLevel(ids_.township));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); })) << fed.Describe();
  auto& township = fed.NodeHosting(ids_.grid);
  auto& county = fed.NodeHosting(ids_.county);
  auto& city = fed.NodeHosting("szs");

  v1::Case reported;
  ASSERT_TRUE(Report(*township.cases(), grid_, NeighbourDispute(ids_, "fed-2"), &reported).ok());
  const std::string id = reported.id();
  Step(township, community_, id, Cmd([](auto& c) { c.mutable_accept(); }), v1::CASE_STATE_ACCEPTED);
  Step(township, community_, id, Cmd([](auto& c) { c.mutable_escalate()->set_reason("调解未果"); }),
       v1::CASE_STATE_ACCEPTED);
  Step(township, street_, id, Cmd([&](auto& c) {
         c.mutable_whistle()->add_department_ids(ids_.police);
         c.mutable_whistle()->add_department_ids(bureau_.department);
       }),
       v1::CASE_STATE_IN_PROGRESS);
  // The county node learns of the summons without any call there.
  ASSERT_TRUE(WaitFor([&] {
    v1::Case c;
    return Get(*county.cases(), bureau_, id, &c).ok() && c.summons_size() == 2;
  }));
  Step(township, police_, id, Cmd([](auto& c) { c.mutable_report_in(); }),
       v1::CASE_STATE_IN_PROGRESS);
  // The bureau's desk talks to its own (county) node; the owner is the township node.
  v1::Case in = Step(county, bureau_, id, Cmd([](auto& c) { c.mutable_report_in(); }),
                     v1::CASE_STATE_IN_PROGRESS);
  // Its own node answers reads with the change at once (read-your-writes).
  v1::Case seen;
  ASSERT_TRUE(Get(*county.cases(), bureau_, id, &seen).ok());
  EXPECT_EQ(seen.history_length(), in.history_length());
  EXPECT_TRUE(seen.read_only());
  Step(township, police_, id, Cmd([](auto& c) { c.mutable_resolve(); }),
       v1::CASE_STATE_IN_PROGRESS);
  Step(county, bureau_, id, Cmd([](auto& c) { c.mutable_resolve(); }), v1::CASE_STATE_RESOLVED);
  Step(township, grid_, id, Cmd([](auto& c) { c.mutable_verify()->set_fixed(true); }),
       v1::CASE_STATE_VERIFIED);
  Step(township, street_, id, Cmd([](auto& c) { c.mutable_close(); }), v1::CASE_STATE_CLOSED);
  Step(township, grid_, id, Cmd([](auto& c) { c.mutable_evaluate()->set_score(4); }),
       v1::CASE_STATE_EVALUATED);

  auto reference = HistoryOn(township, id);
  EXPECT_EQ(reference.entries_size(), 11);
  ASSERT_TRUE(WaitFor([&] { return Lines(HistoryOn(county, id)) == Lines(reference); }));
  // The city never touched it, yet holds a read-only copy with the whole
  // history: every ancestor node sees the cases of its subtree.
  ASSERT_TRUE(WaitFor([&] { return Lines(HistoryOn(city, id)) == Lines(reference); }));
  v1::Case at_city;
  ASSERT_TRUE(Get(*city.cases(), kCityLeader, id, &at_city).ok());
  EXPECT_TRUE(at_city.read_only());
  EXPECT_EQ(at_city.state(), v1::CASE_STATE_EVALUATED);
  // A leader watching the county at the city node sees every transition of
  // it once, in order, though the case never left the township node.
  std::vector<int64_t> expected;
  for (const auto& e : reference.entries()) expected.push_back(e.seq());
  EXPECT_EQ(WatchedSeqs(city, ids_.county, id, expected.size()), expected);
  // Counts and lists: the township node owns it; the county's and the city's
  // nodes count and list it from their copies (read-only), once each.
  const std::pair<const char*, WhistledProcess*> nodes[] = {
      {"township", &township}, {"county", &county}, {"city", &city}};
  for (const auto& [name, node] : nodes) {
    v1::CountCasesResponse counts;
    auto count = [&, node = node] {
      grpc::ClientContext ctx;
      kCityLeader.Apply(ctx);
      v1::CountCasesRequest req;
      req.set_jurisdiction_id(ids_.county);
      counts.Clear();
      return node->cases()->Count(&ctx, req, &counts).ok();
    };
    // The copy's count follows its batch by a moment.
    WaitFor([&] { return count() && counts.counts(v1::CASE_STATE_EVALUATED - 1).count() == 1; });
    for (const auto& c : counts.counts()) {
      EXPECT_EQ(c.count(), c.state() == v1::CASE_STATE_EVALUATED ? 1 : 0)
          << name << " " << c.ShortDebugString();
    }
    grpc::ClientContext list_ctx;
    kCityLeader.Apply(list_ctx);
    v1::ListCasesRequest list_req;
    list_req.set_jurisdiction_id(ids_.county);
    v1::ListCasesResponse list;
    ASSERT_TRUE(node->cases()->List(&list_ctx, list_req, &list).ok());
    ASSERT_EQ(list.cases_size(), 1) << name;
    EXPECT_EQ(list.cases(0).id(), id);
    EXPECT_EQ(list.cases(0).read_only(), node != &township) << name;
  }
}

// Sent up the links to the owner's node, which creates it (numbered there).
TEST_F(FederationTest, MajorReportOnTownshipIsCreatedOnTheCountyThatOwnsIt) {
  LocalFederation fed(LocalFederation::ThreeLevel(ids_.township));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  auto& township = fed.NodeHosting(ids_.grid);
  auto report = NeighbourDispute(ids_, "fed-major");
  report.set_severity(v1::SEVERITY_MAJOR);
  v1::Case created;
  auto status = Report(*township.cases(), grid_, report, &created);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << fed.Describe();
  ASSERT_NE(created.owner_id(), ids_.community);
  const std::string owner_root = fed.NodeFor(created.owner_id());
  ASSERT_NE(owner_root, fed.NodeFor(ids_.township));
  EXPECT_EQ(created.id().rfind(LocalFederation::NodeIdFor(owner_root) + "-", 0), 0u)
      << created.id();
  // Read on the township right after its answer: its copy is there already.
  v1::Case copy;
  auto read = Get(*township.cases(), kCityLeader, created.id(), &copy);
  EXPECT_TRUE(read.ok()) << read.error_message();
  EXPECT_TRUE(copy.read_only());
  // The owner's node has it and owns it; a retry on the township returns the same case.
  v1::Case owned;
  ASSERT_TRUE(Get(*fed.node(owner_root).cases(), kCityLeader, created.id(), &owned).ok());
  EXPECT_FALSE(owned.read_only());
  v1::Case again;
  ASSERT_TRUE(Report(*township.cases(), grid_, report, &again).ok());
  EXPECT_EQ(again.id(), created.id());
}

}  // namespace
}  // namespace whistle::testing
