// Directive envelopes on a real Node (CAF scheduler, real Store), without a
// network: the parent side merges a child's coalesced counts exactly once
// (resends, older change sequences and a restart change nothing), and the
// child side keeps the highest directive version and expands it once.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <future>

#include "actors/directives.h"
#include "actors/node.h"
#include "core/directive.h"
#include "core/policy.h"
#include "storage/directive_store.h"

namespace whistle::actors {
namespace {

// A deadline well inside the 5 years a draft may look ahead.
int64_t InAMonthMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch() + hours(24 * 30))
      .count();
}

struct Fixture {
  std::string path;
  std::shared_ptr<const core::Topology> topology =
      *core::Topology::Build(core::ShizuishanTopology());
  std::shared_ptr<const core::Policy> policy = *core::Policy::Build(core::DefaultPolicy());

  Fixture() {
    char tmpl[] = "/tmp/whistle_directive_link_XXXXXX";
    path = mkdtemp(tmpl);
  }
  std::unique_ptr<Node> Start(const std::string& id, const std::string& hosted,
                              std::vector<std::string> children, bool parent) {
    storage::Options o;
    o.path = path + "/" + id;
    o.init = true;  // a new or empty directory: make the store
    NodeOptions options;
    options.node_id = id;
    options.hosted_jurisdiction = hosted;
    options.child_roots = std::move(children);
    options.has_parent = parent;
    options.timer_interval_ms = 0;
    options.scheduler_threads = 2;
    auto node = Node::Start(options, topology, policy, storage::Store::Open(o).value(), nullptr);
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    return std::move(node).value();
  }
};

void Apply(Node& node, const std::string& from, v1::LinkEnvelope env) {
  std::promise<Status> done;
  node.directives().ApplyFromLink(from, std::move(env),
                                  [&done](const Status& s) { done.set_value(s); });
  EXPECT_TRUE(done.get_future().get().ok());
}

v1::LinkEnvelope Counts(uint64_t seq, const std::string& id, const std::string& root,
                        int64_t change, int64_t total, int64_t signed_, int64_t done) {
  v1::LinkEnvelope env;
  env.set_seq(seq);
  auto* c = env.mutable_payload()->mutable_counts_sync();
  c->set_directive_id(id);
  c->set_root(root);
  c->set_change_seq(change);
  c->mutable_counts()->set_total(total);
  c->mutable_counts()->set_signed_(signed_);
  c->mutable_counts()->set_done(done);
  return env;
}

// An active directive, version 1, issued by `user` at `issuer` to every unit
// of `level` under `subtree`.
v1::Directive Active(const std::string& id, const std::string& issuer, const std::string& user,
                     const std::string& subtree, v1::Level level) {
  v1::Directive d;
  d.set_id(id);
  d.mutable_draft()->set_title("t");
  d.mutable_draft()->set_deadline_unix_ms(InAMonthMs());
  d.mutable_draft()->mutable_targets()->mutable_level()->set_subtree_id(subtree);
  d.mutable_draft()->mutable_targets()->mutable_level()->set_level(level);
  d.set_issuer_user(user);
  d.set_issuer_jurisdiction_id(issuer);
  d.set_state(v1::DIRECTIVE_STATE_ACTIVE);
  d.set_version(1);
  return d;
}

v1::LinkEnvelope Sync(uint64_t seq, const v1::Directive& d) {
  v1::LinkEnvelope env;
  env.set_seq(seq);
  *env.mutable_payload()->mutable_directive_sync()->mutable_directive() = d;
  return env;
}

v1::ProgressCounts At(Node& node, const std::string& id, const std::string& j) {
  return storage::GetProgress(node.store(), id, j).value();
}

TEST(DirectiveLinkTest, ChildCountsMergeExactlyOnceAcrossResendsReorderingAndRestart) {
  Fixture f;
  const std::string city = f.topology->root().id();
  const std::string id = "szs-d-000000000001";
  {
    auto node = f.Start("szs", city, {"pl"}, false);
    Apply(*node, "pl", Counts(1, id, "pl", 3, 100, 10, 2));
    Apply(*node, "pl", Counts(1, id, "pl", 3, 100, 10, 2));   // resend: skipped by seq
    Apply(*node, "pl", Counts(2, id, "pl", 2, 100, 5, 1));    // older change: skipped
    Apply(*node, "pl", Counts(3, id, "pl", 7, 100, 40, 20));  // adds 30 signed, 18 done
    for (const auto& j : {city, std::string("pl")}) {
      auto c = At(*node, id, j);
      EXPECT_EQ(c.total(), 100) << j;
      EXPECT_EQ(c.signed_(), 40) << j;
      EXPECT_EQ(c.done(), 20) << j;
    }
    // Not from a child of this node, or naming another root: refused, nothing changes
    // (the inbox mark is still recorded, so the link moves on).
    Apply(*node, "pl", Counts(4, id, "dwk", 9, 999, 999, 999));
    Apply(*node, "parent", Counts(1, id, "pl", 9, 999, 999, 999));
    EXPECT_EQ(At(*node, id, city).total(), 100);
    EXPECT_EQ(node->DurableInboxSeq("pl"), 4u);
    EXPECT_EQ(storage::CountUpdates(node->store(), id), 2);
  }
  // After a restart: the inbox mark and the last merged counts are durable.
  auto node = f.Start("szs", city, {"pl"}, false);
  Apply(*node, "pl", Counts(3, id, "pl", 7, 100, 40, 20));  // resend after the restart
  Apply(*node, "pl", Counts(5, id, "pl", 7, 100, 40, 20));  // same change again
  Apply(*node, "pl", Counts(6, id, "pl", 8, 100, 41, 20));
  auto c = At(*node, id, city);
  EXPECT_EQ(c.total(), 100);
  EXPECT_EQ(c.signed_(), 41);
  EXPECT_EQ(c.done(), 20);
}

