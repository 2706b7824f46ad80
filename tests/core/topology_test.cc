#include "core/topology.h"

#include <gtest/gtest.h>

#include <string>

namespace whistle::core {
namespace {

void Add(v1::Topology& t, const std::string& id, v1::Level level, const std::string& parent) {
  auto* j = t.add_jurisdictions();
  j->set_id(id);
  j->set_name(id);
  j->set_level(level);
  j->set_parent_id(parent);
}

void AddDept(v1::Topology& t, const std::string& id, const std::string& jurisdiction) {
  auto* d = t.add_departments();
  d->set_id(id);
  d->set_kind("police_station");
  d->set_jurisdiction_id(jurisdiction);
}

// city "c" → county "k" → township "t" → communities "m1", "m2" → grids.
v1::Topology Small() {
  v1::Topology t;
  Add(t, "c", v1::LEVEL_CITY, "");
  Add(t, "k", v1::LEVEL_COUNTY, "c");
  Add(t, "t", v1::LEVEL_TOWNSHIP, "k");
  Add(t, "m1", v1::LEVEL_COMMUNITY, "t");
  Add(t, "g1", v1::LEVEL_GRID, "m1");
  Add(t, "g2", v1::LEVEL_GRID, "m1");
  Add(t, "m2", v1::LEVEL_COMMUNITY, "t");
  Add(t, "g3", v1::LEVEL_GRID, "m2");
  AddDept(t, "t-police_station", "t");
  return t;
}

std::string BuildError(const v1::Topology& config) {
  auto built = Topology::Build(config);
  EXPECT_FALSE(built.ok());
  if (built.ok()) return "";
  EXPECT_EQ(built.status().code(), Code::kInvalidArgument);
  return built.status().message();
}

TEST(TopologyTest, BuildsAndIndexes) {
  auto built = Topology::Build(Small());
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = **built;
  EXPECT_EQ(t.root().id(), "c");
  EXPECT_EQ(t.jurisdiction_count(), 8u);
  ASSERT_NE(t.Find("g2"), nullptr);
  EXPECT_EQ(t.Find("nope"), nullptr);
  EXPECT_EQ(t.Parent("g2")->id(), "m1");
  EXPECT_EQ(t.Parent("c"), nullptr);
  EXPECT_EQ(t.FindDepartment("t-police_station")->jurisdiction_id(), "t");
  EXPECT_EQ(t.FindDepartment("x"), nullptr);
}

TEST(TopologyTest, IsWithin) {
  auto t = *Topology::Build(Small());
  EXPECT_TRUE(t->IsWithin("g1", "g1"));
  EXPECT_TRUE(t->IsWithin("g1", "m1"));
  EXPECT_TRUE(t->IsWithin("g1", "c"));
  EXPECT_FALSE(t->IsWithin("g1", "m2"));
  EXPECT_FALSE(t->IsWithin("m1", "g1"));
  EXPECT_FALSE(t->IsWithin("g1", "unknown"));
  EXPECT_FALSE(t->IsWithin("unknown", "c"));
}

TEST(TopologyTest, AncestorAtPathChildrenSubtree) {
  auto t = *Topology::Build(Small());
  EXPECT_EQ(t->AncestorAt("g3", v1::LEVEL_TOWNSHIP)->id(), "t");
  EXPECT_EQ(t->AncestorAt("g3", v1::LEVEL_GRID)->id(), "g3");
  EXPECT_EQ(t->AncestorAt("t", v1::LEVEL_GRID), nullptr);

  std::string path;
  for (const auto* j : t->Path("g3")) path += j->id() + " ";
  EXPECT_EQ(path, "c k t m2 ");

  std::string children;
  for (const auto* j : t->Children("t")) children += j->id() + " ";
  EXPECT_EQ(children, "m1 m2 ");

  std::string subtree;
  for (const auto* j : t->Subtree("t")) subtree += j->id() + " ";
  EXPECT_EQ(subtree, "t m1 g1 g2 m2 g3 ");

  EXPECT_EQ(t->GridsBelow("c"), 3);
  EXPECT_EQ(t->GridsBelow("m1"), 2);
  EXPECT_EQ(t->GridsBelow("g1"), 1);
  ASSERT_EQ(t->DepartmentsOf("t").size(), 1u);
  EXPECT_TRUE(t->DepartmentsOf("k").empty());
}

TEST(TopologyTest, RejectsDuplicateId) {
  v1::Topology config = Small();
  Add(config, "g1", v1::LEVEL_GRID, "m2");
  EXPECT_EQ(BuildError(config), "jurisdictions[8].id: duplicate id \"g1\"");
}

TEST(TopologyTest, RejectsBadIdFormat) {
  v1::Topology config = Small();
  Add(config, "Bad_Id", v1::LEVEL_GRID, "m2");
  EXPECT_EQ(BuildError(config),
            "jurisdictions[8].id: \"Bad_Id\" must be 1..64 characters of [a-z0-9-]");
  config = Small();
  Add(config, std::string(65, 'a'), v1::LEVEL_GRID, "m2");
  EXPECT_NE(BuildError(config).find("jurisdictions[8].id"), std::string::npos);
  config = Small();
  Add(config, "", v1::LEVEL_GRID, "m2");
  EXPECT_NE(BuildError(config).find("jurisdictions[8].id"), std::string::npos);
}

TEST(TopologyTest, RejectsUnknownParent) {
  v1::Topology config = Small();
  Add(config, "g9", v1::LEVEL_GRID, "m9");
  EXPECT_EQ(BuildError(config), "jurisdictions[8].parent_id: unknown parent \"m9\" of \"g9\"");
}

TEST(TopologyTest, RejectsCycle) {
  v1::Topology config = Small();
  Add(config, "x", v1::LEVEL_COMMUNITY, "y");
  Add(config, "y", v1::LEVEL_GRID, "x");
  EXPECT_EQ(BuildError(config), "jurisdictions[8].parent_id: \"x\" is part of a cycle");
}

TEST(TopologyTest, RejectsWrongLevelOrder) {
  v1::Topology config = Small();
  Add(config, "g9", v1::LEVEL_GRID, "t");
  EXPECT_EQ(BuildError(config),
            "jurisdictions[8].level: \"g9\" is LEVEL_GRID but its parent \"t\" is "
            "LEVEL_TOWNSHIP; a child must be exactly one level below");
}

TEST(TopologyTest, RejectsMissingLevel) {
  v1::Topology config = Small();
  Add(config, "g9", v1::LEVEL_UNSPECIFIED, "m1");
  EXPECT_EQ(BuildError(config), "jurisdictions[8].level: required for \"g9\"");
}

TEST(TopologyTest, RejectsNoRoot) {
  v1::Topology config;
  Add(config, "a", v1::LEVEL_CITY, "b");
  Add(config, "b", v1::LEVEL_COUNTY, "a");
  EXPECT_EQ(BuildError(config), "jurisdictions: no root (every entry has a parent_id)");
  EXPECT_EQ(BuildError(v1::Topology()), "jurisdictions: no root (every entry has a parent_id)");
}

TEST(TopologyTest, RejectsSeveralRoots) {
  v1::Topology config = Small();
  Add(config, "c2", v1::LEVEL_CITY, "");
  EXPECT_EQ(BuildError(config),
            "jurisdictions[8].parent_id: \"c2\" is a second root besides \"c\"");
}

TEST(TopologyTest, RejectsBadDepartments) {
  v1::Topology config = Small();
  AddDept(config, "t-police_station", "t");
  EXPECT_EQ(BuildError(config), "departments[1].id: duplicate id \"t-police_station\"");

  config = Small();
  AddDept(config, "x-police", "nowhere");
  EXPECT_EQ(BuildError(config),
            "departments[1].jurisdiction_id: unknown jurisdiction \"nowhere\" of \"x-police\"");

  config = Small();
  AddDept(config, "X Police", "t");
  EXPECT_EQ(BuildError(config),
            "departments[1].id: \"X Police\" must be 1..64 characters of [a-z0-9-_]");
}

TEST(TopologyTest, ParsesJsonAndTextFormat) {
  auto json = ParseTopology(
      R"({"name": "x", "jurisdictions": [{"id": "c", "level": "LEVEL_CITY"}]})", "inline.json");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(json->jurisdictions(0).level(), v1::LEVEL_CITY);

  auto text =
      ParseTopology("name: \"x\"\njurisdictions { id: \"c\" level: LEVEL_CITY }\n", "inline.txtpb");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->jurisdictions(0).id(), "c");
}

TEST(TopologyTest, ParseErrorsNameTheOrigin) {
  auto unknown = ParseTopology(R"({"name": "x", "bogus": 1})", "topo.json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(unknown.status().message().rfind("topo.json: invalid JSON Topology", 0), 0u)
      << unknown.status().message();

  auto bad_text = ParseTopology("name: \"x\"\nbogus: 1\n", "topo.txtpb");
  ASSERT_FALSE(bad_text.ok());
  EXPECT_EQ(
      bad_text.status().message().rfind("topo.txtpb: invalid text-format Topology: line 2", 0), 0u)
      << bad_text.status().message();
}

}  // namespace
}  // namespace whistle::core
