// core::Placement over the Shizuishan topology: which jurisdictions a node
// hosts, the link a request for any other one takes, and the links a case's
// copy travels to.
#include "core/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/topology.h"

namespace whistle::core {
namespace {

const std::string kParent(kParentPeer);

class PlacementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto built = Topology::Build(ShizuishanTopology());
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    topology_ = new std::shared_ptr<const Topology>(*built);
  }
  static void TearDownTestSuite() {
    delete topology_;
    topology_ = nullptr;
  }

  static const Topology& topology() { return **topology_; }

  static Placement Build(const std::string& root, std::vector<std::string> children,
                         bool has_parent) {
    auto p = Placement::Build(topology(), root, std::move(children), has_parent);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : Placement();
  }

  static Status BuildError(const std::string& root, std::vector<std::string> children,
                           bool has_parent) {
    auto p = Placement::Build(topology(), root, std::move(children), has_parent);
    EXPECT_FALSE(p.ok()) << "built a placement for root \"" << root << "\"";
    return p.ok() ? Status::Ok() : p.status();
  }

  // The city node split by county: szs hosts only the city level.
  static Placement CountySplitCity() { return Build("szs", {"dwk", "hn", "pl"}, false); }
  // One county node of that split.
  static Placement CountySplitDwk() { return Build("dwk", {}, true); }
  // A county node whose first two streets run on township nodes.
  static Placement TownshipSplitDwk() { return Build("dwk", {"dwk-s01", "dwk-s02"}, true); }

  static inline std::shared_ptr<const Topology>* topology_ = nullptr;
};

// A case at a grid of 长胜街道 (dwk-s01), with nothing else set.
v1::Case CaseAt(const std::string& grid, const std::string& owner) {
  v1::Case c;
  c.set_id("szs-000000000001");
  c.mutable_place()->set_grid_id(grid);
  c.set_owner_id(owner);
  c.set_routed_to_id(owner);
  c.set_state(v1::CASE_STATE_ACCEPTED);
  return c;
}

void Summon(v1::Case& c, std::initializer_list<const char*> departments) {
  for (const char* d : departments) c.add_summons()->set_department_id(d);
}

void Touch(v1::Case& c, std::initializer_list<const char*> ids) {
  for (const char* id : ids) c.add_touched_ids(id);
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Unknown ids are ignored or sent to the parent, so a typo below would make a
// check pass for the wrong reason: every id these tests use must exist.
TEST_F(PlacementTest, IdsUsedHereExist) {
  for (const char* id : {"szs",
                         "dwk",
                         "hn",
                         "pl",
                         "dwk-s01",
                         "dwk-s02",
                         "dwk-s03",
                         "dwk-s11",
                         "hn-s01",
                         "hn-s07",
                         "pl-s02",
                         "pl-s14",
                         "dwk-s01-c03",
                         "dwk-s02-c01",
                         "dwk-s03-c01",
                         "pl-s03-c01",
                         "pl-s03-c02",
                         "pl-s14-c01",
                         "dwk-s01-c03-g002",
                         "pl-s03-c01-g001"}) {
    EXPECT_NE(topology().Find(id), nullptr) << id;
  }
  for (const char* id : {"dwk-s01-police_station", "dwk-s02-police_station",
                         "dwk-s03-judicial_office", "pl-s03-police_station", "dwk-public_security",
                         "hn-public_security", "szs-public_security", "szs-petitions"}) {
    EXPECT_NE(topology().FindDepartment(id), nullptr) << id;
  }
  EXPECT_EQ(topology().Find("atlantis"), nullptr);
}

// ---- Build errors name the flag and the entry ----

TEST_F(PlacementTest, UnknownHostedRoot) {
  Status s = BuildError("nowhere", {}, false);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "--hosted-jurisdiction: unknown jurisdiction \"nowhere\"");
}

