// Supervision notice rows (督办, Store::SupervisionNotices): written in the
// case's own batch, they follow the case's standing notice: added when a
// notice is raised, moved when it is raised again, gone when the case is
// resolved or changes owner; a copy's stale row is never listed.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/store.h"

namespace whistle::storage {
namespace {

class NoticeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/whistle_notice_store_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    Options options;
    options.path = dir_ + "/db";
    options.sync = false;
    auto opened = Store::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static v1::Case Open(const std::string& id, const std::string& owner) {
    v1::Case c;
    c.set_id(id);
    c.set_owner_id(owner);
    c.set_state(v1::CASE_STATE_REPORTED);
    c.set_category("dispute.land");
    return c;
  }
  // What the case machine does on an overdue transition raising a notice.
  static v1::Case Noticed(v1::Case c, const std::string& to, int64_t at, const std::string& what) {
    c.set_notices(c.notice_to_id() == to ? c.notices() + 1 : 1);
    c.set_notice_to_id(to);
    c.set_noticed_at_ms(at);
    c.clear_notice_missed();
    c.add_notice_missed(what);
    return c;
  }
  static v1::Case Cleared(v1::Case c) {
    c.clear_notice_to_id();
    c.clear_noticed_at_ms();
    c.clear_notice_missed();
    c.clear_notices();
    return c;
  }

  // Puts `after` (owned), replacing `before`.
  void Put(const v1::Case* before, const v1::Case& after, bool owned = true) {
    Batch b;
    b.PutCase(before, after, owned);
    ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  }

  // Case ids listed for `to`, in order, reading pages of `page`.
  std::vector<std::string> Listed(const std::string& to, size_t page = 50) {
    std::vector<std::string> out;
    std::string after;
    for (int guard = 0; guard < 100; ++guard) {
      auto p = store_->SupervisionNotices(to, after, page);
      EXPECT_TRUE(p.ok()) << p.status().ToString();
      if (!p.ok()) break;
      for (const auto& c : p->cases) out.push_back(c.id());
      if (p->next_key.empty()) break;
      after = p->next_key;
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(NoticeStoreTest, RowsFollowTheCaseThroughNoticeResolveMoveAndReopen) {
  v1::Case a0 = Open("t-000000000001", "town");
  Put(nullptr, a0);
  EXPECT_TRUE(Listed("county").empty()) << "no notice yet";

  v1::Case a1 = Noticed(a0, "county", 1'000, "accept");
  Put(&a0, a1);
  ASSERT_EQ(Listed("county"), std::vector<std::string>{"t-000000000001"});
  EXPECT_TRUE(Listed("town").empty()) << "the notice goes to the level above the owner";

  // Noticed again: one row, the newer notice, the count up.
  v1::Case a2 = Noticed(a1, "county", 2'000, "accept");
  Put(&a1, a2);
  auto page = store_->SupervisionNotices("county", "", 50);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->cases.size(), 1u);
  EXPECT_EQ(page->cases[0].notices(), 2);
  EXPECT_EQ(page->cases[0].noticed_at_ms(), 2'000);

  // A second case noticed later lists first (newest notice first).
  v1::Case b0 = Open("t-000000000002", "town");
  v1::Case b1 = Noticed(b0, "county", 3'000, "resolve");
  Put(nullptr, b0);
  Put(&b0, b1);
  EXPECT_EQ(Listed("county"), (std::vector<std::string>{"t-000000000002", "t-000000000001"}));
  EXPECT_EQ(Listed("county", 1), (std::vector<std::string>{"t-000000000002", "t-000000000001"}))
      << "paged one at a time, nothing lost or repeated";

  // Accepted: still open, still listed.
  v1::Case a3 = a2;
  a3.set_state(v1::CASE_STATE_ACCEPTED);
  Put(&a2, a3);
  EXPECT_EQ(Listed("county").size(), 2u);

  // Resolved: the machine clears the notice; the row goes.
  v1::Case a4 = Cleared(a3);
  a4.set_state(v1::CASE_STATE_RESOLVED);
  Put(&a3, a4);
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000002"});
  // The row itself is gone (not merely skipped): with the noticed record put
  // back behind the index's back, nothing lists it.
  ASSERT_TRUE(store_->WriteRawForTest("cases", a3.id(), a3.SerializeAsString()).ok());
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000002"}) << "row left behind";
  ASSERT_TRUE(store_->WriteRawForTest("cases", a4.id(), a4.SerializeAsString()).ok());

  // Reopened (verification found it not fixed): no notice until one is raised again.
  v1::Case a5 = a4;
  a5.set_state(v1::CASE_STATE_ACCEPTED);
  Put(&a4, a5);
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000002"});
  v1::Case a6 = Noticed(a5, "county", 4'000, "resolve");
  Put(&a5, a6);
  EXPECT_EQ(Listed("county"), (std::vector<std::string>{"t-000000000001", "t-000000000002"}));
  EXPECT_EQ(store_->SupervisionNotices("county", "", 50)->cases[0].notices(), 1)
      << "a fresh notice after resolution counts from one";

  // Moved to another owner (escalated / transferred): the row goes.
  v1::Case b2 = Cleared(b1);
  b2.set_owner_id("county");
  Put(&b1, b2);
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000001"});
  ASSERT_TRUE(store_->WriteRawForTest("cases", b1.id(), b1.SerializeAsString()).ok());
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000001"}) << "row left behind";
  ASSERT_TRUE(store_->WriteRawForTest("cases", b2.id(), b2.SerializeAsString()).ok());

  // Closed while a field lingered (defensive): never listed.
  v1::Case a7 = a6;
  a7.set_state(v1::CASE_STATE_CLOSED);
  Put(&a6, a7);
  EXPECT_TRUE(Listed("county").empty());
}

TEST_F(NoticeStoreTest, ACopyIsListedAndItsStaleRowIsSkipped) {
  // A county node holds a copy of a township node's case (owned = false, no
  // `before`): it lists the notice; when the copy moves on, the old row stays
  // in the index but is not listed.
  v1::Case c1 = Noticed(Open("t-000000000009", "town"), "county", 1'000, "accept");
  Put(nullptr, c1, /*owned=*/false);
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000009"});
  v1::Case c2 = Noticed(c1, "county", 5'000, "accept");
  Put(nullptr, c2, false);
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000009"}) << "listed once";
  v1::Case c3 = Cleared(c2);
  c3.set_state(v1::CASE_STATE_RESOLVED);
  Put(nullptr, c3, false);
  EXPECT_TRUE(Listed("county").empty());
}

TEST_F(NoticeStoreTest, AnotherLevelsNoticesAreNotListedAndAPrefixDoesNotLeak) {
  Put(nullptr, Noticed(Open("t-000000000003", "town"), "county", 1'000, "accept"));
  Put(nullptr, Noticed(Open("t-000000000004", "town2"), "county2", 1'000, "accept"));
  EXPECT_EQ(Listed("county"), std::vector<std::string>{"t-000000000003"});
  EXPECT_EQ(Listed("county2"), std::vector<std::string>{"t-000000000004"});
  EXPECT_TRUE(Listed("count").empty());
  EXPECT_FALSE(store_->SupervisionNotices("county", "", 0).ok());
}

}  // namespace
}  // namespace whistle::storage
