// Records that cannot be read: a case or history entry that does not parse
// (a proto3 string that is not UTF-8, as an older version stored from a
// Latin-1 header), an index entry naming a missing case. They are skipped,
// reported (DATA_LOSS, ListResult::unreadable, unreadable seqs), counted once
// and forgotten when the key is written again. Also the request records
// behind report idempotency (case id + content fingerprint).
#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

#include "storage/keys.h"
#include "storage/store.h"

namespace whistle::storage {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/whistle_unreadable_test_XXXXXX";
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

constexpr char kOwner[] = "street-1";

std::string Id(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "n-%012d", n);
  return buf;
}

v1::Case MakeCase(const std::string& id, const std::string& reporter = "worker-1") {
  v1::Case c;
  c.set_id(id);
  c.set_owner_id(kOwner);
  c.set_state(v1::CASE_STATE_REPORTED);
  c.set_reporter(reporter);
  c.set_history_length(1);
  return c;
}

v1::HistoryEntry MakeEntry(const std::string& id, int64_t seq, const std::string& user) {
  v1::HistoryEntry e;
  e.set_case_id(id);
  e.set_seq(seq);
  e.mutable_actor()->set_user(user);
  return e;
}

// Serialised with a Latin-1 string: protobuf writes it (and complains), but
// never parses it again.
std::string Poisoned(const google::protobuf::Message& m) {
  google::protobuf::LogSilencer quiet;
  return m.SerializeAsString();
}

class UnreadableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    Options options;
    options.path = dir_.path();
    options.init = true;
    auto opened = Store::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  void Put(const v1::Case& c) {
    Batch batch;
    batch.RecordTransition(nullptr, c, MakeEntry(c.id(), 1, "worker-1"));
    ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  }

  // A readable case whose stored record is then replaced by one that does not parse.
  void PutPoisoned(const std::string& id) {
    Put(MakeCase(id));
    ASSERT_TRUE(
        store_->WriteRawForTest("cases", keys::Case(id), Poisoned(MakeCase(id, "M\xfcller"))).ok());
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(UnreadableTest, GetOfAnUnreadableCaseIsDataLossNamingItAndCountedOnce) {
  PutPoisoned(Id(1));
  for (int i = 0; i < 3; ++i) {
    auto got = store_->GetCase(Id(1));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), Code::kDataLoss) << got.status().ToString();
    EXPECT_NE(got.status().message().find(Id(1)), std::string::npos);
  }
  EXPECT_EQ(store_->Stats().unreadable_records, 1u);
  auto full = store_->GetCaseWithHistory(Id(1));
  EXPECT_EQ(full.status().code(), Code::kDataLoss);
  EXPECT_EQ(store_->GetCase(Id(2)).status().code(), Code::kNotFound);
}

TEST_F(UnreadableTest, ListingSkipsAndNamesUnreadableCasesAndPagesOn) {
  Put(MakeCase(Id(1)));
  PutPoisoned(Id(2));
  Put(MakeCase(Id(3)));
  PutPoisoned(Id(4));
  // The index names a case that is not there at all.
  ASSERT_TRUE(
      store_->WriteRawForTest("index", keys::OwnerIndex(kOwner, v1::CASE_STATE_REPORTED, Id(5)), "")
          .ok());
  Put(MakeCase(Id(6)));

  auto all = store_->ListByOwner(kOwner, v1::CASE_STATE_UNSPECIFIED, "", 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> ids;
  for (const auto& c : all->cases) ids.push_back(c.id());
  EXPECT_EQ(ids, (std::vector<std::string>{Id(1), Id(3), Id(6)}));
  EXPECT_EQ(all->unreadable, (std::vector<std::string>{Id(2), Id(4), Id(5)}));
  EXPECT_TRUE(all->next_key.empty());

  // Pages of 2: unreadable entries take their slot, and paging goes on past them.
  std::vector<std::string> paged, skipped;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->ListByOwner(kOwner, v1::CASE_STATE_UNSPECIFIED, after, 2);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE(page->cases.size() + page->unreadable.size(), 2u);
    for (const auto& c : page->cases) paged.push_back(c.id());
    for (const auto& id : page->unreadable) skipped.push_back(id);
    if (page->next_key.empty()) break;
    after = page->next_key;
  }
  EXPECT_EQ(paged, (std::vector<std::string>{Id(1), Id(3), Id(6)}));
  EXPECT_EQ(skipped, (std::vector<std::string>{Id(2), Id(4), Id(5)}));
  EXPECT_EQ(store_->Stats().unreadable_records, 3u);
}

TEST_F(UnreadableTest, HistoryLeavesOutAnUnreadableEntryAndNamesItsSeq) {
  Put(MakeCase(Id(1)));
  ASSERT_TRUE(store_
                  ->WriteRawForTest("history", keys::History(Id(1), 2),
                                    Poisoned(MakeEntry(Id(1), 2, "M\xfcller")))
                  .ok());
  ASSERT_TRUE(store_
                  ->WriteRawForTest("history", keys::History(Id(1), 3),
                                    MakeEntry(Id(1), 3, "li").SerializeAsString())
                  .ok());
  auto strict = store_->History(Id(1));
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), Code::kDataLoss);
  EXPECT_NE(strict.status().message().find(Id(1)), std::string::npos);
  EXPECT_NE(strict.status().message().find("entry 2"), std::string::npos)
      << strict.status().message();

  std::vector<int64_t> seqs;
  auto lenient = store_->History(Id(1), &seqs);
  ASSERT_TRUE(lenient.ok()) << lenient.status().ToString();
  ASSERT_EQ(lenient->size(), 2u);
  EXPECT_EQ((*lenient)[0].seq(), 1);
  EXPECT_EQ((*lenient)[1].seq(), 3);
  EXPECT_EQ(seqs, (std::vector<int64_t>{2}));
}

TEST_F(UnreadableTest, WritingTheKeyAgainRepairsIt) {
  PutPoisoned(Id(1));
  EXPECT_EQ(store_->GetCase(Id(1)).status().code(), Code::kDataLoss);
  // A repair (say, the record restored from a backup) goes through a batch.
  Batch batch;
  batch.PutCase(nullptr, MakeCase(Id(1)), false);
  ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  auto got = store_->GetCase(Id(1));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->reporter(), "worker-1");
}

TEST_F(UnreadableTest, RequestRecordsKeepTheFingerprint) {
  Batch batch;
  batch.RecordRequest("worker-1", "req-1", Id(1), "v1:0123456789abcdef");
  batch.RecordRequest("worker-1", "req-old", Id(2));  // as older versions wrote it
  ASSERT_TRUE(store_->CommitAndWait(std::move(batch)).ok());
  auto record = store_->FindRequestRecord("worker-1", "req-1");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->case_id, Id(1));
  EXPECT_EQ(record->fingerprint, "v1:0123456789abcdef");
  EXPECT_EQ(*store_->FindRequest("worker-1", "req-1"), Id(1));
  auto old = store_->FindRequestRecord("worker-1", "req-old");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->case_id, Id(2));
  EXPECT_EQ(old->fingerprint, "");
  EXPECT_EQ(store_->FindRequestRecord("worker-2", "req-1").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace whistle::storage