TEST_F(PlacementTest, UnknownChild) {
  Status s = BuildError("szs", {"dwk", "atlantis"}, false);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "--child-jurisdictions: \"atlantis\" is unknown");
}

TEST_F(PlacementTest, ChildNotBelowTheRoot) {
  // A sibling county.
  Status sibling = BuildError("dwk", {"hn"}, true);
  EXPECT_EQ(sibling.code(), Code::kInvalidArgument);
  EXPECT_EQ(sibling.message(),
            "--child-jurisdictions: \"hn\" is not below the hosted root \"dwk\"");
  // An ancestor.
  Status ancestor = BuildError("dwk-s01", {"dwk"}, true);
  EXPECT_EQ(ancestor.message(),
            "--child-jurisdictions: \"dwk\" is not below the hosted root \"dwk-s01\"");
  // The root itself is not strictly below itself.
  Status self = BuildError("dwk", {"dwk"}, true);
  EXPECT_EQ(self.message(), "--child-jurisdictions: \"dwk\" is not below the hosted root \"dwk\"");
  // The default root ("" = the city) is named too.
  Status defaulted = BuildError("", {"szs"}, false);
  EXPECT_EQ(defaulted.message(),
            "--child-jurisdictions: \"szs\" is not below the hosted root \"szs\"");
}

TEST_F(PlacementTest, OverlappingChildren) {
  // A child nested in an earlier one, in either order.
  Status nested = BuildError("szs", {"dwk", "dwk-s01"}, false);
  EXPECT_EQ(nested.code(), Code::kInvalidArgument);
  EXPECT_EQ(nested.message(), "--child-jurisdictions: \"dwk-s01\" overlaps \"dwk\"");
  Status enclosing = BuildError("szs", {"hn", "dwk-s01-c01", "dwk"}, false);
  EXPECT_EQ(enclosing.message(), "--child-jurisdictions: \"dwk\" overlaps \"dwk-s01-c01\"");
  // The same child twice.
  Status twice = BuildError("szs", {"pl", "pl"}, false);
  EXPECT_EQ(twice.message(), "--child-jurisdictions: \"pl\" overlaps \"pl\"");
}

TEST_F(PlacementTest, ParentOnTheRootNode) {
  Status named = BuildError("szs", {"dwk"}, true);
  EXPECT_EQ(named.code(), Code::kInvalidArgument);
  EXPECT_EQ(named.message(),
            "--parent-address: this node hosts the root \"szs\", which has no parent");
  // "" defaults to the root, which still has no parent.
  Status defaulted = BuildError("", {}, true);
  EXPECT_EQ(defaulted.message(),
            "--parent-address: this node hosts the root \"szs\", which has no parent");
}

TEST_F(PlacementTest, SiblingChildrenAtDifferentLevelsAreFine) {
  Placement p = Build("szs", {"dwk-s01", "hn", "pl-s03-c01"}, false);
  EXPECT_EQ(p.child_roots(), (std::vector<std::string>{"dwk-s01", "hn", "pl-s03-c01"}));
  EXPECT_TRUE(p.Hosts("dwk"));
  EXPECT_TRUE(p.Hosts("dwk-s02-c01"));
  EXPECT_FALSE(p.Hosts("dwk-s01-c02"));
  EXPECT_EQ(p.NextHop("dwk-s01-c02"), "dwk-s01");
  EXPECT_EQ(p.NextHop("pl-s03-c01-g001"), "pl-s03-c01");
  EXPECT_EQ(p.NextHop("pl-s03-c02"), "");
}

// ---- Hosts / NextHop ----

TEST_F(PlacementTest, SingleNodeHostsEverything) {
  Placement p = Build("", {}, false);
  EXPECT_EQ(p.hosted_root(), "szs");
  EXPECT_FALSE(p.federated());
  EXPECT_FALSE(p.has_parent());
  for (const char* id : {"szs", "dwk", "hn-s03", "pl-s14", "dwk-s01-c03-g002"}) {
    EXPECT_TRUE(p.Hosts(id)) << id;
    EXPECT_EQ(p.NextHop(id), "") << id;
  }
}

