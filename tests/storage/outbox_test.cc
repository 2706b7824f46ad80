// The node-link side of the Store: per-peer outbox (numbered at commit time,
// announced to the listener, read, trimmed, numbering kept across restarts),
// the inbox mark, read-only copies (PutCase with owned = false) and the
// one-snapshot case + history read.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace whistle::storage {
namespace {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/whistle_outbox_test_XXXXXX";
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

std::string CaseId(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "szs-%012llu", static_cast<unsigned long long>(seq));
  return buf;
}

v1::Case MakeCase(const std::string& id, const std::string& owner, v1::CaseState state,
                  int64_t next_deadline_ms = 0) {
  v1::Case c;
  c.set_id(id);
  c.set_owner_id(owner);
  c.set_state(state);
  c.set_next_deadline_ms(next_deadline_ms);
  c.set_reporter("wang.grid");
  c.set_text("漏水 " + id);
  return c;
}

v1::HistoryEntry MakeEntry(const v1::Case& after, int64_t seq, v1::CaseState from) {
  v1::HistoryEntry e;
  e.set_case_id(after.id());
  e.set_seq(seq);
  e.set_from_state(from);
  e.set_to_state(after.state());
  e.set_jurisdiction_id(after.owner_id());
  e.set_at_ms(1000 * seq);
  return e;
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    Reopen();
  }

  // Closes (draining the queue) and opens the same directory again. The
  // listener is installed before anything is committed.
  void Reopen() {
    store_.reset();
    Options options;
    options.path = dir_.path();
    options.init = true;  // mkdtemp made it: a new, empty dir
    auto opened = Store::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    store_->SetOutboxListener([this](const std::string& peer, uint64_t seq) {
      std::lock_guard lock(mu_);
      announced_.emplace_back(peer, seq);
    });
  }

  // Commits one batch sending `case_id` to each of `peers`; returns the
  // (peer, seq) pairs the listener saw for it.
  std::vector<std::pair<std::string, uint64_t>> Send(const std::vector<std::string>& peers,
                                                     const std::string& case_id,
                                                     int64_t now_ms = 1000) {
    Batch batch;
    for (const auto& p : peers) batch.Send(p, case_id, now_ms);
    size_t before;
    {
      std::lock_guard lock(mu_);
      before = announced_.size();
    }
    Status s = store_->CommitAndWait(std::move(batch));
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::lock_guard lock(mu_);
    return {announced_.begin() + static_cast<std::ptrdiff_t>(before), announced_.end()};
  }

  std::vector<uint64_t> Seqs(const std::string& peer, uint64_t after = 0, size_t limit = 100000) {
    std::vector<uint64_t> seqs;
    auto read = store_->ReadOutbox(peer, after, limit);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    if (!read.ok()) return seqs;
    for (const auto& e : *read) seqs.push_back(e.seq);
    return seqs;
  }

  std::vector<std::string> OwnedIds(const std::string& owner) {
    std::vector<std::string> ids;
    auto list = store_->ListByOwner(owner, v1::CASE_STATE_UNSPECIFIED, "", 1000);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    if (!list.ok()) return ids;
    for (const auto& c : list->cases) ids.push_back(c.id());
    return ids;
  }

  std::map<std::pair<std::string, int>, int64_t> Counts() {
    auto counts = store_->Counts();
    EXPECT_TRUE(counts.ok()) << counts.status().ToString();
    return counts.ok() ? *counts : std::map<std::pair<std::string, int>, int64_t>{};
  }

  std::vector<std::string> Timers() {
    std::vector<std::string> out;
    auto due = store_->DueTimers(INT64_MAX / 2, 1000);
    EXPECT_TRUE(due.ok()) << due.status().ToString();
    if (!due.ok()) return out;
    for (const auto& t : *due) out.push_back(std::to_string(t.due_ms) + ":" + t.case_id);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::mutex mu_;
  std::vector<std::pair<std::string, uint64_t>> announced_;  // guarded by mu_
};

using Announced = std::vector<std::pair<std::string, uint64_t>>;

// ---- Numbering ----

