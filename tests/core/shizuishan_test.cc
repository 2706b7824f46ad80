#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/policy.h"
#include "core/topology.h"

namespace whistle::core {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(ShizuishanTest, BuildsWithTheSeedCounts) {
  auto built = Topology::Build(ShizuishanTopology());
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = **built;
  std::map<v1::Level, int> levels;
  std::map<v1::GridKind, int> kinds;
  for (const auto& j : t.config().jurisdictions()) {
    levels[j.level()]++;
    if (j.level() == v1::LEVEL_GRID) kinds[j.grid_kind()]++;
  }
  EXPECT_EQ(levels[v1::LEVEL_CITY], 1);
  EXPECT_EQ(levels[v1::LEVEL_COUNTY], 3);
  EXPECT_EQ(levels[v1::LEVEL_TOWNSHIP], 36);
  EXPECT_EQ(levels[v1::LEVEL_COMMUNITY], 355);
  EXPECT_EQ(levels[v1::LEVEL_GRID], 1903);
  EXPECT_EQ(kinds[v1::GRID_KIND_URBAN], 530);
  EXPECT_EQ(kinds[v1::GRID_KIND_RURAL], 1341);
  EXPECT_EQ(kinds[v1::GRID_KIND_ENTERPRISE], 32);
  EXPECT_EQ(kinds[v1::GRID_KIND_UNSPECIFIED], 0);
  EXPECT_EQ(t.GridsBelow("szs"), 1903);
  EXPECT_EQ(t.Subtree("szs").size(), t.jurisdiction_count());
}

TEST(ShizuishanTest, NamesAndIds) {
  auto t = *Topology::Build(ShizuishanTopology());
  EXPECT_EQ(t->root().id(), "szs");
  EXPECT_EQ(t->root().name(), "石嘴山市");
  EXPECT_EQ(t->Find("dwk")->name(), "大武口区");
  EXPECT_EQ(t->Find("hn")->name(), "惠农区");
  EXPECT_EQ(t->Find("pl")->name(), "平罗县");
  EXPECT_EQ(t->Find("dwk-s01")->name(), "长胜街道");
  EXPECT_EQ(t->Children("dwk").size(), 11u);
  EXPECT_EQ(t->Children("hn").size(), 11u);
  EXPECT_EQ(t->Children("pl").size(), 14u);
  const v1::Jurisdiction* grid = t->Find("dwk-s01-c03-g002");
  ASSERT_NE(grid, nullptr);
  EXPECT_EQ(grid->level(), v1::LEVEL_GRID);
  EXPECT_EQ(grid->grid_kind(), v1::GRID_KIND_URBAN);
  EXPECT_EQ(grid->parent_id(), "dwk-s01-c03");
}

TEST(ShizuishanTest, Departments) {
  auto t = *Topology::Build(ShizuishanTopology());
  // 14 bureaus at the city and at each county, 8 offices at each township.
  EXPECT_EQ(t->config().departments_size(), 14 * 4 + 8 * 36);
  EXPECT_EQ(t->DepartmentsOf("szs").size(), 14u);
  EXPECT_EQ(t->DepartmentsOf("dwk").size(), 14u);
  EXPECT_EQ(t->DepartmentsOf("pl-s14").size(), 8u);
  EXPECT_TRUE(t->DepartmentsOf("dwk-s01-c01").empty());
  const v1::Department* police = t->FindDepartment("dwk-s01-police_station");
  ASSERT_NE(police, nullptr);
  EXPECT_EQ(police->name(), "长胜派出所");
  EXPECT_EQ(police->kind(), "police_station");
  EXPECT_NE(t->FindDepartment("hn-public_security"), nullptr);
  EXPECT_NE(t->FindDepartment("szs-petitions"), nullptr);
}

TEST(ShizuishanTest, Deterministic) {
  EXPECT_EQ(ShizuishanTopology().SerializeAsString(), ShizuishanTopology().SerializeAsString());
}

// The shipped JSON files are the embedded defaults; regenerate them with
// `whistle_dump_config topology|policy` after changing the code.
TEST(ShizuishanTest, ConfigFileMatchesEmbeddedTopology) {
  std::string path = std::string(WHISTLE_CONFIG_DIR) + "/shizuishan.json";
  auto parsed = ParseTopology(ReadFile(path), path);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*parsed, ShizuishanTopology()));
}

TEST(ShizuishanTest, ConfigFileMatchesDefaultPolicy) {
  std::string path = std::string(WHISTLE_CONFIG_DIR) + "/policy.json";
  auto parsed = ParsePolicy(ReadFile(path), path);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*parsed, DefaultPolicy()));
}

}  // namespace
}  // namespace whistle::core
