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

// A catalogue is required; these tests look at the rules only.
v1::Policy WithCatalogue() {
  v1::Policy config;
  for (const char* id : {"safety.gas", "environment", "x"}) {
    auto* c = config.add_categories();
    c->set_id(id);
    c->set_name(id);
  }
  return config;
}

TEST(PolicyTest, FirstMatchByPrefixAndDefault) {
  v1::Policy config = WithCatalogue();
  auto* r = config.add_ownership();
  r->set_category_prefix("safety.");
  r->set_severity(v1::SEVERITY_GENERAL);
  r->set_owner_level(v1::LEVEL_TOWNSHIP);
  auto* r2 = config.add_ownership();
  r2->set_category_prefix("safety.gas");
  r2->set_owner_level(v1::LEVEL_COUNTY);
  auto p = *Policy::Build(config);
  EXPECT_EQ(p->OwnerLevel("safety.gas", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->OwnerLevel("safety.gas", v1::SEVERITY_SERIOUS), v1::LEVEL_COUNTY);
  EXPECT_EQ(p->OwnerLevel("environment", v1::SEVERITY_GENERAL), v1::LEVEL_COMMUNITY);
}

TEST(PolicyTest, Deadlines) {
  auto p = Default();
  const std::string c = "dispute.land";
  EXPECT_EQ(p->AcceptBy(c, v1::SEVERITY_GENERAL, kNow), kNow + 30 * kMinuteMs);
  EXPECT_EQ(p->AcceptBy(c, v1::SEVERITY_SERIOUS, kNow), kNow + 10 * kMinuteMs);
  EXPECT_EQ(p->AcceptBy(c, v1::SEVERITY_EXTRAORDINARY, kNow), kNow + 10 * kMinuteMs);
  EXPECT_EQ(p->DispatchBy(c, v1::SEVERITY_GENERAL, kNow), kNow + kHourMs);
  EXPECT_EQ(p->ReportInBy(c, v1::SEVERITY_SERIOUS, kNow), kNow + 2 * kHourMs);
  EXPECT_EQ(p->ReportInBy(c, v1::SEVERITY_MAJOR, kNow), kNow + 30 * kMinuteMs);
  EXPECT_EQ(p->ResolveBy(c, v1::SEVERITY_GENERAL, kNow), kNow + 72 * kHourMs);
  EXPECT_EQ(p->ResolveBy(c, v1::SEVERITY_SERIOUS, kNow), kNow + 48 * kHourMs);
  EXPECT_EQ(p->ResolveBy(c, v1::SEVERITY_MAJOR, kNow), kNow + 24 * kHourMs);
  EXPECT_EQ(p->ResolveBy(c, v1::SEVERITY_EXTRAORDINARY, kNow), kNow + 2 * kHourMs);
  EXPECT_EQ(p->VerifyBy(c, v1::SEVERITY_GENERAL, kNow), kNow + 24 * kHourMs);
  EXPECT_EQ(p->EvaluateBy(c, v1::SEVERITY_GENERAL, kNow), kNow + 72 * kHourMs);
  EXPECT_EQ(p->config().limits().dispatch_seconds(), 3600);
}

// "小事不出社区、大事不出乡镇": the default policy never moves a general
// matter past the township automatically, nor a serious one.
TEST(PolicyTest, DefaultKeepsSmallMattersLocal) {
  auto p = Default();
  EXPECT_EQ(p->EscalateUpTo("dispute.land", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->EscalateUpTo("dispute.neighbour", v1::SEVERITY_SERIOUS), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->EscalateUpTo("public_order", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->EscalateUpTo("dispute.land", v1::SEVERITY_MAJOR), v1::LEVEL_COUNTY);
  EXPECT_EQ(p->EscalateUpTo("environment", v1::SEVERITY_EXTRAORDINARY), v1::LEVEL_CITY);
  EXPECT_EQ(p->RecurrenceWindowMs("environment", v1::SEVERITY_GENERAL), 30LL * 24 * kHourMs);
}

TEST(PolicyTest, RuleLimitsOverrideTheDefaults) {
  v1::Policy config = DefaultPolicy();
  config.clear_rules();
  auto* r = config.add_rules();
  r->set_category_prefix("dispute.");
  r->set_severity(v1::SEVERITY_GENERAL);
  r->set_owner_level(v1::LEVEL_COMMUNITY);
  r->mutable_limits()->set_accept_seconds(5);
  r->mutable_limits()->set_resolve_seconds(0);  // explicitly unlimited
  r->set_recurrence_window_seconds(60);
  auto* any = config.add_rules();
  any->set_owner_level(v1::LEVEL_TOWNSHIP);
  any->set_escalate_up_to(v1::LEVEL_COUNTY);
  auto built = Policy::Build(config);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  auto p = *built;
  RuleMatch m = p->Match("dispute.land", v1::SEVERITY_GENERAL);
  EXPECT_EQ(m.index, 0);
  EXPECT_EQ(m.owner_level, v1::LEVEL_COMMUNITY);
  EXPECT_EQ(m.escalate_up_to, v1::LEVEL_TOWNSHIP);  // unset: the township
  EXPECT_EQ(m.limits.accept, 5);
  EXPECT_EQ(m.limits.dispatch, 3600);  // inherited from `limits`
  EXPECT_EQ(m.limits.resolve, 0);
  EXPECT_EQ(p->AcceptBy("dispute.land", v1::SEVERITY_GENERAL, kNow), kNow + 5000);
  EXPECT_EQ(p->ResolveBy("dispute.land", v1::SEVERITY_GENERAL, kNow), 0);
  EXPECT_EQ(p->RecurrenceWindowMs("dispute.land", v1::SEVERITY_GENERAL), 60'000);
  // The same category at another severity takes the second rule.
  EXPECT_EQ(p->OwnerLevel("dispute.land", v1::SEVERITY_SERIOUS), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->EscalateUpTo("dispute.land", v1::SEVERITY_SERIOUS), v1::LEVEL_COUNTY);
  EXPECT_EQ(p->AcceptBy("dispute.land", v1::SEVERITY_SERIOUS, kNow), kNow + 10 * kMinuteMs);
  EXPECT_EQ(p->RecurrenceWindowMs("dispute.land", v1::SEVERITY_SERIOUS), 30LL * 24 * kHourMs);
}

TEST(PolicyTest, ZeroMeansNoLimitAndUrgentFallsBack) {
  v1::Policy config = WithCatalogue();
  config.mutable_limits()->set_accept_seconds(60);
  auto p = *Policy::Build(config);
  EXPECT_EQ(p->AcceptBy("x", v1::SEVERITY_MAJOR, kNow), kNow + 60'000);
  EXPECT_EQ(p->ResolveBy("x", v1::SEVERITY_GENERAL, kNow), 0);
  EXPECT_EQ(p->VerifyBy("x", v1::SEVERITY_GENERAL, kNow), 0);
  // No rule at all: the community owns, up to the township.
  EXPECT_EQ(p->OwnerLevel("x", v1::SEVERITY_GENERAL), v1::LEVEL_COMMUNITY);
  EXPECT_EQ(p->EscalateUpTo("x", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
}

// Files of the older form (ownership + limits) still load; an ownership
// entry owned below the township escalates up to the township, others not.
TEST(PolicyTest, OlderOwnershipFormStillLoads) {
  auto parsed = ParsePolicy(
      R"({"categories":[{"id":"dispute.land","name":"x"}],
          "ownership":[{"severity":"SEVERITY_GENERAL","owner_level":"LEVEL_COMMUNITY"},
                       {"owner_level":"LEVEL_COUNTY"}],
          "limits":{"accept_seconds":"7"}})",
      "old.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto built = Policy::Build(*parsed);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  auto p = *built;
  EXPECT_EQ(p->OwnerLevel("dispute.land", v1::SEVERITY_GENERAL), v1::LEVEL_COMMUNITY);
  EXPECT_EQ(p->EscalateUpTo("dispute.land", v1::SEVERITY_GENERAL), v1::LEVEL_TOWNSHIP);
  EXPECT_EQ(p->EscalateUpTo("dispute.land", v1::SEVERITY_MAJOR), v1::LEVEL_COUNTY);
  EXPECT_EQ(p->AcceptBy("dispute.land", v1::SEVERITY_GENERAL, kNow), kNow + 7000);
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
  config.mutable_rules(1)->set_owner_level(v1::LEVEL_UNSPECIFIED);
  EXPECT_EQ(Policy::Build(config).status().message(), "rules[1].owner_level: required");

  config = DefaultPolicy();
  config.mutable_limits()->set_verify_seconds(-1);
  auto neg = Policy::Build(config);
  EXPECT_EQ(neg.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(neg.status().message(), "limits.verify_seconds: must be >= 0, got -1");
}

TEST(PolicyTest, BuildNamesTheBadRule) {
  auto message = [](auto edit) {
    v1::Policy config = DefaultPolicy();
    edit(config);
    auto built = Policy::Build(config);
    EXPECT_FALSE(built.ok());
    if (built.ok()) return std::string();
    EXPECT_EQ(built.status().code(), Code::kInvalidArgument);
    return built.status().message();
  };
  EXPECT_EQ(
      message([](v1::Policy& c) { c.mutable_rules(3)->mutable_limits()->set_accept_seconds(-1); }),
      "rules[3].limits.accept_seconds: must be >= 0, got -1");
  EXPECT_EQ(message([](v1::Policy& c) {
              c.mutable_rules(0)->mutable_limits()->set_resolve_seconds(int64_t{1} << 60);
            }),
            "rules[0].limits.resolve_seconds: must be <= 3153600000 (100 years), got " +
                std::to_string(int64_t{1} << 60));
  EXPECT_EQ(message([](v1::Policy& c) { c.mutable_rules(2)->set_owner_level(v1::Level(9)); }),
            "rules[2].owner_level: unknown level 9");
  EXPECT_EQ(message([](v1::Policy& c) { c.mutable_rules(2)->set_escalate_up_to(v1::Level(7)); }),
            "rules[2].escalate_up_to: unknown level 7");
  EXPECT_EQ(message([](v1::Policy& c) { c.mutable_rules(4)->set_escalate_up_to(v1::LEVEL_GRID); }),
            "rules[4].escalate_up_to: LEVEL_GRID is below owner_level LEVEL_COMMUNITY");
  EXPECT_EQ(message([](v1::Policy& c) { c.mutable_rules(5)->set_recurrence_window_seconds(-5); }),
            "rules[5].recurrence_window_seconds: must be >= 0, got -5");
  EXPECT_EQ(message([](v1::Policy& c) { *c.add_rules() = c.rules(2); }),
            "rules[6]: duplicate of rules[2] (same category_prefix and severity)");
  EXPECT_EQ(message([](v1::Policy& c) {
              auto* r = c.add_rules();
              r->set_category_prefix("petition");
              r->set_severity(v1::SEVERITY_GENERAL);
              r->set_owner_level(v1::LEVEL_COUNTY);
            }),
            "rules[6]: never matches; rules[3] (category_prefix \"petition\", severity "
            "SEVERITY_UNSPECIFIED) matches first");
  EXPECT_EQ(message([](v1::Policy& c) { c.mutable_rules(2)->set_category_prefix("publc"); }),
            "rules[2].category_prefix: \"publc\" matches no category of the catalogue");
  EXPECT_EQ(message([](v1::Policy& c) { c.add_ownership()->set_owner_level(v1::LEVEL_COMMUNITY); }),
            "ownership: set `rules` or the older `ownership`, not both (ownership has 1 entries)");
  EXPECT_EQ(message([](v1::Policy& c) { c.set_recurrence_window_seconds(-1); }),
            "recurrence_window_seconds: must be >= 0, got -1");
  // A grid does not own cases; a catalogue-less node would refuse every report.
  EXPECT_EQ(message([](v1::Policy& c) { c.mutable_rules(2)->set_owner_level(v1::LEVEL_GRID); }),
            "rules[2].owner_level: a grid does not own cases (its grid worker reports and "
            "verifies); the lowest owner is LEVEL_COMMUNITY");
  EXPECT_EQ(message([](v1::Policy& c) { c.clear_categories(); }),
            "categories: at least one category required");
  EXPECT_EQ(message([](v1::Policy& c) { c = v1::Policy(); }),
            "categories: at least one category required");
}

TEST(PolicyTest, Parse) {
  auto json = ParsePolicy(R"({"limits": {"accept_seconds": "60"},
      "rules": [{"owner_level": "LEVEL_TOWNSHIP", "escalate_up_to": "LEVEL_COUNTY",
                 "limits": {"verify_seconds": 0, "accept_seconds": 9}}]})",
                          "p.json");
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(json->limits().accept_seconds(), 60);
  ASSERT_EQ(json->rules_size(), 1);
  EXPECT_EQ(json->rules(0).escalate_up_to(), v1::LEVEL_COUNTY);
  EXPECT_TRUE(json->rules(0).limits().has_verify_seconds());  // 0 is set: no limit
  EXPECT_FALSE(json->rules(0).limits().has_resolve_seconds());
  EXPECT_EQ(json->rules(0).limits().accept_seconds(), 9);
  auto text = ParsePolicy("categories { id: \"a\" name: \"A\" }", "p.txtpb");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->categories(0).id(), "a");
  auto bad = ParsePolicy(R"({"limitz": {}})", "p.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("p.json"), std::string::npos);
}

}  // namespace
}  // namespace whistle::core
