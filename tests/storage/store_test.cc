#include "storage/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

namespace whistle::storage {
namespace {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/whistle_storage_test_XXXXXX";
    char* dir = mkdtemp(tmpl);
    if (dir != nullptr) path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string CaseId(const std::string& prefix, uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%012llu", static_cast<unsigned long long>(seq));
  return prefix + "-" + buf;
}

v1::Case MakeCase(const std::string& id, const std::string& owner, v1::CaseState state,
                  int64_t next_deadline_ms = 0) {
  v1::Case c;
  c.set_id(id);
  c.set_owner_id(owner);
  c.set_state(state);
  c.set_next_deadline_ms(next_deadline_ms);
  c.set_text("pothole on " + id);
  c.set_reporter("worker-1");
  return c;
}

v1::HistoryEntry MakeEntry(const v1::Case& before_or_after, int64_t seq, v1::CaseState from) {
  v1::HistoryEntry e;
  e.set_case_id(before_or_after.id());
  e.set_seq(seq);
  e.set_from_state(from);
  e.set_to_state(before_or_after.state());
  e.set_jurisdiction_id(before_or_after.owner_id());
  e.set_at_ms(1000 * seq);
  return e;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    Reopen();
  }

  void Reopen() {
    store_.reset();  // drains and closes before the next open takes the lock
    Options options;
    options.path = dir_.path();
    options.init = true;  // mkdtemp made it: a new, empty dir
    auto opened = Store::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  // Creates a case in one batch (transition from nothing + request id).
  void Create(const v1::Case& c, const std::string& request_id = "") {
    Batch batch;
    batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
    if (!request_id.empty()) batch.RecordRequest(c.reporter(), request_id, c.id());
    Status s = store_->CommitAndWait(std::move(batch));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Move(const v1::Case& before, const v1::Case& after, int64_t seq) {
    Batch batch;
    batch.RecordTransition(&before, after, MakeEntry(after, seq, before.state()));
    Status s = store_->CommitAndWait(std::move(batch));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::vector<std::string> ListIds(const std::string& owner,
                                   v1::CaseState state = v1::CASE_STATE_UNSPECIFIED) {
    std::vector<std::string> ids;
    auto list = store_->ListByOwner(owner, state, "", 1000);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    if (!list.ok()) return ids;
    EXPECT_EQ(list->next_key, "");
    for (const auto& c : list->cases) ids.push_back(c.id());
    return ids;
  }

  int64_t Count(const std::string& owner, v1::CaseState state) {
    auto counts = store_->Counts();
    EXPECT_TRUE(counts.ok()) << counts.status().ToString();
    if (!counts.ok()) return -1;
    auto it = counts->find({owner, state});
    return it == counts->end() ? 0 : it->second;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

using Counts = std::map<std::pair<std::string, int>, int64_t>;

TEST_F(StoreTest, EverythingSurvivesReopen) {
  v1::Case a = MakeCase(CaseId("n1", 1), "street-1", v1::CASE_STATE_REPORTED, 5000);
  v1::Case b = MakeCase(CaseId("n1", 2), "street-1", v1::CASE_STATE_REPORTED, 6000);
  v1::Case c = MakeCase(CaseId("n1", 3), "street-2", v1::CASE_STATE_REPORTED, 7000);
  Create(a, "req-a");
  Create(b, "req-b");
  Create(c, "req-c");
  v1::Case a2 = a;
  a2.set_state(v1::CASE_STATE_ACCEPTED);
  a2.set_next_deadline_ms(9000);
  Move(a, a2, 2);
  v1::Case c2 = c;
  c2.set_state(v1::CASE_STATE_CLOSED);
  c2.set_next_deadline_ms(0);
  Move(c, c2, 2);

  auto snapshot = [&] {
    struct View {
      std::vector<std::string> cases, history, list1, list2, open1, timers, requests;
      Counts counts;
      uint64_t last_seq;
    } v;
    for (const auto& id : {a.id(), b.id(), c.id()}) {
      auto got = store_->GetCase(id);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (got.ok()) v.cases.push_back(got->SerializeAsString());
      auto h = store_->History(id);
      EXPECT_TRUE(h.ok()) << h.status().ToString();
      if (h.ok()) {
        for (const auto& e : *h) v.history.push_back(e.SerializeAsString());
      }
    }
    v.list1 = ListIds("street-1");
    v.list2 = ListIds("street-2");
    auto open = store_->OpenCaseIds("street-1");
    EXPECT_TRUE(open.ok());
    if (open.ok()) v.open1 = *open;
    auto timers = store_->DueTimers(1'000'000, 100);
    EXPECT_TRUE(timers.ok());
    if (timers.ok()) {
      for (const auto& t : *timers) v.timers.push_back(std::to_string(t.due_ms) + ":" + t.case_id);
    }
    for (const auto& r : {"req-a", "req-b", "req-c"}) {
      auto found = store_->FindRequest("worker-1", r);
      EXPECT_TRUE(found.ok()) << found.status().ToString();
      if (found.ok()) v.requests.push_back(*found);
    }
    auto counts = store_->Counts();
    EXPECT_TRUE(counts.ok());
    if (counts.ok()) v.counts = *counts;
    auto last = store_->LastCaseSeq("n1");
    EXPECT_TRUE(last.ok());
    v.last_seq = last.ok() ? *last : 0;
    return v;
  };

  auto before = snapshot();
  // Spot-check the expected values before comparing with the reopened store.
  ASSERT_EQ(before.cases.size(), 3u);
  EXPECT_EQ(before.history.size(), 5u);
  EXPECT_EQ(before.list1, (std::vector<std::string>{b.id(), a.id()}));  // REPORTED sorts first
  EXPECT_EQ(before.list2, (std::vector<std::string>{c.id()}));
  EXPECT_EQ(before.open1, (std::vector<std::string>{b.id(), a.id()}));  // REPORTED first
  EXPECT_EQ(before.timers, (std::vector<std::string>{"6000:" + b.id(), "9000:" + a.id()}));
  EXPECT_EQ(before.requests, (std::vector<std::string>{a.id(), b.id(), c.id()}));
  EXPECT_EQ(before.counts, (Counts{{{"street-1", v1::CASE_STATE_REPORTED}, 1},
                                   {{"street-1", v1::CASE_STATE_ACCEPTED}, 1},
                                   {{"street-2", v1::CASE_STATE_CLOSED}, 1}}));
  EXPECT_EQ(before.last_seq, 3u);

  Reopen();
  auto after = snapshot();
  EXPECT_EQ(after.cases, before.cases);
  EXPECT_EQ(after.history, before.history);
  EXPECT_EQ(after.list1, before.list1);
  EXPECT_EQ(after.list2, before.list2);
  EXPECT_EQ(after.open1, before.open1);
  EXPECT_EQ(after.timers, before.timers);
  EXPECT_EQ(after.requests, before.requests);
  EXPECT_EQ(after.counts, before.counts);
  EXPECT_EQ(after.last_seq, before.last_seq);
}

TEST_F(StoreTest, HistoryComesBackInSeqOrder) {
  v1::Case c = MakeCase(CaseId("n", 1), "x", v1::CASE_STATE_REPORTED);
  Create(c);
  // seq 256 > 255 > 2: big-endian keys must sort numerically, not by text.
  for (int64_t seq : {256, 2, 255}) {
    Batch batch;
    batch.RecordTransition(&c, c, MakeEntry(c, seq, c.state()));
    ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  }
  auto h = store_->History(c.id());
  ASSERT_TRUE(h.ok());
  std::vector<int64_t> seqs;
  for (const auto& e : *h) seqs.push_back(e.seq());
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2, 255, 256}));
  // Another case whose id extends this one must not leak into its history.
  Create(MakeCase(c.id() + "0", "x", v1::CASE_STATE_REPORTED));
  EXPECT_EQ(store_->History(c.id())->size(), 4u);
}

TEST_F(StoreTest, OwnershipChangeMovesIndexAndCounts) {
  v1::Case c = MakeCase(CaseId("n", 1), "street-1", v1::CASE_STATE_REPORTED);
  Create(c);
  EXPECT_EQ(ListIds("street-1"), (std::vector<std::string>{c.id()}));
  EXPECT_EQ(Count("street-1", v1::CASE_STATE_REPORTED), 1);

  v1::Case escalated = c;
  escalated.set_owner_id("district-1");
  Move(c, escalated, 2);
  EXPECT_TRUE(ListIds("street-1").empty());
  EXPECT_EQ(ListIds("district-1"), (std::vector<std::string>{c.id()}));
  EXPECT_EQ(Count("street-1", v1::CASE_STATE_REPORTED), 0);
  EXPECT_EQ(Count("district-1", v1::CASE_STATE_REPORTED), 1);
  EXPECT_EQ(store_->Counts()->size(), 1u);  // zero counts are left out

  // Same owner and state: the case changes, index and counts do not.
  v1::Case edited = escalated;
  edited.set_text("updated");
  Move(escalated, edited, 3);
  EXPECT_EQ(Count("district-1", v1::CASE_STATE_REPORTED), 1);
  EXPECT_EQ(ListIds("district-1", v1::CASE_STATE_REPORTED), (std::vector<std::string>{c.id()}));
  EXPECT_EQ(store_->GetCase(c.id())->text(), "updated");

  v1::Case closed = edited;
  closed.set_state(v1::CASE_STATE_CLOSED);
  Move(edited, closed, 4);
  EXPECT_TRUE(ListIds("district-1", v1::CASE_STATE_REPORTED).empty());
  EXPECT_EQ(ListIds("district-1", v1::CASE_STATE_CLOSED), (std::vector<std::string>{c.id()}));
  EXPECT_TRUE(store_->OpenCaseIds("district-1")->empty());
  EXPECT_EQ(Count("district-1", v1::CASE_STATE_CLOSED), 1);
  EXPECT_EQ(Count("district-1", v1::CASE_STATE_REPORTED), 0);
}

TEST_F(StoreTest, OwnersThatShareAPrefixStayApart) {
  Create(MakeCase(CaseId("n", 1), "a", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("n", 2), "a/b", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("n", 3), "ab", v1::CASE_STATE_REPORTED));
  EXPECT_EQ(ListIds("a"), (std::vector<std::string>{CaseId("n", 1)}));
  EXPECT_EQ(ListIds("a/b"), (std::vector<std::string>{CaseId("n", 2)}));
  EXPECT_EQ(*store_->OpenCaseIds("a"), (std::vector<std::string>{CaseId("n", 1)}));
  EXPECT_EQ(Count("a", v1::CASE_STATE_REPORTED), 1);
  EXPECT_EQ(Count("a/b", v1::CASE_STATE_REPORTED), 1);
}

TEST_F(StoreTest, TimersMoveAndClear) {
  v1::Case a = MakeCase(CaseId("n", 1), "o", v1::CASE_STATE_REPORTED, 100);
  v1::Case b = MakeCase(CaseId("n", 2), "o", v1::CASE_STATE_REPORTED, 50);
  v1::Case none = MakeCase(CaseId("n", 3), "o", v1::CASE_STATE_REPORTED, 0);
  Create(a);
  Create(b);
  Create(none);
  auto due = [&](int64_t now, size_t limit = 100) {
    std::vector<std::string> out;
    auto t = store_->DueTimers(now, limit);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (t.ok()) {
      for (const auto& d : *t) out.push_back(std::to_string(d.due_ms) + ":" + d.case_id);
    }
    return out;
  };
  EXPECT_TRUE(due(49).empty());
  EXPECT_EQ(due(50), (std::vector<std::string>{"50:" + b.id()}));
  EXPECT_EQ(due(1000), (std::vector<std::string>{"50:" + b.id(), "100:" + a.id()}));
  EXPECT_EQ(due(1000, 1), (std::vector<std::string>{"50:" + b.id()}));

  // Numeric order even across digit counts: 100000 is later than 200.
  v1::Case a2 = a;
  a2.set_next_deadline_ms(100000);
  Move(a, a2, 2);
  v1::Case b2 = b;
  b2.set_next_deadline_ms(200);
  Move(b, b2, 2);
  EXPECT_EQ(due(1'000'000), (std::vector<std::string>{"200:" + b.id(), "100000:" + a.id()}));

  // Unchanged deadline: still exactly one timer.
  v1::Case a3 = a2;
  a3.set_text("edited");
  Move(a2, a3, 3);
  EXPECT_EQ(due(1'000'000), (std::vector<std::string>{"200:" + b.id(), "100000:" + a.id()}));

  // Cleared deadline: the timer goes away.
  v1::Case a4 = a3;
  a4.set_next_deadline_ms(0);
  Move(a3, a4, 4);
  EXPECT_EQ(due(1'000'000), (std::vector<std::string>{"200:" + b.id()}));
  Reopen();
  EXPECT_EQ(due(1'000'000), (std::vector<std::string>{"200:" + b.id()}));
}

TEST_F(StoreTest, MissingRecordsAreNotFound) {
  auto c = store_->GetCase("n-000000000042");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kNotFound);
  EXPECT_EQ(c.status().message(), "case n-000000000042 not found");
  auto r = store_->FindRequest("someone", "req");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  auto h = store_->History("n-000000000042");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->empty());
  // The request index separates reporter from request id.
  Create(MakeCase(CaseId("n", 1), "o", v1::CASE_STATE_REPORTED), "b-c");
  EXPECT_FALSE(store_->FindRequest("worker-1b", "-c").ok());
  EXPECT_EQ(*store_->FindRequest("worker-1", "b-c"), CaseId("n", 1));
}

TEST_F(StoreTest, LastCaseSeqIgnoresOtherNodes) {
  EXPECT_EQ(*store_->LastCaseSeq("bj"), 0u);
  Create(MakeCase(CaseId("bj", 5), "o", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("bj", 3), "o", v1::CASE_STATE_REPORTED));
  // Ids of other nodes that sort around, between and after "bj-<12 digits>".
  Create(MakeCase(CaseId("bj-1", 9), "o", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("bj-0", 7), "o", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("bj-haidian", 99), "o", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("bjx", 50), "o", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("b", 60), "o", v1::CASE_STATE_REPORTED));
  Create(MakeCase(CaseId("bj", 5) + "-x", "o", v1::CASE_STATE_REPORTED));
  EXPECT_EQ(*store_->LastCaseSeq("bj"), 5u);
  EXPECT_EQ(*store_->LastCaseSeq("bj-1"), 9u);
  EXPECT_EQ(*store_->LastCaseSeq("bj-0"), 7u);
  EXPECT_EQ(*store_->LastCaseSeq("bj-haidian"), 99u);
  EXPECT_EQ(*store_->LastCaseSeq("bjx"), 50u);
  EXPECT_EQ(*store_->LastCaseSeq("b"), 60u);
  EXPECT_EQ(*store_->LastCaseSeq("nowhere"), 0u);
  Create(MakeCase(CaseId("bj", 999999999999), "o", v1::CASE_STATE_REPORTED));
  EXPECT_EQ(*store_->LastCaseSeq("bj"), 999999999999u);
}

TEST_F(StoreTest, ListByOwnerPagesReturnEveryCaseOnce) {
  constexpr int kCases = 103;
  std::set<std::string> all, open_ids;
  for (int i = 1; i <= kCases; ++i) {
    auto state = static_cast<v1::CaseState>(1 + i % 9);
    v1::Case c = MakeCase(CaseId("n", i), "street", state);
    Create(c);
    all.insert(c.id());
  }
  Create(MakeCase(CaseId("n", 1000), "street-2", v1::CASE_STATE_REPORTED));

  for (size_t page_size : {1u, 7u, 10u, 103u, 500u}) {
    for (auto state : {v1::CASE_STATE_UNSPECIFIED, v1::CASE_STATE_DISPATCHED}) {
      std::multiset<std::string> seen;
      std::string token;
      int pages = 0;
      do {
        auto page = store_->ListByOwner("street", state, token, page_size);
        ASSERT_TRUE(page.ok()) << page.status().ToString();
        ASSERT_LE(page->cases.size(), page_size);
        for (const auto& c : page->cases) {
          if (state != v1::CASE_STATE_UNSPECIFIED) {
            EXPECT_EQ(c.state(), state);
          }
          EXPECT_EQ(c.owner_id(), "street");
          seen.insert(c.id());
        }
        token = page->next_key;
        ASSERT_LT(++pages, 1000);
      } while (!token.empty());
      std::set<std::string> want;
      for (const auto& id : all) {
        auto c = store_->GetCase(id);
        if (state == v1::CASE_STATE_UNSPECIFIED || c->state() == state) want.insert(id);
      }
      EXPECT_EQ(seen.size(), want.size()) << "page size " << page_size;
      EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
    }
  }
  EXPECT_EQ(store_->ListByOwner("street", v1::CASE_STATE_UNSPECIFIED, "", 0).status().code(),
            Code::kInvalidArgument);
  auto open = store_->OpenCaseIds("street");
  ASSERT_TRUE(open.ok());
  size_t want_open = 0;
  for (int i = 1; i <= kCases; ++i) want_open += (1 + i % 9) <= 6;
  EXPECT_EQ(open->size(), want_open);
}

TEST_F(StoreTest, GroupCommitFromManyThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  std::atomic<int> failed{0};
  // Per thread, callbacks must come back in that thread's Commit order.
  std::vector<std::vector<int>> order(kThreads);

  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        v1::Case c = MakeCase(CaseId("g", 1 + t * kPerThread + i), "o-" + std::to_string(t),
                              v1::CASE_STATE_REPORTED, 1000 + i);
        Batch batch;
        batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
        batch.RecordRequest("r" + std::to_string(t), std::to_string(i), c.id());
        store_->Commit(std::move(batch), [&, t, i](const Status& s) {
          if (!s.ok()) failed.fetch_add(1);
          std::lock_guard lock(mu);
          order[t].push_back(i);
          ++answered;
          cv.notify_all();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return answered == kThreads * kPerThread; });
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failed.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(order[t].size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(order[t][i], i);
  }
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.commits, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_GE(stats.wal_syncs, 1u);
  EXPECT_LE(stats.wal_syncs, stats.commits);
  EXPECT_GT(stats.memtable_bytes, 0u);
  std::printf(
      "[ stats    ] %d synced commits in %.3f s = %.0f commits/s, %llu WAL syncs "
      "(%.1f commits per sync)\n",
      kThreads * kPerThread, secs, kThreads * kPerThread / secs,
      static_cast<unsigned long long>(stats.wal_syncs),
      double(stats.commits) / double(stats.wal_syncs));

  Reopen();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(ListIds("o-" + std::to_string(t)).size(), static_cast<size_t>(kPerThread));
    EXPECT_EQ(Count("o-" + std::to_string(t), v1::CASE_STATE_REPORTED), kPerThread);
    for (int i = 0; i < kPerThread; ++i) {
      std::string id = CaseId("g", 1 + t * kPerThread + i);
      ASSERT_TRUE(store_->GetCase(id).ok()) << id;
      ASSERT_EQ(*store_->FindRequest("r" + std::to_string(t), std::to_string(i)), id);
    }
  }
  EXPECT_EQ(*store_->LastCaseSeq("g"), static_cast<uint64_t>(kThreads * kPerThread));
}

