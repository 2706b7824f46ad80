#include "core/policy.h"

#include <gtest/gtest.h>

namespace whistle::core {
namespace {

constexpr int64_t kNow = 1'000'000;
constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 60 * kMinuteMs;

std::shared_ptr<const Policy> Default() {
  auto built = Policy::Build(DefaultPolicy());
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  return *built;
}

TEST(PolicyTest, DefaultCatalogue) {
  auto p = Default();
  EXPECT_EQ(p->config().categories_size(), 28);
  EXPECT_TRUE(p->KnownCategory("dispute.neighbour"));
  EXPECT_TRUE(p->KnownCategory("special_population.mental"));
  EXPECT_TRUE(p->KnownCategory("association"));
  EXPECT_FALSE(p->KnownCategory("dispute"));
  EXPECT_FALSE(p->KnownCategory(""));
  for (const auto& c : p->config().categories()) EXPECT_FALSE(c.name().empty()) << c.id();
}

TEST(PolicyTest, GradedResponse) {
  auto p = Default();
  EXPECT_EQ(p->OwnerLevel("dispute.neighbour", v1::SEVERITY_GENERAL), v1::LEVEL_COMMUNITY);
  EXPECT_EQ(p->OwnerLevel("dispute.neighbour", v1::SEVERITY_SERIOUS), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->OwnerLevel("dispute.neighbour", v1::SEVERITY_MAJOR), v1::LEVEL_COUNTY);
  EXPECT_EQ(p->OwnerLevel("dispute.neighbour", v1::SEVERITY_EXTRAORDINARY), v1::LEVEL_CITY);
  EXPECT_EQ(p->OwnerLevel("public_order", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->OwnerLevel("petition", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  // Severity rules come first: a major public-order case goes to the county.
  EXPECT_EQ(p->OwnerLevel("public_order", v1::SEVERITY_MAJOR), v1::LEVEL_COUNTY);
  EXPECT_EQ(p->OwnerLevel("petition", v1::SEVERITY_EXTRAORDINARY), v1::LEVEL_CITY);
}

TEST(PolicyTest, FirstMatchByPrefixAndDefault) {
  v1::Policy config;
  auto* r = config.add_ownership();
  r->set_category_prefix("safety.");
  r->set_owner_level(v1::LEVEL_TOWNSHIP);
  auto* r2 = config.add_ownership();
  r2->set_category_prefix("safety.gas");
  r2->set_owner_level(v1::LEVEL_COUNTY);
  auto p = *Policy::Build(config);
  EXPECT_EQ(p->OwnerLevel("safety.gas", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->OwnerLevel("environment", v1::SEVERITY_GENERAL), v1::LEVEL_COMMUNITY);
}

TEST(PolicyTest, Deadlines) {
  auto p = Default();
  EXPECT_EQ(p->AcceptBy(v1::SEVERITY_GENERAL, kNow), kNow + 30 * kMinuteMs);
  EXPECT_EQ(p->AcceptBy(v1::SEVERITY_SERIOUS, kNow), kNow + 10 * kMinuteMs);
  EXPECT_EQ(p->AcceptBy(v1::SEVERITY_EXTRAORDINARY, kNow), kNow + 10 * kMinuteMs);
  EXPECT_EQ(p->ReportInBy(v1::SEVERITY_SERIOUS, kNow), kNow + 2 * kHourMs);
  EXPECT_EQ(p->ReportInBy(v1::SEVERITY_MAJOR, kNow), kNow + 30 * kMinuteMs);
  EXPECT_EQ(p->ResolveBy(v1::SEVERITY_GENERAL, kNow), kNow + 72 * kHourMs);
  EXPECT_EQ(p->ResolveBy(v1::SEVERITY_SERIOUS, kNow), kNow + 48 * kHourMs);
  EXPECT_EQ(p->ResolveBy(v1::SEVERITY_MAJOR, kNow), kNow + 24 * kHourMs);
  EXPECT_EQ(p->ResolveBy(v1::SEVERITY_EXTRAORDINARY, kNow), kNow + 2 * kHourMs);
  EXPECT_EQ(p->VerifyBy(kNow), kNow + 24 * kHourMs);
  EXPECT_EQ(p->EvaluateBy(kNow), kNow + 72 * kHourMs);
  EXPECT_EQ(p->config().limits().dispatch_seconds(), 3600);
}

TEST(PolicyTest, ZeroMeansNoLimitAndUrgentFallsBack) {
  v1::Policy config;
  config.mutable_limits()->set_accept_seconds(60);
  auto p = *Policy::Build(config);
  EXPECT_EQ(p->AcceptBy(v1::SEVERITY_MAJOR, kNow), kNow + 60'000);
  EXPECT_EQ(p->ResolveBy(v1::SEVERITY_GENERAL, kNow), 0);
  EXPECT_EQ(p->VerifyBy(kNow), 0);
}

TEST(PolicyTest, BuildRejectsBadEntries) {
  v1::Policy config = DefaultPolicy();
  config.add_categories()->set_id("dispute.family");
  config.mutable_categories(28)->set_name("x");
  auto dup = Policy::Build(config);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "categories[28].id: duplicate id \"dispute.family\"");

  config = DefaultPolicy();
  config.mutable_categories(3)->set_id("Bad Id");
  EXPECT_EQ(Policy::Build(config).status().message(),
            "categories[3].id: \"Bad Id\" must be 1..64 characters of [a-z0-9_.]");

  config = DefaultPolicy();
  config.mutable_categories(2)->clear_name();
  EXPECT_EQ(Policy::Build(config).status().message(), "categories[2].name: required");

  config = DefaultPolicy();
  config.mutable_ownership(1)->set_owner_level(v1::LEVEL_UNSPECIFIED);
  EXPECT_EQ(Policy::Build(config).status().message(), "ownership[1].owner_level: required");

  config = DefaultPolicy();
  config.mutable_limits()->set_verify_seconds(-1);
  auto neg = Policy::Build(config);
  EXPECT_EQ(neg.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(neg.status().message(), "limits.verify_seconds: must be >= 0, got -1");
}

TEST(PolicyTest, Parse) {
  auto json = ParsePolicy(R"({"limits": {"accept_seconds": "60"}})", "p.json");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(json->limits().accept_seconds(), 60);
  auto text = ParsePolicy("categories { id: \"a\" name: \"A\" }", "p.txtpb");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->categories(0).id(), "a");
  auto bad = ParsePolicy(R"({"limitz": {}})", "p.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("p.json"), std::string::npos);
}

}  // namespace
}  // namespace whistle::core
