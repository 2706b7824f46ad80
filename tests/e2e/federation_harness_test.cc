// The multi-node test harness itself: plans, WhistledProcess ports and Restart, and a
// LocalFederation coming up with a proxied link. Says nothing about what the links carry
// (that is for the federation tests proper).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "tests/e2e/federation.h"
#include "tests/e2e/scenario.h"

namespace whistle::testing {
namespace {

TEST(FederationPlanTest, CountySplit) {
  auto plan = LocalFederation::CountySplit();
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].name, "szs");
  EXPECT_EQ(plan[0].hosted, "szs");
  EXPECT_EQ(plan[0].parent, "");
  EXPECT_EQ(plan[0].children, (std::vector<std::string>{"dwk", "hn", "pl"}));
  for (size_t i = 1; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].parent, "szs");
    EXPECT_TRUE(plan[i].children.empty());
    EXPECT_EQ(plan[i].node_id, plan[i].hosted);
  }
}

TEST(FederationPlanTest, ThreeLevel) {
  auto plan = LocalFederation::ThreeLevel("hn-s03");
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].hosted, "szs");
  EXPECT_EQ(plan[0].children, std::vector<std::string>{"hn"});
  EXPECT_EQ(plan[1].hosted, "hn");
  EXPECT_EQ(plan[1].parent, "szs");
  EXPECT_EQ(plan[1].children, std::vector<std::string>{"hn-s03"});
  EXPECT_EQ(plan[2].hosted, "hn-s03");
  EXPECT_EQ(plan[2].node_id, "hns03");
  EXPECT_EQ(plan[2].parent, "hn");
  EXPECT_THROW(LocalFederation::ThreeLevel("hn"), std::invalid_argument);
  EXPECT_THROW(LocalFederation::ThreeLevel("nowhere"), std::invalid_argument);
}

TEST(FederationPlanTest, TownshipSplitHas40NodesWithUniqueIds) {
  auto plan = LocalFederation::TownshipSplit();
  ASSERT_EQ(plan.size(), 40u);
  std::set<std::string> ids;
  int townships = 0;
  for (const auto& n : plan) {
    ids.insert(n.node_id);
    EXPECT_GE(n.node_id.size(), 1u);
    EXPECT_LE(n.node_id.size(), 16u);
    if (n.hosted.find("-s") != std::string::npos) {
      ++townships;
      EXPECT_TRUE(n.children.empty());
    }
  }
  EXPECT_EQ(ids.size(), 40u);
  EXPECT_EQ(townships, 36);
  EXPECT_EQ(LocalFederation::NodeIdFor("dwk-s01"), "dwks01");
}

TEST(FederationPlanTest, NodeForIsTheDeepestHostingNode) {
  auto county = LocalFederation::CountySplit();
  EXPECT_EQ(LocalFederation::NodeFor(county, "szs"), "szs");
  EXPECT_EQ(LocalFederation::NodeFor(county, "dwk"), "dwk");
  EXPECT_EQ(LocalFederation::NodeFor(county, "dwk-s01-c01-g001"), "dwk");
  EXPECT_EQ(LocalFederation::NodeFor(county, "pl-s14"), "pl");
  EXPECT_EQ(LocalFederation::NodeFor(county, "nowhere"), "");
  auto three = LocalFederation::ThreeLevel("dwk-s01");
  EXPECT_EQ(LocalFederation::NodeFor(three, "dwk-s01-c01-g001"), "dwk-s01");
  EXPECT_EQ(LocalFederation::NodeFor(three, "dwk-s02"), "dwk");
  EXPECT_EQ(LocalFederation::NodeFor(three, "hn-s01-c01"), "szs");
}