// Like actors: each thread waits for its commit before the next, so a group
// holds at most one batch per thread.
TEST_F(StoreTest, GroupCommitClosedLoop) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::atomic<int> failed{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        v1::Case c = MakeCase(CaseId("w", 1 + t * kPerThread + i), "o", v1::CASE_STATE_REPORTED);
        Batch batch;
        batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
        if (!store_->CommitAndWait(std::move(batch)).ok()) failed.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failed.load(), 0);
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.commits, static_cast<uint64_t>(kThreads * kPerThread));
  std::printf(
      "[ stats    ] closed loop: %d synced commits in %.3f s = %.0f commits/s, %llu WAL "
      "syncs (%.1f commits per sync)\n",
      kThreads * kPerThread, secs, kThreads * kPerThread / secs,
      static_cast<unsigned long long>(stats.wal_syncs),
      double(stats.commits) / double(stats.wal_syncs));
  EXPECT_EQ(Count("o", v1::CASE_STATE_REPORTED), kThreads * kPerThread);
}

TEST_F(StoreTest, CallbacksRunInCommitOrder) {
  constexpr int kBatches = 2000;
  std::vector<int> order;  // touched only by the commit thread, read after the last callback
  for (int i = 0; i < kBatches; ++i) {
    Batch batch;
    if (i % 3 != 0) {  // empty batches too: they are answered in order like the rest
      v1::Case c = MakeCase(CaseId("o", i + 1), "x", v1::CASE_STATE_REPORTED);
      batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
    }
    store_->Commit(std::move(batch), [&order, i](const Status& s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      order.push_back(i);
    });
  }
  ASSERT_TRUE(store_->CommitAndWait(Batch()).ok());
  ASSERT_EQ(order.size(), static_cast<size_t>(kBatches));
  for (int i = 0; i < kBatches; ++i) ASSERT_EQ(order[i], i);
}