TEST_F(PlacementTest, CountySplitCityNode) {
  Placement p = CountySplitCity();
  EXPECT_EQ(p.hosted_root(), "szs");
  EXPECT_TRUE(p.federated());
  EXPECT_FALSE(p.has_parent());
  EXPECT_TRUE(p.Hosts("szs"));
  for (const char* county : {"dwk", "hn", "pl"}) {
    EXPECT_FALSE(p.Hosts(county)) << county;
    EXPECT_EQ(p.NextHop(county), county);
  }
  EXPECT_FALSE(p.Hosts("dwk-s01"));
  EXPECT_EQ(p.NextHop("dwk-s01"), "dwk");
  EXPECT_EQ(p.NextHop("dwk-s01-c03-g002"), "dwk");
  EXPECT_EQ(p.NextHop("hn-s07"), "hn");
  EXPECT_EQ(p.NextHop("pl-s14"), "pl");
  EXPECT_EQ(p.NextHop("szs"), "");
  // Every grid lives on exactly one county node.
  int grids = 0;
  for (const auto& j : topology().config().jurisdictions()) {
    if (j.level() != v1::LEVEL_GRID) continue;
    ++grids;
    EXPECT_FALSE(p.Hosts(j.id())) << j.id();
    EXPECT_EQ(p.NextHop(j.id()), j.id().substr(0, j.id().find('-'))) << j.id();
  }
  EXPECT_EQ(grids, 1903);
}

TEST_F(PlacementTest, CountySplitCountyNode) {
  Placement p = CountySplitDwk();
  EXPECT_EQ(p.hosted_root(), "dwk");
  EXPECT_TRUE(p.federated());
  EXPECT_TRUE(p.has_parent());
  EXPECT_TRUE(p.child_roots().empty());
  for (const char* id : {"dwk", "dwk-s01", "dwk-s11", "dwk-s01-c03", "dwk-s01-c03-g002"}) {
    EXPECT_TRUE(p.Hosts(id)) << id;
    EXPECT_EQ(p.NextHop(id), "") << id;
  }
  // Above and beside: through the parent.
  for (const char* id : {"szs", "hn", "pl", "hn-s01", "pl-s14-c01"}) {
    EXPECT_FALSE(p.Hosts(id)) << id;
    EXPECT_EQ(p.NextHop(id), kParent) << id;
  }
}

TEST_F(PlacementTest, TownshipSplit) {
  Placement p = TownshipSplitDwk();
  EXPECT_TRUE(p.Hosts("dwk"));
  EXPECT_TRUE(p.Hosts("dwk-s03"));
  EXPECT_TRUE(p.Hosts("dwk-s03-c01"));
  EXPECT_FALSE(p.Hosts("dwk-s01"));
  EXPECT_FALSE(p.Hosts("dwk-s02-c01"));
  EXPECT_EQ(p.NextHop("dwk-s01"), "dwk-s01");
  EXPECT_EQ(p.NextHop("dwk-s01-c03-g002"), "dwk-s01");
  EXPECT_EQ(p.NextHop("dwk-s02-c01"), "dwk-s02");
  EXPECT_EQ(p.NextHop("dwk-s03-c01"), "");
  EXPECT_EQ(p.NextHop("dwk"), "");
  EXPECT_EQ(p.NextHop("szs"), kParent);
  EXPECT_EQ(p.NextHop("pl-s01"), kParent);

  // The township node itself: its street and below; the county is its parent.
  Placement street = Build("dwk-s01", {}, true);
  EXPECT_TRUE(street.Hosts("dwk-s01"));
  EXPECT_TRUE(street.Hosts("dwk-s01-c03-g002"));
  EXPECT_FALSE(street.Hosts("dwk"));
  EXPECT_FALSE(street.Hosts("dwk-s02"));
  EXPECT_EQ(street.NextHop("dwk"), kParent);
  EXPECT_EQ(street.NextHop("dwk-s02-c01"), kParent);
  EXPECT_EQ(street.NextHop("dwk-s01-c01"), "");
}

