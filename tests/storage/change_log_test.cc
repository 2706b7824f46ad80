// The change log (live watch) and the department / reporter inbox indexes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "storage/store.h"

namespace whistle::storage {
namespace {

class Dir {
 public:
  Dir() {
    char tmpl[] = "/tmp/whistle_change_log_test_XXXXXX";
    if (char* d = mkdtemp(tmpl)) path_ = d;
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

v1::HistoryEntry Entry(const std::string& case_id, int64_t seq, int64_t at_ms = 1000) {
  v1::HistoryEntry e;
  e.set_case_id(case_id);
  e.set_seq(seq);
  e.set_kind(v1::TRANSITION_KIND_ACCEPT);
  e.set_to_state(v1::CASE_STATE_ACCEPTED);
  e.set_jurisdiction_id("t1");
  e.set_from_jurisdiction_id("c1");
  e.set_at_ms(at_ms);
  return e;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<Store> Open(const std::string& path, uint64_t max_entries = 1'000'000) {
  Options o;
  o.path = path;
  o.init = true;  // a new or empty directory: make the store
  o.sync = false;
  o.change_log_max_entries = max_entries;
  auto s = Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(ChangeLog, OneEntryPerHistoryEntryNumberedInCommitOrderAndAfterReopen) {
  Dir dir;
  {
    auto store = Open(dir.path());
    std::atomic<uint64_t> heard{0};
    store->SetChangeListener([&](uint64_t seq) { heard = seq; });
    for (int i = 1; i <= 5; ++i) {
      Batch b;
      b.PutHistory(Entry("a", i, NowMs()));
      if (i % 2 == 0) b.PutHistory(Entry("b", i / 2, NowMs()));
      ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
    }
    EXPECT_EQ(store->LastChangeSeq(), 7u);
    EXPECT_EQ(heard.load(), 7u);
    auto all = store->ReadChanges(0, 100);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    ASSERT_EQ(all->size(), 7u);
    for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].seq, i + 1);
    const auto& c = (*all)[0].change;
    ASSERT_TRUE(c.has_case_change());
    EXPECT_EQ(c.case_change().case_id(), "a");
    EXPECT_EQ(c.case_change().owner_id(), "t1");
    EXPECT_EQ(c.jurisdiction_ids_size(), 2);  // after and before: both see it
    auto page = store->ReadChanges(3, 2);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->size(), 2u);
    EXPECT_EQ((*page)[0].seq, 4u);
    EXPECT_TRUE(store->ReadChanges(7, 10)->empty());
    auto ahead = store->ReadChanges(8, 10);
    EXPECT_EQ(ahead.status().code(), Code::kOutOfRange);
  }
  auto store = Open(dir.path());
  EXPECT_EQ(store->LastChangeSeq(), 7u);
  Batch b;
  b.PutHistory(Entry("c", 1, NowMs()));
  ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
  EXPECT_EQ(store->LastChangeSeq(), 8u);
}

TEST(ChangeLog, TrimmedBySizeAndAgeTokensBeforeTheTrimAreOutOfRange) {
  Dir dir;
  {
    auto store = Open(dir.path(), 10);
    for (int i = 1; i <= 30; ++i) {
      Batch b;
      b.PutHistory(Entry("a", i, NowMs()));
      ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // one trim check a second
    Batch b;
    b.PutHistory(Entry("a", 31, NowMs()));
    ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
    EXPECT_EQ(store->TrimmedChangeSeq(), 21u);
    auto gone = store->ReadChanges(20, 10);
    EXPECT_EQ(gone.status().code(), Code::kOutOfRange);
    EXPECT_NE(gone.status().message().find("trimmed up to 21"), std::string::npos);
    auto kept = store->ReadChanges(21, 100);
    ASSERT_TRUE(kept.ok()) << kept.status().ToString();
    ASSERT_EQ(kept->size(), 10u);
    EXPECT_EQ(kept->front().seq, 22u);
  }
  // The trim mark survives a restart; numbering goes on.
  auto store = Open(dir.path(), 10);
  EXPECT_EQ(store->TrimmedChangeSeq(), 21u);
  EXPECT_EQ(store->ReadChanges(0, 1).status().code(), Code::kOutOfRange);

  // Age: entries older than the limit go, whatever the count.
  Dir aged;
  Options o;
  o.path = aged.path();
  o.init = true;  // a new or empty directory: make the store
  o.sync = false;
  o.change_log_max_age_ms = 60'000;
  auto old_store = std::move(Store::Open(o)).value();
  Batch b1;
  b1.PutHistory(Entry("x", 1, NowMs() - 120'000));
  b1.PutHistory(Entry("x", 2, NowMs() - 90'000));
  ASSERT_TRUE(old_store->CommitAndWait(std::move(b1)).ok());  // checks at once: trims both
  Batch b2;
  b2.PutHistory(Entry("x", 3, NowMs()));
  ASSERT_TRUE(old_store->CommitAndWait(std::move(b2)).ok());
  EXPECT_EQ(old_store->TrimmedChangeSeq(), 2u);
  auto rest = old_store->ReadChanges(2, 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ(rest->front().seq, 3u);
}

v1::Case Summoned(const std::string& id, const std::string& dept, int64_t due, bool reported_in) {
  v1::Case c;
  c.set_id(id);
  c.set_owner_id("t1");
  c.set_state(v1::CASE_STATE_IN_PROGRESS);
  c.set_reporter("w1");
  auto* s = c.add_summons();
  s->set_department_id(dept);
  s->set_report_in_by_ms(due);
  s->set_reported_in_at_ms(reported_in ? 5 : 0);
  return c;
}

TEST(DepartmentInbox, PendingFirstByDeadlineThenTheRestStaleRowsSkipped) {
  Dir dir;
  auto store = Open(dir.path());
  Batch b;
  b.PutCase(nullptr, Summoned("k1", "police", 3000, false), true);
  b.PutCase(nullptr, Summoned("k2", "police", 1000, false), true);
  b.PutCase(nullptr, Summoned("k3", "police", 2000, true), true);
  b.PutCase(nullptr, Summoned("k4", "judicial", 500, false), true);
  ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
  auto page = store->DepartmentInbox("police", "", 10);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->rows.size(), 3u);
  EXPECT_EQ(page->rows[0].c.id(), "k2");
  EXPECT_EQ(page->rows[1].c.id(), "k1");
  EXPECT_EQ(page->rows[2].c.id(), "k3");
  EXPECT_TRUE(page->rows[0].pending);
  EXPECT_EQ(page->rows[0].report_in_by_ms, 1000);
  EXPECT_FALSE(page->rows[2].pending);

  // A copy re-put without `before` (federation) leaves its old row: skipped on read.
  Batch b2;
  b2.PutCase(nullptr, Summoned("k2", "police", 1000, true), false);
  ASSERT_TRUE(store->CommitAndWait(std::move(b2)).ok());
  page = store->DepartmentInbox("police", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->rows.size(), 3u);
  EXPECT_EQ(page->rows[0].c.id(), "k1");
  EXPECT_FALSE(page->rows[1].pending);  // k2 or k3, both reported in
  EXPECT_FALSE(page->rows[2].pending);

  // Paging.
  auto first = store->DepartmentInbox("police", "", 1);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next_key.empty());
  auto second = store->DepartmentInbox("police", first->next_key, 5);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->rows.size(), 2u);
  EXPECT_TRUE(second->next_key.empty());
}

TEST(ReportedBy, ListsTheReportersCasesOnly) {
  Dir dir;
  auto store = Open(dir.path());
  Batch b;
  for (const auto& [id, who, req] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"k1", "w1", "r1"}, {"k2", "w1", "r2"}, {"k3", "w2", "r1"}}) {
    v1::Case c = Summoned(id, "police", 0, false);
    c.set_reporter(who);
    b.PutCase(nullptr, c, true);
    b.RecordRequest(who, req, id);
  }
  ASSERT_TRUE(store->CommitAndWait(std::move(b)).ok());
  auto mine = store->ReportedBy("w1", "", 10);
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->cases.size(), 2u);
  EXPECT_EQ(mine->cases[0].id(), "k1");
  EXPECT_EQ(mine->cases[1].id(), "k2");
  EXPECT_EQ(store->ReportedBy("w", "", 10)->cases.size(), 0u);  // no prefix match
}

}  // namespace
}  // namespace whistle::storage