TEST_F(OutboxTest, NumbersEachPeerFromOne) {
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 0u);
  EXPECT_EQ(Send({"dwk"}, CaseId(1)), (Announced{{"dwk", 1}}));
  EXPECT_EQ(Send({"dwk", "parent"}, CaseId(2)), (Announced{{"dwk", 2}, {"parent", 1}}));
  // Two entries for one peer in one batch: consecutive numbers, batch order.
  EXPECT_EQ(Send({"dwk", "dwk"}, CaseId(3)), (Announced{{"dwk", 3}, {"dwk", 4}}));
  // A batch without sends takes no number.
  EXPECT_TRUE(Send({}, CaseId(4)).empty());
  // A peer whose name extends another's has its own numbers and entries.
  EXPECT_EQ(Send({"dwk-s01"}, CaseId(5)), (Announced{{"dwk-s01", 1}}));
  EXPECT_EQ(Send({"dwk"}, CaseId(6)), (Announced{{"dwk", 5}}));
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 5u);
  EXPECT_EQ(store_->LastOutboxSeq("dwk-s01"), 1u);
  EXPECT_EQ(store_->LastOutboxSeq("parent"), 1u);
  EXPECT_EQ(store_->LastOutboxSeq("hn"), 0u);
  EXPECT_EQ(Seqs("dwk"), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(Seqs("dwk-s01"), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(Seqs("dw").empty());
}

// Eight threads commit concurrently. Per peer the numbers are 1, 2, 3 ...
// in commit order (the order the batches are answered), with no gap and no
// duplicate; the listener hears of every entry of a batch before that
// batch's `done` runs.
TEST_F(OutboxTest, ConcurrentCommitsNumberInCommitOrder) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  constexpr int kTotal = kThreads * kPerThread;

  // What batch `b` sends, in order: dwk always; hn every 2nd; parent twice
  // every 3rd; nothing at all every 7th.
  auto sends_of = [](int b) {
    std::vector<std::string> peers;
    if (b % 7 == 6) return peers;
    peers.push_back("dwk");
    if (b % 2 == 0) peers.push_back("hn");
    if (b % 3 == 0) {
      peers.push_back("parent");
      peers.push_back("parent");
    }
    return peers;
  };

  // One log on the answer thread: listener calls and `done` calls, in the
  // order they ran. Batch b sends case id CaseId(b) to each of its peers.
  struct Event {
    bool done;
    int batch;         // done only
    std::string peer;  // listener only
    uint64_t seq = 0;  // listener only
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> log;
  int answered = 0;
  std::atomic<int> failed{0};
  store_->SetOutboxListener([&](const std::string& peer, uint64_t seq) {
    std::lock_guard lock(mu);
    log.push_back({false, -1, peer, seq});
  });

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int b = t * kPerThread + i;
        Batch batch;
        for (const auto& peer : sends_of(b)) batch.Send(peer, CaseId(b), 1000 + b);
        store_->Commit(std::move(batch), [&, b](const Status& s) {
          if (!s.ok()) failed.fetch_add(1);
          std::lock_guard lock(mu);
          log.push_back({true, b, "", 0});
          ++answered;
          cv.notify_all();
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 120s, [&] { return answered == kTotal; }))
        << answered << " of " << kTotal << " answered";
  }
  ASSERT_EQ(failed.load(), 0);

  // The entries as stored: (peer, seq) -> case id.
  std::map<std::pair<std::string, uint64_t>, std::string> stored;
  std::map<std::string, uint64_t> expected_count;
  for (int b = 0; b < kTotal; ++b) {
    for (const auto& p : sends_of(b)) ++expected_count[p];
  }
  for (const auto& [peer, n] : expected_count) {
    auto read = store_->ReadOutbox(peer, 0, 100000);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    ASSERT_EQ(read->size(), n) << peer;
    for (size_t k = 0; k < read->size(); ++k) {
      const OutboxEntry& e = (*read)[k];
      ASSERT_EQ(e.seq, k + 1) << peer << ": a gap or a duplicate";
      stored[{peer, e.seq}] = e.case_id;
    }
    EXPECT_EQ(store_->LastOutboxSeq(peer), n) << peer;
  }

  // Walk the log: the listener entries before each done are exactly that
  // batch's sends, in batch order, numbered one after the other per peer.
  std::map<std::string, uint64_t> next;  // peer -> next expected seq
  std::vector<int> last_done(kThreads, -1);
  std::vector<std::pair<std::string, uint64_t>> pending;
  std::set<int> done_batches;
  for (const Event& ev : log) {
    if (!ev.done) {
      ASSERT_EQ(ev.seq, ++next[ev.peer]) << ev.peer << " numbered out of commit order";
      pending.emplace_back(ev.peer, ev.seq);
      continue;
    }
    const int b = ev.batch;
    ASSERT_TRUE(done_batches.insert(b).second) << "batch " << b << " answered twice";
    std::vector<std::string> peers = sends_of(b);
    ASSERT_EQ(pending.size(), peers.size()) << "batch " << b;
    for (size_t k = 0; k < peers.size(); ++k) {
      EXPECT_EQ(pending[k].first, peers[k]) << "batch " << b;
      EXPECT_EQ(stored[pending[k]], CaseId(b)) << "batch " << b << " entry " << k;
    }
    pending.clear();
    // One thread's batches are committed in the order it called Commit.
    const int t = b / kPerThread;
    EXPECT_GT(b, last_done[t]);
    last_done[t] = b;
  }
  EXPECT_TRUE(pending.empty()) << "entries announced after the last answer";
  EXPECT_EQ(done_batches.size(), static_cast<size_t>(kTotal));
  for (const auto& [peer, n] : expected_count) EXPECT_EQ(next[peer], n) << peer;
}

