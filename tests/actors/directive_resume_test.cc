// Directives on a real Node (CAF scheduler, real Store): an expansion cut
// short by a crash resumes after its durable cursor and counts every unit
// exactly once; numbering continues after the highest stored id.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "actors/directives.h"
#include "actors/node.h"
#include "core/directive.h"
#include "core/policy.h"
#include "storage/directive_store.h"

namespace whistle::actors {
namespace {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A deadline well inside the 5 years a draft may look ahead.
int64_t InAMonthMs() { return NowMs() + 30LL * 24 * 3600 * 1000; }

TEST(DirectiveResumeTest, ExpansionCutShortResumesExactlyOnce) {
  char tmpl[] = "/tmp/whistle_directive_resume_XXXXXX";
  const std::string path = mkdtemp(tmpl);
  auto topology = *core::Topology::Build(core::ShizuishanTopology());
  auto policy = *core::Policy::Build(core::DefaultPolicy());
  const std::string city = topology->root().id();

  v1::Directive d;
  d.set_id("szs-d-000000000005");
  d.mutable_draft()->set_title("crash mid-expansion");
  d.mutable_draft()->set_deadline_unix_ms(InAMonthMs());
  d.mutable_draft()->mutable_targets()->mutable_level()->set_subtree_id(city);
  d.mutable_draft()->mutable_targets()->mutable_level()->set_level(v1::LEVEL_GRID);
  d.set_issuer_user("mayor");
  d.set_issuer_jurisdiction_id(city);
  d.set_state(v1::DIRECTIVE_STATE_ACTIVE);
  d.set_version(1);
  const std::vector<std::string> grids = core::ExpandTargets(d.draft().targets(), *topology);
  ASSERT_EQ(grids.size(), 1903u);

  {
    // What a crash after the first chunk leaves: 1,000 receipts with their
    // counts and the cursor; ten of them signed since.
    storage::Options o;
    o.path = path;
    o.init = true;  // a new or empty directory: make the store
    auto store = storage::Store::Open(o).value();
    storage::Batch b;
    storage::PutDirective(b, d);
    for (size_t i = 0; i < 1000; ++i) {
      v1::Receipt r = core::NewReceipt(d.id(), grids[i], *topology);
      v1::ProgressCounts delta;
      delta.set_total(1);
      if (i < 10) {
        r.set_state(v1::RECEIPT_STATE_SIGNED);
        delta.set_signed_(1);
      }
      storage::PutReceipt(b, nullptr, r);
      storage::AddProgress(b, d.id(), grids[i], delta);
      for (const auto* up : topology->Path(grids[i])) {
        storage::AddProgress(b, d.id(), up->id(), delta);
      }
    }
    v1::DirectiveExpansion cursor;
    cursor.set_after_unit(grids[999]);
    cursor.set_units(1000);
    storage::PutExpansion(b, d.id(), cursor);
    ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
  }

  storage::Options o;
  o.path = path;
  o.init = true;  // a new or empty directory: make the store
  NodeOptions options;
  options.node_id = "szs";
  options.timer_interval_ms = 0;
  options.scheduler_threads = 2;
  auto node = Node::Start(options, topology, policy, storage::Store::Open(o).value(), nullptr);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  storage::Store& store = (*node)->store();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!storage::IncompleteExpansions(store)->empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(storage::IncompleteExpansions(store)->empty());

  auto city_counts = storage::GetProgress(store, d.id(), city);
  ASSERT_TRUE(city_counts.ok());
  EXPECT_EQ(city_counts->total(), 1903);
  EXPECT_EQ(city_counts->signed_(), 10);
  for (const auto* county : topology->Children(city)) {
    EXPECT_EQ(storage::GetProgress(store, d.id(), county->id())->total(),
              topology->GridsBelow(county->id()));
  }
  EXPECT_EQ(storage::GetReceipt(store, d.id(), grids[0])->state(), v1::RECEIPT_STATE_SIGNED);
  EXPECT_EQ(storage::GetReceipt(store, d.id(), grids[1902])->state(), v1::RECEIPT_STATE_PENDING);
  auto all =
      storage::ListReceipts(store, d.id(), "", 5000, [](const v1::Receipt&) { return true; });
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->receipts.size(), 1903u);

  // Numbering continues after the stored id 5.
  v1::Caller mayor;
  mayor.set_user("mayor");
  mayor.set_role(v1::ROLE_LEADER);
  mayor.set_jurisdiction_id(city);
  auto caller = core::CheckCaller(mayor, (*node)->context());
  ASSERT_TRUE(caller.ok());
  v1::DirectiveDraft draft = d.draft();
  auto checked = core::CheckIssue(*caller, draft, (*node)->context(), NowMs());
  ASSERT_TRUE(checked.ok()) << checked.status().ToString();
  std::promise<StatusOr<v1::IssueDirectiveResponse>> issued;
  (*node)->directives().Issue(
      std::move(checked).value(), "",
      [&](StatusOr<v1::IssueDirectiveResponse> r) { issued.set_value(std::move(r)); });
  auto result = issued.get_future().get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->directive().id(), "szs-d-000000000006");
  EXPECT_EQ(result->targets(), 1903);
  EXPECT_EQ(storage::GetProgress(store, result->directive().id(), city)->total(), 1903);

  node->reset();
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace
}  // namespace whistle::actors