TEST(WhistledProcessTest, RestartKeepsPortsAndData) {
  TempDir dir;
  ScenarioIds ids = DawukouIds();
  WhistledProcess node(dir.path() + "/n");
  ASSERT_TRUE(node.running()) << node.LogTail();
  const int port = node.port(), metrics_port = node.metrics_port();
  EXPECT_EQ(node.address(), "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(node.metrics_address(), "127.0.0.1:" + std::to_string(metrics_port));
  v1::Case c;
  ASSERT_TRUE(Report(*node.cases(), GridWorker(ids), NeighbourDispute(ids, "h-1"), &c).ok());

  node.Kill();
  EXPECT_FALSE(node.running());
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  EXPECT_EQ(node.port(), port);
  EXPECT_EQ(node.metrics_port(), metrics_port);
  v1::Case again;
  ASSERT_TRUE(Get(*node.cases(), GridWorker(ids), c.id(), &again).ok());
  EXPECT_EQ(again.id(), c.id());

  node.Terminate();
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  EXPECT_EQ(node.port(), port);
  ASSERT_TRUE(node.Restart()) << "restart of a running node terminates it first\n"
                              << node.LogTail();
  EXPECT_EQ(node.HealthStatus(), 1);
}

TEST(WhistledProcessTest, StartsOnGivenPorts) {
  TempDir dir;
  WhistledProcess::Ports ports{FreePort(), FreePort()};
  WhistledProcess node(dir.path() + "/n", {}, ports);
  ASSERT_TRUE(node.running()) << node.LogTail();
  EXPECT_EQ(node.port(), ports.grpc);
  EXPECT_EQ(node.metrics_port(), ports.metrics);
}

TEST(LocalFederationTest, ThreeLevelWithAProxiedLinkStartsKillsAndRestarts) {
  FederationOptions options;
  options.proxied = {"dwk-s01"};
  LocalFederation fed(LocalFederation::ThreeLevel("dwk-s01"), options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_NE(fed.proxy("dwk-s01"), nullptr);
  EXPECT_EQ(fed.proxy("dwk-s01")->target(), fed.node("dwk").address());
  EXPECT_EQ(fed.proxy("dwk"), nullptr);
  EXPECT_EQ(fed.NodeFor("dwk-s01-c01-g001"), "dwk-s01");
  EXPECT_EQ(&fed.NodeHosting("hn"), &fed.node("szs"));
  EXPECT_THROW(fed.node("nope"), std::invalid_argument);

  // The child dials the proxy, not the parent; the parents know their children.
  auto args = [&](const std::string& name) {
    std::ifstream in("/proc/" + std::to_string(fed.node(name).pid()) + "/cmdline");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  auto flag = [](const std::string& name, const std::string& value) {
    return "--" + name + '\0' + value + '\0';
  };
  EXPECT_NE(args("dwk-s01").find(flag("parent-address", fed.proxy("dwk-s01")->address())),
            std::string::npos);
  EXPECT_EQ(args("dwk-s01").find("--child-jurisdictions"), std::string::npos);
  EXPECT_NE(args("dwk").find(flag("parent-address", fed.node("szs").address())), std::string::npos);
  EXPECT_NE(args("dwk").find(flag("child-jurisdictions", "dwk-s01")), std::string::npos);
  EXPECT_NE(args("szs").find(flag("child-jurisdictions", "dwk")), std::string::npos);
  EXPECT_EQ(args("szs").find("--parent-address"), std::string::npos);
  EXPECT_NE(args("dwk-s01").find(flag("node-id", "dwks01")), std::string::npos);
  EXPECT_NE(args("dwk-s01").find(flag("link-keepalive-ms", "200")), std::string::npos);
  // The child's link to its parent runs through the proxy.
  for (int i = 0; i < 100 && fed.proxy("dwk-s01")->connections() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(fed.proxy("dwk-s01")->connections(), 1) << fed.Describe();

  ScenarioIds ids = DawukouIds();
  auto& township = fed.NodeHosting(ids.grid);
  v1::Case c;
  ASSERT_TRUE(Report(*township.cases(), GridWorker(ids), NeighbourDispute(ids, "f-1"), &c).ok())
      << fed.Describe();

  const int port = fed.node("dwk").port();
  fed.Kill("dwk");
  EXPECT_FALSE(fed.node("dwk").running());
  EXPECT_TRUE(fed.node("dwk-s01").running());
  ASSERT_TRUE(fed.Restart("dwk")) << fed.Describe();
  EXPECT_EQ(fed.node("dwk").port(), port);  // so the proxy (and any parent address) stays valid

  fed.Kill("dwk-s01");
  ASSERT_TRUE(fed.Restart("dwk-s01")) << fed.Describe();
  v1::Case again;
  ASSERT_TRUE(Get(*township.cases(), GridWorker(ids), c.id(), &again).ok()) << fed.Describe();
}

TEST(LocalFederationTest, CountySplitStarts) {
  LocalFederation fed(LocalFederation::CountySplit());
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  std::set<int> ports;
  for (const auto& n : fed.plan()) {
    EXPECT_TRUE(fed.node(n.name).running()) << n.name;
    EXPECT_EQ(fed.node(n.name).HealthStatus(), 1) << n.name;
    ports.insert(fed.node(n.name).port());
    EXPECT_EQ(fed.proxy(n.name), nullptr);
  }
  EXPECT_EQ(ports.size(), 4u);
}

}  // namespace
}  // namespace whistle::testing