// ---- Reading ----

TEST_F(OutboxTest, ReadOutboxAfterAndLimit) {
  for (int i = 1; i <= 10; ++i) Send({"dwk"}, CaseId(i), 5000 + i);
  Send({"dwk-s01"}, CaseId(99), 7000);

  auto all = store_->ReadOutbox("dwk", 0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 10u);
  for (int i = 1; i <= 10; ++i) {
    const OutboxEntry& e = (*all)[i - 1];
    EXPECT_EQ(e.seq, static_cast<uint64_t>(i));
    EXPECT_EQ(e.case_id, CaseId(i));
    EXPECT_EQ(e.written_at_ms, 5000 + i);
  }
  EXPECT_EQ(Seqs("dwk", 0, 3), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(Seqs("dwk", 3, 3), (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(Seqs("dwk", 8, 5), (std::vector<uint64_t>{9, 10}));
  EXPECT_EQ(Seqs("dwk", 9, 1), (std::vector<uint64_t>{10}));
  EXPECT_TRUE(Seqs("dwk", 10, 100).empty());
  EXPECT_TRUE(Seqs("dwk", 1000, 100).empty());
  // Another peer's entries never show, even when its name extends this one.
  auto sub = store_->ReadOutbox("dwk-s01", 0, 100);
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->size(), 1u);
  EXPECT_EQ((*sub)[0].case_id, CaseId(99));
  EXPECT_TRUE(Seqs("hn").empty());
}

// ---- Trimming and restarts ----

TEST_F(OutboxTest, TrimKeepsNumbering) {
  for (int i = 1; i <= 5; ++i) Send({"dwk"}, CaseId(i));
  Send({"hn"}, CaseId(100));
  Send({"hn"}, CaseId(101));

  ASSERT_TRUE(store_->TrimOutbox("dwk", 3).ok());
  EXPECT_EQ(Seqs("dwk"), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 5u);
  EXPECT_EQ(Send({"dwk"}, CaseId(6)), (Announced{{"dwk", 6}}));
  // Another peer is untouched.
  EXPECT_EQ(Seqs("hn"), (std::vector<uint64_t>{1, 2}));

  // Trimming everything: the next entry still gets the next number.
  ASSERT_TRUE(store_->TrimOutbox("dwk", 6).ok());
  EXPECT_TRUE(Seqs("dwk").empty());
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 6u);
  EXPECT_EQ(Send({"dwk"}, CaseId(7)), (Announced{{"dwk", 7}}));
  EXPECT_EQ(Seqs("dwk"), (std::vector<uint64_t>{7}));
  // Trimming what is already gone changes nothing.
  ASSERT_TRUE(store_->TrimOutbox("dwk", 6).ok());
  EXPECT_EQ(Seqs("dwk"), (std::vector<uint64_t>{7}));
}

TEST_F(OutboxTest, PartlyTrimmedOutboxSurvivesReopen) {
  for (int i = 1; i <= 5; ++i) Send({"dwk"}, CaseId(i));
  ASSERT_TRUE(store_->TrimOutbox("dwk", 3).ok());

  Reopen();
  EXPECT_EQ(Seqs("dwk"), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 5u);
  EXPECT_EQ(Send({"dwk"}, CaseId(6)), (Announced{{"dwk", 6}}));

  // The first send after a restart, without asking LastOutboxSeq first.
  Reopen();
  EXPECT_EQ(Send({"dwk"}, CaseId(7)), (Announced{{"dwk", 7}}));
  auto read = store_->ReadOutbox("dwk", 0, 100);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 4u);  // 4, 5, 6, 7
  EXPECT_EQ((*read)[0].case_id, CaseId(4));
  EXPECT_EQ((*read)[3].seq, 7u);
  EXPECT_EQ((*read)[3].case_id, CaseId(7));
}

