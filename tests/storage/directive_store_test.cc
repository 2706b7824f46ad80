// Directive records in the Store: receipts move between inbox states, counts
// add up from deltas, pages resume where they stopped, ids are numbered from
// the records.
#include "storage/directive_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace whistle::storage {
namespace {

class DirectiveStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/whistle_directive_store_XXXXXX";
    path_ = mkdtemp(tmpl);
    Options o;
    o.path = path_;
    o.init = true;  // a new or empty directory: make the store
    auto opened = Store::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  v1::Receipt NewReceipt(const std::string& d, const std::string& unit) {
    v1::Receipt r;
    r.set_directive_id(d);
    r.set_unit_id(unit);
    r.set_jurisdiction_id(unit);
    r.set_state(v1::RECEIPT_STATE_PENDING);
    return r;
  }
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(DirectiveStoreTest, ReceiptsCountsAndInbox) {
  v1::Directive d1, d2;
  d1.set_id("n-d-000000000001");
  d2.set_id("n-d-000000000002");
  Batch b;
  PutDirective(b, d1);
  PutDirective(b, d2);
  v1::ProgressCounts two;
  two.set_total(2);
  for (const auto& d : {d1, d2}) {
    PutReceipt(b, nullptr, NewReceipt(d.id(), "g1"));
    PutReceipt(b, nullptr, NewReceipt(d.id(), "g2"));
    AddProgress(b, d.id(), "c", two);
    IndexDirective(b, "c", d.id());
  }
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());

  // g1 signs d1: the inbox entry moves behind the pending d2, counts add a delta.
  v1::Receipt before = NewReceipt(d1.id(), "g1");
  v1::Receipt after = before;
  after.set_state(v1::RECEIPT_STATE_SIGNED);
  Batch sign;
  PutReceipt(sign, &before, after);
  v1::ProgressCounts delta;
  delta.set_signed_(1);
  AddProgress(sign, d1.id(), "c", delta);
  ASSERT_TRUE(store_->CommitAndWait(std::move(sign)).ok());

  auto counts = GetProgress(*store_, d1.id(), "c");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->total(), 2);
  EXPECT_EQ(counts->signed_(), 1);
  EXPECT_EQ(counts->done(), 0);
  EXPECT_EQ(GetProgress(*store_, d1.id(), "elsewhere")->total(), 0);
  // "c" must not match "c2"'s counts, nor d1 d10's.
  EXPECT_EQ(GetProgress(*store_, "n-d-00000000000", "c")->total(), 0);

  auto inbox = ListInbox(*store_, "g1", "", 10);
  ASSERT_TRUE(inbox.ok());
  EXPECT_EQ(inbox->ids, (std::vector<std::string>{d2.id(), d1.id()}));  // pending first
  auto first = ListInbox(*store_, "g1", "", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->ids, (std::vector<std::string>{d2.id()}));
  auto rest = ListInbox(*store_, "g1", first->next, 1);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->ids, (std::vector<std::string>{d1.id()}));
  EXPECT_TRUE(rest->next.empty());
  EXPECT_EQ(GetReceipt(*store_, d1.id(), "g1")->state(), v1::RECEIPT_STATE_SIGNED);
  EXPECT_EQ(GetReceipt(*store_, d1.id(), "g3").status().code(), Code::kNotFound);

  auto pending = ListReceipts(*store_, d1.id(), "", 10, [](const v1::Receipt& r) {
    return r.state() == v1::RECEIPT_STATE_PENDING;
  });
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->receipts.size(), 1u);
  EXPECT_EQ(pending->receipts[0].unit_id(), "g2");

  auto listed = ListDirectiveIds(*store_, "c", "", 1);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->ids, (std::vector<std::string>{d1.id()}));
  EXPECT_EQ(ListDirectiveIds(*store_, "c", listed->next, 5)->ids,
            (std::vector<std::string>{d2.id()}));
  EXPECT_EQ(*LastDirectiveSeq(*store_, "n-d-"), 2u);
  EXPECT_EQ(*LastDirectiveSeq(*store_, "other-d-"), 0u);
}

TEST_F(DirectiveStoreTest, InboxTokensAreTheOnesListInboxGives) {
  Batch b;
  for (const char* id : {"n-d-000000000001", "n-d-000000000002"}) {
    PutReceipt(b, nullptr, NewReceipt(id, "g1"));
  }
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  auto first = ListInbox(*store_, "g1", "", 1);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->next.empty());
  EXPECT_TRUE(CheckInboxToken(first->next).ok()) << first->next;
  EXPECT_TRUE(CheckInboxToken("").ok());
  EXPECT_TRUE(CheckInboxToken("3/n-d-000000000001").ok());
  for (const std::string& bad : std::vector<std::string>{
           "abc", "9/x", "-1/a", "/", "0/n-d-000000000001", "4/n-d-1", "1/", "1/a b", "1:n-d-1",
           std::string("1/a\0b", 5), std::string(400, '1')}) {
    Status s = CheckInboxToken(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(s.message(), "page_token: not a token this server issued") << bad;
  }
}

TEST_F(DirectiveStoreTest, IssueRequestsKeepTheDraftFingerprint) {
  Batch b;
  RecordIssueRequest(b, "mayor", "r1", "n-d-000000000001", "v1:0123456789abcdef");
  RecordIssueRequest(b, "mayor", "r2", "n-d-000000000002");  // as before fingerprints
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  auto r1 = FindIssueRecord(*store_, "mayor", "r1");
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->directive_id, "n-d-000000000001");
  EXPECT_EQ(r1->fingerprint, "v1:0123456789abcdef");
  EXPECT_EQ(*FindIssueRequest(*store_, "mayor", "r1"), "n-d-000000000001");
  auto r2 = FindIssueRecord(*store_, "mayor", "r2");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->directive_id, "n-d-000000000002");
  EXPECT_EQ(r2->fingerprint, "");
  EXPECT_EQ(FindIssueRecord(*store_, "other", "r1").status().code(), Code::kNotFound);
}

TEST_F(DirectiveStoreTest, IncompleteExpansionsAreFound) {
  v1::Directive d;
  d.set_id("n-d-000000000007");
  v1::DirectiveExpansion cursor;
  cursor.set_after_unit("g5");
  cursor.set_units(5);
  Batch b;
  PutDirective(b, d);
  PutExpansion(b, d.id(), cursor);
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  auto pending = IncompleteExpansions(*store_);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].cursor.after_unit(), "g5");
  cursor.set_complete(true);
  Batch done;
  PutExpansion(done, d.id(), cursor);
  ASSERT_TRUE(store_->CommitAndWait(std::move(done)).ok());
  EXPECT_TRUE(IncompleteExpansions(*store_)->empty());
}

}  // namespace
}  // namespace whistle::storage