TEST_F(StoreTest, DestructorDrainsQueuedCommits) {
  constexpr int kBatches = 1000;
  std::atomic<int> ok{0};
  std::atomic<int> answered{0};
  for (int i = 0; i < kBatches; ++i) {
    v1::Case c = MakeCase(CaseId("d", i + 1), "x", v1::CASE_STATE_REPORTED, 10 + i);
    Batch batch;
    batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
    store_->Commit(std::move(batch), [&](const Status& s) {
      if (s.ok()) ok.fetch_add(1);
      answered.fetch_add(1);
    });
  }
  store_.reset();
  EXPECT_EQ(answered.load(), kBatches);
  EXPECT_EQ(ok.load(), kBatches);

  Reopen();
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_TRUE(store_->GetCase(CaseId("d", i + 1)).ok()) << i;
  }
  EXPECT_EQ(Count("x", v1::CASE_STATE_REPORTED), kBatches);
  EXPECT_EQ(store_->DueTimers(1'000'000, 5000)->size(), static_cast<size_t>(kBatches));
  EXPECT_EQ(*store_->LastCaseSeq("d"), static_cast<uint64_t>(kBatches));
}

TEST_F(StoreTest, BatchReportsItsSize) {
  Batch batch;
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.ByteSize(), 0u);
  v1::Case c = MakeCase(CaseId("n", 1), "o", v1::CASE_STATE_REPORTED);
  batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
  EXPECT_FALSE(batch.empty());
  EXPECT_GT(batch.ByteSize(), c.ByteSizeLong());
  Batch moved = std::move(batch);
  EXPECT_FALSE(moved.empty());
  ASSERT_TRUE(store_->CommitAndWait(std::move(moved)).ok());
}

TEST(StoreOpenTest, SecondOpenOfTheSameDirectoryFails) {
  TempDir dir;
  Options options;
  options.path = dir.path();
  options.init = true;  // a new, empty directory
  auto first = Store::Open(options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = Store::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable) << second.status().ToString();
  EXPECT_NE(second.status().message().find(dir.path()), std::string::npos);
}

TEST(StoreOpenTest, EmptyPathIsInvalid) {
  auto store = Store::Open(Options{});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace whistle::storage