TEST_F(OutboxTest, FullyTrimmedOutboxKeepsNumberingAcrossReopen) {
  for (int i = 1; i <= 4; ++i) Send({"dwk"}, CaseId(i));
  Send({"parent"}, CaseId(50));
  ASSERT_TRUE(store_->TrimOutbox("dwk", 4).ok());
  ASSERT_TRUE(store_->TrimOutbox("parent", 1).ok());
  EXPECT_TRUE(Seqs("dwk").empty());

  // LastOutboxSeq first.
  Reopen();
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 4u);
  EXPECT_EQ(store_->LastOutboxSeq("parent"), 1u);
  EXPECT_TRUE(Seqs("dwk").empty());
  EXPECT_EQ(Send({"dwk"}, CaseId(5)), (Announced{{"dwk", 5}}));

  // A send first: a receiver that already applied 1..5 must not see a
  // reused number, which it would skip as a resend.
  ASSERT_TRUE(store_->TrimOutbox("dwk", 5).ok());
  Reopen();
  EXPECT_EQ(Send({"dwk", "parent"}, CaseId(6)), (Announced{{"dwk", 6}, {"parent", 2}}));
  EXPECT_EQ(Seqs("dwk"), (std::vector<uint64_t>{6}));

  // And again, twice in a row with nothing in between.
  ASSERT_TRUE(store_->TrimOutbox("dwk", 6).ok());
  Reopen();
  Reopen();
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 6u);
  EXPECT_EQ(Send({"dwk"}, CaseId(7)), (Announced{{"dwk", 7}}));
}

// Disabled: fails today. TrimOutbox overwrites the acknowledged mark
// ("a/<peer>") with whatever seq it is given, so a stale trim (a delayed ack
// handled by an old session after a newer one trimmed further) lowers it;
// with the outbox empty at the next start, numbering resumes below numbers
// the peer already applied, and the peer skips those entries as resends.
TEST_F(OutboxTest, StaleTrimDoesNotRewindNumberingAcrossReopen) {
  for (int i = 1; i <= 5; ++i) Send({"dwk"}, CaseId(i));
  ASSERT_TRUE(store_->TrimOutbox("dwk", 5).ok());
  ASSERT_TRUE(store_->TrimOutbox("dwk", 3).ok());  // stale
  Reopen();
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 5u);
  EXPECT_EQ(Send({"dwk"}, CaseId(6)), (Announced{{"dwk", 6}}));
}

TEST_F(OutboxTest, InboxSurvivesReopen) {
  for (const char* peer : {"dwk", "dwk-s01", "parent"}) {
    auto seq = store_->InboxSeq(peer);
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    EXPECT_EQ(*seq, 0u) << peer;
  }
  Batch batch;
  batch.RecordInbox("dwk", 7);
  batch.RecordInbox("dwk-s01", 3);
  batch.RecordInbox("parent", 1ull << 40);
  ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  EXPECT_EQ(*store_->InboxSeq("dwk"), 7u);
  EXPECT_EQ(*store_->InboxSeq("dwk-s01"), 3u);

  Reopen();
  EXPECT_EQ(*store_->InboxSeq("dwk"), 7u);
  EXPECT_EQ(*store_->InboxSeq("dwk-s01"), 3u);
  EXPECT_EQ(*store_->InboxSeq("parent"), 1ull << 40);
  EXPECT_EQ(*store_->InboxSeq("hn"), 0u);
  // The inbox mark is independent of this node's own outbox to that peer.
  EXPECT_EQ(store_->LastOutboxSeq("dwk"), 0u);

  // Recorded in the same batch as the copy it applied.
  Batch next;
  v1::Case copy = MakeCase(CaseId(1), "szs", v1::CASE_STATE_ACCEPTED);
  next.PutCase(nullptr, copy, false);
  next.RecordInbox("dwk", 8);
  ASSERT_TRUE(store_->CommitAndWait(std::move(next)).ok());
  Reopen();
  EXPECT_EQ(*store_->InboxSeq("dwk"), 8u);
  EXPECT_TRUE(store_->GetCase(CaseId(1)).ok());
}

// ---- Read-only copies ----

