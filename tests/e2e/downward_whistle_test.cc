// Whistling downward across processes: a case owned on the county node
// summons a township's police station hosted on the township node; the
// summons reaches the desk's inbox there, the desk reports in on its own node
// (forwarded to the owner), and a caller without the right is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include "tests/e2e/federation.h"
#include "tests/e2e/scenario.h"
#include "whistle/v1/inbox.grpc.pb.h"
#include "whistle/v1/link.grpc.pb.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 15s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

bool AllLinksUp(LocalFederation& fed) {
  for (const auto& n : fed.plan()) {
    auto stub = v1::NodeService::NewStub(fed.node(n.name).channel());
    grpc::ClientContext ctx;
    v1::GetLinksResponse links;
    if (!stub->GetLinks(&ctx, v1::GetLinksRequest(), &links).ok()) return false;
    for (const auto& l : links.links()) {
      if (!l.connected()) return false;
    }
  }
  return true;
}

v1::Command Cmd(const std::function<void(v1::Command&)>& fill) {
  v1::Command c;
  fill(c);
  return c;
}

const Identity kCityLeader{"sun.city", "leader", "szs", ""};

TEST(DownwardWhistleTest, CountyLeaderSummonsATownshipDeskOnItsChildNode) {
  ScenarioIds ids = DawukouIds();
  LocalFederation fed(LocalFederation::ThreeLevel(ids.township));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); })) << fed.Describe();
  auto& township = fed.NodeHosting(ids.grid);
  auto& county = fed.NodeHosting(ids.county);
  ASSERT_NE(&township, &county);

  Identity community{"li.community", "staff", ids.community, ""};
  Identity street{"zhao.street", "staff", ids.township, ""};
  Identity county_leader{"chen.county", "leader", ids.county, ""};
  Identity city_staff{"sun.staff", "staff", "szs", ""};
  Identity police{"desk.police", "department", "", ids.police};

  v1::Case c;
  ASSERT_TRUE(Report(*township.cases(), GridWorker(ids), NeighbourDispute(ids, "down-1"), &c).ok());
  const std::string id = c.id();
  v1::Case out;
  ASSERT_TRUE(
      Act(*township.cases(), community, id, Cmd([](auto& x) { x.mutable_accept(); }), &out).ok());
  ASSERT_TRUE(Act(*township.cases(), community, id,
                  Cmd([](auto& x) { x.mutable_escalate()->set_reason("to street"); }), &out)
                  .ok());
  ASSERT_TRUE(Act(*township.cases(), street, id,
                  Cmd([](auto& x) { x.mutable_escalate()->set_reason("to county"); }), &out)
                  .ok());
  ASSERT_TRUE(WaitFor([&] {
    v1::Case got;
    return Get(*county.cases(), kCityLeader, id, &got).ok() && !got.read_only();
  })) << fed.Describe();

  // City staff has authority over the county's case but may only summon upward.
  v1::Command whistle = Cmd([&](auto& x) { x.mutable_whistle()->add_department_ids(ids.police); });
  grpc::Status refused = Act(*county.cases(), city_staff, id, whistle, &out);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
  EXPECT_NE(refused.error_message().find("hangs neither off owner"), std::string::npos)
      << refused.error_message();

  // The county leader reaches down to the township's police station.
  grpc::Status s = Act(*county.cases(), county_leader, id, whistle, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.state(), v1::CASE_STATE_IN_PROGRESS);

  // The desk sees it pending in its inbox on its own node.
  auto inbox = v1::InboxService::NewStub(township.channel());
  auto list = [&](v1::CaseInboxResponse* r) {
    grpc::ClientContext ctx;
    police.Apply(ctx);
    return inbox->DepartmentCases(&ctx, v1::CaseInboxRequest(), r);
  };
  v1::CaseInboxResponse r;
  ASSERT_TRUE(WaitFor([&] {
    return list(&r).ok() && r.items_size() == 1 && r.items(0).case_().id() == id &&
           r.items(0).pending();
  })) << r.DebugString();
  EXPECT_GT(r.items(0).report_in_by_ms(), 0);

  // It reports in on the township node; the owner (county node) records it.
  s = Act(*township.cases(), police, id, Cmd([](auto& x) { x.mutable_report_in(); }), &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Case on_county;
  ASSERT_TRUE(Get(*county.cases(), kCityLeader, id, &on_county).ok());
  ASSERT_EQ(on_county.summons_size(), 1);
  EXPECT_GT(on_county.summons(0).reported_in_at_ms(), 0);
  ASSERT_TRUE(WaitFor([&] {
    return list(&r).ok() && r.items_size() == 1 && !r.items(0).pending();
  })) << r.DebugString();

  // The county node's live watch shows the case's transitions there in order,
  // the township desk's report-in included.
  auto watch = v1::WatchService::NewStub(county.channel());
  grpc::ClientContext ctx;
  county_leader.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::WatchRequest req;
  req.set_from_token("0");
  auto reader = watch->Watch(&ctx, req);
  v1::Change change;
  std::vector<v1::TransitionKind> kinds;
  int64_t last_seq = 0;
  while (reader->Read(&change)) {
    if (!change.has_case_change() || change.case_change().case_id() != id) continue;
    EXPECT_GT(change.case_change().seq(), last_seq);
    last_seq = change.case_change().seq();
    kinds.push_back(change.case_change().kind());
    if (change.case_change().kind() == v1::TRANSITION_KIND_REPORT_IN) {
      ctx.TryCancel();
      break;
    }
  }
  (void)reader->Finish();
  ASSERT_FALSE(kinds.empty());
  EXPECT_EQ(kinds.back(), v1::TRANSITION_KIND_REPORT_IN);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), v1::TRANSITION_KIND_WHISTLE), kinds.end());
}

}  // namespace
}  // namespace whistle::testing