// The rows that count a unit: the hosted part of its path, itself first.
TEST_F(PlacementTest, HostedPathKeepsOnlyWhatThisNodeHosts) {
  using Ids = std::vector<std::string>;
  const std::string grid = "dwk-s03-c01-g001";
  EXPECT_EQ(Build("szs", {}, false).HostedPath(grid),
            (Ids{grid, "szs", "dwk", "dwk-s03", "dwk-s03-c01"}));
  EXPECT_EQ(TownshipSplitDwk().HostedPath(grid), (Ids{grid, "dwk", "dwk-s03", "dwk-s03-c01"}));
  // A unit on a child node: only the rows above that child.
  EXPECT_EQ(TownshipSplitDwk().HostedPath("dwk-s01-c03-g002"), (Ids{"dwk"}));
  EXPECT_EQ(CountySplitCity().HostedPath(grid), (Ids{"szs"}));
  EXPECT_EQ(CountySplitCity().HostedPath("szs"), (Ids{"szs"}));
  EXPECT_EQ(Build("dwk-s01", {}, true).HostedPath("dwk-s01-c03"), (Ids{"dwk-s01-c03", "dwk-s01"}));
  EXPECT_TRUE(CountySplitDwk().HostedPath("hn-s01").empty());
  EXPECT_TRUE(CountySplitDwk().HostedPath("atlantis").empty());
}

TEST_F(PlacementTest, UnknownIdsAreNeitherHostedNorBelow) {
  Placement p = CountySplitCity();
  EXPECT_FALSE(p.Hosts("atlantis"));
  // Outside this node's root, as documented.
  EXPECT_EQ(p.NextHop("atlantis"), kParent);
}

// ---- JurisdictionOf ----

TEST_F(PlacementTest, JurisdictionOfResolvesDepartments) {
  EXPECT_EQ(JurisdictionOf(topology(), "dwk-s01"), "dwk-s01");
  EXPECT_EQ(JurisdictionOf(topology(), "dwk-s01-police_station"), "dwk-s01");
  EXPECT_EQ(JurisdictionOf(topology(), "hn-public_security"), "hn");
  EXPECT_EQ(JurisdictionOf(topology(), "szs-petitions"), "szs");
  EXPECT_EQ(JurisdictionOf(topology(), "atlantis-police"), "");
  EXPECT_EQ(JurisdictionOf(topology(), ""), "");
}

// ---- SyncPeers ----

TEST_F(PlacementTest, SyncPeersOnTheCityNode) {
  Placement p = CountySplitCity();
  // Reported at a dwk grid, escalated to the city, which summoned a hn bureau
  // and its own petitions office; a pl street touched it too.
  v1::Case c = CaseAt("dwk-s01-c03-g002", "szs");
  c.set_routed_to_id("dwk-s01-c03");
  Summon(c, {"hn-public_security", "szs-petitions"});
  Touch(c, {"pl-s02", "szs", "dwk-s01"});
  std::vector<std::string> peers = p.SyncPeers(c, "");
  EXPECT_EQ(peers, (std::vector<std::string>{"dwk", "hn", "pl"}));  // each once
  // Never back where it came from.
  EXPECT_EQ(p.SyncPeers(c, "hn"), (std::vector<std::string>{"dwk", "pl"}));
  EXPECT_EQ(p.SyncPeers(c, "dwk"), (std::vector<std::string>{"hn", "pl"}));

  // A department id resolves to its jurisdiction: a summoned street office is
  // reached through its county.
  v1::Case summoned = CaseAt("dwk-s01-c03-g002", "dwk");
  Summon(summoned, {"pl-s03-police_station"});
  EXPECT_EQ(p.SyncPeers(summoned, ""), (std::vector<std::string>{"dwk", "pl"}));
  EXPECT_EQ(p.SyncPeers(summoned, "dwk"), (std::vector<std::string>{"pl"}));
}