TEST_F(OutboxTest, CopyIsNotIndexedCountedOrTimed) {
  v1::Case copy = MakeCase(CaseId(1), "hn-s01", v1::CASE_STATE_ACCEPTED, 9000);
  Batch batch;
  batch.PutCase(nullptr, copy, false);
  batch.PutHistory(MakeEntry(copy, 1, v1::CASE_STATE_UNSPECIFIED));
  ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());

  auto got = store_->GetCase(copy.id());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->SerializeAsString(), copy.SerializeAsString());
  EXPECT_TRUE(OwnedIds("hn-s01").empty());
  EXPECT_TRUE(Counts().empty());
  EXPECT_TRUE(Timers().empty());
  auto open = store_->OpenCaseIds("hn-s01");
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->empty());

  // A newer copy over the old one: still nothing.
  v1::Case newer = copy;
  newer.set_state(v1::CASE_STATE_IN_PROGRESS);
  newer.set_owner_id("hn");
  newer.set_next_deadline_ms(12000);
  Batch update;
  update.PutCase(nullptr, newer, false);
  ASSERT_TRUE(store_->CommitAndWait(std::move(update)).ok());
  EXPECT_EQ(store_->GetCase(copy.id())->state(), v1::CASE_STATE_IN_PROGRESS);
  EXPECT_TRUE(OwnedIds("hn").empty());
  EXPECT_TRUE(Counts().empty());
  EXPECT_TRUE(Timers().empty());

  Reopen();
  EXPECT_TRUE(Counts().empty());
  EXPECT_TRUE(Timers().empty());
  EXPECT_EQ(store_->History(copy.id())->size(), 1u);
}

TEST_F(OutboxTest, HandingACaseAwayRemovesIndexCountAndTimer) {
  v1::Case owned = MakeCase(CaseId(1), "dwk-s01", v1::CASE_STATE_ACCEPTED, 9000);
  v1::Case other = MakeCase(CaseId(2), "dwk-s01", v1::CASE_STATE_ACCEPTED, 8000);
  for (const v1::Case* c : {&owned, &other}) {
    Batch batch;
    batch.RecordTransition(nullptr, *c, MakeEntry(*c, 1, v1::CASE_STATE_UNSPECIFIED));
    ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  }
  ASSERT_EQ(OwnedIds("dwk-s01").size(), 2u);
  ASSERT_EQ((Counts()[{"dwk-s01", v1::CASE_STATE_ACCEPTED}]), 2);
  ASSERT_EQ(Timers(), (std::vector<std::string>{"8000:" + other.id(), "9000:" + owned.id()}));

  // Escalated to the city, hosted on another node: the case leaves, with
  // its outbox entry, in one batch.
  v1::Case away = owned;
  away.set_owner_id("szs");
  away.set_history_length(2);
  away.set_next_deadline_ms(20000);
  Batch batch;
  batch.PutCase(&owned, away, false);
  batch.PutHistory(MakeEntry(away, 2, v1::CASE_STATE_ACCEPTED));
  batch.Send("parent", away.id(), 1000);
  ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());

  EXPECT_EQ(OwnedIds("dwk-s01"), (std::vector<std::string>{other.id()}));
  EXPECT_TRUE(OwnedIds("szs").empty());
  auto counts = Counts();
  EXPECT_EQ((counts[{"dwk-s01", v1::CASE_STATE_ACCEPTED}]), 1);
  EXPECT_EQ(counts.count({"szs", v1::CASE_STATE_ACCEPTED}), 0u);
  EXPECT_EQ(Timers(), (std::vector<std::string>{"8000:" + other.id()}));
  EXPECT_EQ(store_->GetCase(away.id())->owner_id(), "szs");
  EXPECT_EQ(Seqs("parent"), (std::vector<uint64_t>{1}));

  // The same state, same owner, not owned: still removes (a state-preserving
  // hand-over must not leave the old index entry behind).
  v1::Case same = other;
  same.set_history_length(2);
  Batch keep_state;
  keep_state.PutCase(&other, same, false);
  ASSERT_TRUE(store_->CommitAndWait(std::move(keep_state)).ok());
  EXPECT_TRUE(OwnedIds("dwk-s01").empty());
  EXPECT_EQ(Counts().count({"dwk-s01", v1::CASE_STATE_ACCEPTED}), 0u);
  EXPECT_TRUE(Timers().empty());

  Reopen();
  EXPECT_TRUE(OwnedIds("dwk-s01").empty());
  EXPECT_TRUE(Counts().empty());
  EXPECT_TRUE(Timers().empty());
}

