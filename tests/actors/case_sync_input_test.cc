// A peer's case copy is hostile until checked (NodeContext::ApplySync,
// CheckSync): a copy whose ids would break the store's keys or whose record
// would not read back is refused (logged, its envelope still acknowledged so
// the link moves on) and nothing of it is stored; a well-formed one is kept.
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "tests/actors/actor_fixture.h"

namespace whistle::actors::testing {
namespace {

using namespace std::string_literals;

constexpr char kOtherCounty[] = "hn";  // not hosted by the fixture: a read-only copy

v1::CaseSync GoodSync(const std::string& id) {
  v1::CaseSync sync;
  v1::Case& c = *sync.mutable_case_();
  c.set_id(id);
  c.set_owner_id(kOtherCounty);
  c.set_state(v1::CASE_STATE_REPORTED);
  c.set_reporter("wang.grid");
  c.set_request_id("r1");
  c.set_category("dispute.neighbour");
  c.set_text("漏水");
  c.set_history_length(1);
  v1::HistoryEntry& e = *sync.add_history();
  e.set_case_id(id);
  e.set_seq(1);
  e.set_kind(v1::TRANSITION_KIND_REPORT);
  e.mutable_actor()->set_user("wang.grid");
  e.set_jurisdiction_id(kOtherCounty);
  return sync;
}

TEST_F(ActorTest, CaseCopiesWithBadIdsOrUnreadableRecordsAreRefusedAndNothingIsStored) {
  struct Bad {
    std::string what;
    std::function<void(v1::CaseSync&)> spoil;
  };
  const std::vector<Bad> bad = {
      {"case id with a NUL (it ends ids in keys)",
       [](auto& s) {
         s.mutable_case_()->set_id("hn-1\0x"s);
         s.mutable_history(0)->set_case_id("hn-1\0x"s);
       }},
      {"case id with a slash",
       [](auto& s) {
         s.mutable_case_()->set_id("hn/1");
         s.mutable_history(0)->set_case_id("hn/1");
       }},
      {"reporter not an id", [](auto& s) { s.mutable_case_()->set_reporter("wang grid"); }},
      {"touched id not an id", [](auto& s) { s.mutable_case_()->add_touched_ids("a b"); }},
      {"summons department not an id",
       [](auto& s) { s.mutable_case_()->add_summons()->set_department_id("x\ty"); }},
      {"history actor not an id",
       [](auto& s) { s.mutable_history(0)->mutable_actor()->set_user("M\xfcller"); }},
      {"text that would not read back", [](auto& s) { s.mutable_case_()->set_text("M\xfcller"); }},
      {"history note that would not read back",
       [](auto& s) { s.mutable_history(0)->set_note("M\xfcller"); }},
  };
  uint64_t seq = 0;
  for (const auto& b : bad) {
    v1::CaseSync sync = GoodSync("hn-000000000001");
    b.spoil(sync);
    const std::string id = sync.case_().id();
    std::atomic<int> acked{0};
    ctx_->ApplySync("child", ++seq, std::move(sync), [&acked](const Status& s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      acked++;
    });
    Settle();
    EXPECT_EQ(acked.load(), 1) << b.what << ": the envelope must still be acknowledged";
    EXPECT_EQ(ctx_->store().GetCase(id).status().code(), Code::kNotFound) << b.what;
    auto history = ctx_->store().History(id);
    ASSERT_TRUE(history.ok()) << b.what;
    EXPECT_TRUE(history->empty()) << b.what;
  }
  // The same copy well formed is kept.
  std::atomic<int> acked{0};
  ctx_->ApplySync("child", ++seq, GoodSync("hn-000000000001"),
                  [&acked](const Status&) { acked++; });
  Settle();
  EXPECT_EQ(acked.load(), 1);
  auto kept = ctx_->store().GetCase("hn-000000000001");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->reporter(), "wang.grid");
}

}  // namespace
}  // namespace whistle::actors::testing