TEST_F(PlacementTest, SyncPeersNeverNameTheLocalNode) {
  Placement p = CountySplitCity();
  // Everything about this case lives on the city node.
  v1::Case c = CaseAt("dwk-s01-c03-g002", "szs");
  c.clear_place();
  Summon(c, {"szs-petitions", "szs-public_security"});
  Touch(c, {"szs"});
  EXPECT_TRUE(p.SyncPeers(c, "").empty());
  // Unknown ids (a hostile or stale copy) are ignored, not sent "upwards".
  Touch(c, {"atlantis"});
  Summon(c, {"atlantis-police"});
  c.set_routed_to_id("nowhere");
  EXPECT_TRUE(p.SyncPeers(c, "").empty());

  // On a county node: its own jurisdictions are local; the copy still goes
  // up once, so the city node sees every case of its subtree.
  Placement dwk = CountySplitDwk();
  v1::Case local = CaseAt("dwk-s01-c03-g002", "dwk-s01");
  Summon(local, {"dwk-s01-police_station", "dwk-public_security"});
  Touch(local, {"dwk-s01-c03", "dwk"});
  EXPECT_EQ(dwk.SyncPeers(local, ""), (std::vector<std::string>{kParent}));
  // ... but never back up when it came from there.
  EXPECT_TRUE(dwk.SyncPeers(local, kParentPeer).empty());
}

TEST_F(PlacementTest, SyncPeersOnACountyNode) {
  Placement p = CountySplitDwk();
  // Escalated from a dwk street to the city: the copy goes up once.
  v1::Case c = CaseAt("dwk-s01-c03-g002", "szs");
  c.set_routed_to_id("dwk-s01");
  Summon(c, {"dwk-s01-police_station", "hn-public_security", "szs-petitions"});
  Touch(c, {"dwk-s01", "szs"});
  EXPECT_EQ(p.SyncPeers(c, ""), (std::vector<std::string>{kParent}));
  // A copy that came from the parent goes nowhere else.
  EXPECT_TRUE(p.SyncPeers(c, kParentPeer).empty());
}

TEST_F(PlacementTest, SyncPeersInATownshipSplit) {
  Placement p = TownshipSplitDwk();
  // Owned by the county node, reported in dwk-s01 (a township node),
  // summoning a dwk-s02 office (another township node), touched by the city.
  v1::Case c = CaseAt("dwk-s01-c03-g002", "dwk");
  c.set_routed_to_id("dwk-s01-c03");
  Summon(c, {"dwk-s02-police_station", "dwk-s03-judicial_office", "dwk-public_security"});
  Touch(c, {"szs", "dwk-s03"});
  std::vector<std::string> peers = p.SyncPeers(c, "");
  EXPECT_EQ(Sorted(peers), Sorted({"dwk-s01", "dwk-s02", kParent}));
  EXPECT_EQ(peers.size(), 3u);
  EXPECT_EQ(Sorted(p.SyncPeers(c, "dwk-s01")), Sorted({"dwk-s02", kParent}));
  EXPECT_EQ(Sorted(p.SyncPeers(c, kParentPeer)), Sorted({"dwk-s01", "dwk-s02"}));
  for (const auto& peer : peers) EXPECT_FALSE(p.Hosts(peer)) << peer;

  // The township node sees everything beyond its street as the parent.
  Placement street = Build("dwk-s01", {}, true);
  EXPECT_EQ(street.SyncPeers(c, ""), (std::vector<std::string>{kParent}));
  EXPECT_TRUE(street.SyncPeers(c, kParentPeer).empty());
}

}  // namespace
}  // namespace whistle::core