TEST(DirectiveLinkTest, ChildKeepsTheHighestVersionAndExpandsOnce) {
  Fixture f;
  const std::string city = f.topology->root().id();
  auto node = f.Start("pl", "pl", {}, true);
  v1::Directive d = Active("szs-d-000000000001", city, "mayor", city, v1::LEVEL_GRID);
  v1::Directive v2 = d;
  v2.set_version(2);
  v2.mutable_draft()->set_text("amended");
  Apply(*node, "parent", Sync(1, d));
  Apply(*node, "parent", Sync(2, v2));
  Apply(*node, "parent", Sync(3, d));  // older version arriving late: ignored
  Apply(*node, "parent", Sync(2, d));  // resend: ignored
  EXPECT_EQ(storage::GetDirective(node->store(), d.id())->version(), 2);
  const int64_t grids = f.topology->GridsBelow("pl");
  EXPECT_EQ(At(*node, d.id(), "pl").total(), grids);  // expanded once
  EXPECT_TRUE(storage::GetExpansion(node->store(), d.id())->complete());
}

// A directive a child node sends up (issued in its subtree) is kept apart:
// not a directive this node holds, not listed here, its counts merged for the
// watch. One issued outside the child's subtree, or addressed outside it, is
// refused and nothing is kept.
TEST(DirectiveLinkTest, ParentKeepsADirectiveFromBelowApart) {
  Fixture f;
  const std::string city = f.topology->root().id();
  auto node = f.Start("szs", city, {"pl", "dwk"}, false);
  v1::Directive d = Active("pl-d-000000000001", "pl", "county.leader", "pl", v1::LEVEL_TOWNSHIP);
  Apply(*node, "pl", Sync(1, d));
  Apply(*node, "pl", Counts(2, d.id(), "pl", 1, 12, 3, 0));
  EXPECT_EQ(storage::GetDirective(node->store(), d.id()).status().code(), Code::kNotFound);
  EXPECT_EQ(storage::GetDirectiveFromBelow(node->store(), d.id())->version(), 1);
  EXPECT_EQ(At(*node, d.id(), city).signed_(), 3);
  EXPECT_TRUE(storage::ListDirectiveIds(node->store(), city, "", 10)->ids.empty());
  EXPECT_TRUE(storage::ListDirectiveIds(node->store(), "pl", "", 10)->ids.empty());

  v1::Directive outside = d;  // issued in another county
  outside.set_id("pl-d-000000000002");
  outside.set_issuer_jurisdiction_id("dwk");
  outside.mutable_draft()->mutable_targets()->mutable_level()->set_subtree_id("dwk");
  v1::Directive wide = d;  // issued in pl, addressed to the whole city
  wide.set_id("pl-d-000000000003");
  wide.mutable_draft()->mutable_targets()->mutable_level()->set_subtree_id(city);
  Apply(*node, "pl", Sync(3, outside));
  Apply(*node, "pl", Sync(4, wide));
  EXPECT_FALSE(storage::GetDirectiveFromBelow(node->store(), outside.id()).ok());
  EXPECT_FALSE(storage::GetDirectiveFromBelow(node->store(), wide.id()).ok());
  EXPECT_EQ(node->DurableInboxSeq("pl"), 4u);
}

// A child cannot send up a directive that came down from the parent (say,
// with a higher version to hold back the parent's next amend): refused, and
// the parent's versions still arrive.
TEST(DirectiveLinkTest, AChildCannotHoldBackADirectiveComingDown) {
  Fixture f;
  const std::string city = f.topology->root().id();
  const std::string town = f.topology->Children("pl").front()->id();
  auto node = f.Start("pl", "pl", {town}, true);
  v1::Directive d = Active("szs-d-000000000001", city, "mayor", "pl", v1::LEVEL_TOWNSHIP);
  Apply(*node, "parent", Sync(1, d));
  v1::Directive forged = d;  // the same id, "issued" in the township, far ahead
  forged.set_version(99);
  forged.set_issuer_jurisdiction_id(town);
  forged.mutable_draft()->mutable_targets()->mutable_level()->set_subtree_id(town);
  Apply(*node, town, Sync(1, forged));
  EXPECT_FALSE(storage::GetDirectiveFromBelow(node->store(), d.id()).ok());
  v1::Directive v2 = d;
  v2.set_version(2);
  Apply(*node, "parent", Sync(2, v2));
  EXPECT_EQ(storage::GetDirective(node->store(), d.id())->version(), 2);
}

}  // namespace
}  // namespace whistle::actors