TEST_F(OutboxTest, TakingOwnershipOfACopyIndexesCountsAndTimesIt) {
  v1::Case copy = MakeCase(CaseId(1), "dwk-s01", v1::CASE_STATE_ACCEPTED, 9000);
  Batch first;
  first.PutCase(nullptr, copy, false);
  ASSERT_TRUE(store_->CommitAndWait(std::move(first)).ok());
  ASSERT_TRUE(Counts().empty());

  // Escalated to a jurisdiction hosted here: the copy becomes ours.
  v1::Case mine = copy;
  mine.set_owner_id("dwk");
  mine.set_next_deadline_ms(15000);
  Batch take;
  take.PutCase(nullptr, mine, true);
  ASSERT_TRUE(store_->CommitAndWait(std::move(take)).ok());
  EXPECT_EQ(OwnedIds("dwk"), (std::vector<std::string>{copy.id()}));
  EXPECT_TRUE(OwnedIds("dwk-s01").empty());
  EXPECT_EQ((Counts()[{"dwk", v1::CASE_STATE_ACCEPTED}]), 1);
  EXPECT_EQ(Timers(), (std::vector<std::string>{"15000:" + copy.id()}));
}

// ---- One-snapshot read ----

TEST_F(OutboxTest, GetCaseWithHistoryReadsOneSnapshot) {
  auto missing = store_->GetCaseWithHistory(CaseId(404));
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  constexpr int kTransitions = 400;
  const std::string id = CaseId(1);
  v1::Case c = MakeCase(id, "dwk-s01", v1::CASE_STATE_REPORTED, 1000);
  c.set_history_length(1);
  {
    Batch batch;
    batch.RecordTransition(nullptr, c, MakeEntry(c, 1, v1::CASE_STATE_UNSPECIFIED));
    ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  }

  // A reader checks every snapshot while a writer appends transitions
  // (case and history entry in one batch each), without waiting in between.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::string first_torn;
  std::thread reader([&] {
    while (!stop.load()) {
      auto got = store_->GetCaseWithHistory(id);
      if (!got.ok()) {
        torn.fetch_add(1);
        continue;
      }
      const auto& [value, history] = *got;
      bool ok = static_cast<int64_t>(history.size()) == value.history_length();
      for (size_t k = 0; ok && k < history.size(); ++k) {
        ok = history[k].seq() == static_cast<int64_t>(k + 1) && history[k].case_id() == id;
      }
      ok = ok && !history.empty() && history.back().to_state() == value.state();
      if (!ok && torn.fetch_add(1) == 0) {
        first_torn = "case at " + std::to_string(value.history_length()) + ", " +
                     std::to_string(history.size()) + " entries";
      }
      reads.fetch_add(1);
    }
  });
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  for (int n = 2; n <= kTransitions; ++n) {
    v1::Case next = c;
    next.set_history_length(n);
    next.set_state(n % 2 == 0 ? v1::CASE_STATE_ACCEPTED : v1::CASE_STATE_IN_PROGRESS);
    next.set_next_deadline_ms(1000 + n);
    Batch batch;
    batch.RecordTransition(&c, next, MakeEntry(next, n, c.state()));
    store_->Commit(std::move(batch), [&](const Status& s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      std::lock_guard lock(mu);
      ++answered;
      cv.notify_all();
    });
    c = next;
    if (n % 50 == 0) std::this_thread::sleep_for(1ms);  // let the reader see many states
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 120s, [&] { return answered == kTransitions - 1; }));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0) << first_torn;
  EXPECT_GT(reads.load(), 0);

  auto final_read = store_->GetCaseWithHistory(id);
  ASSERT_TRUE(final_read.ok());
  EXPECT_EQ(final_read->first.SerializeAsString(), c.SerializeAsString());
  ASSERT_EQ(final_read->second.size(), static_cast<size_t>(kTransitions));
  auto history = store_->History(id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), final_read->second.size());
  for (size_t k = 0; k < history->size(); ++k) {
    EXPECT_EQ((*history)[k].SerializeAsString(), final_read->second[k].SerializeAsString());
  }
  // The index moved with every transition: one entry, one count, one timer.
  EXPECT_EQ(OwnedIds("dwk-s01"), (std::vector<std::string>{id}));
  EXPECT_EQ(Counts().size(), 1u);
  EXPECT_EQ(Timers(), (std::vector<std::string>{std::to_string(1000 + kTransitions) + ":" + id}));
}

}  // namespace
}  // namespace whistle::storage
