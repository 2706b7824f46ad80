// storage/assessment_store: rows merged by addition in the transition's own
// batch, period sums by day range, gauges, child-node rows, the recurrence
// index, and all of it again after a reopen.
#include "storage/assessment_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace whistle::storage {
namespace {

class AssessmentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/whistle_assessment_store_XXXXXX";
    char* dir = mkdtemp(tmpl);
    ASSERT_NE(dir, nullptr);
    path_ = dir;
    Reopen(true);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  void Reopen(bool init = false) {
    store_.reset();
    Options o;
    o.path = path_;
    o.init = init;
    o.sync = false;
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::vector<int64_t> Sum(char kind, const std::string& subject, int64_t from, int64_t to) {
    auto s = SumAssessment(*store_, kind, subject, from, to);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : std::vector<int64_t>(kAssessmentMaxFigure + 1, -1);
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

v1::Case MakeCase(const std::string& id) {
  v1::Case c;
  c.set_id(id);
  c.set_owner_id("dwk-s01");
  c.set_state(v1::CASE_STATE_REPORTED);
  return c;
}

v1::HistoryEntry MakeEntry(const v1::Case& c) {
  v1::HistoryEntry e;
  e.set_case_id(c.id());
  e.set_seq(1);
  e.set_to_state(c.state());
  e.set_jurisdiction_id(c.owner_id());
  return e;
}

TEST_F(AssessmentStoreTest, RowsCommitWithTheTransitionAndSurviveAReopen) {
  for (int i = 0; i < 10; ++i) {
    v1::Case c = MakeCase("szs-00000000000" + std::to_string(i));
    Batch b;
    b.RecordTransition(nullptr, c, MakeEntry(c));
    AddAssessmentRow(b, {'j', "dwk-s01", 20000 + i % 3, 1, 1});
    AddAssessmentRow(b, {'j', "dwk-s01", 20000 + i % 3, 3, 2});
    AddAssessmentRow(b, {'j', "dwk-s01", kAssessmentGaugeDay, 21, i % 2 == 0 ? 1 : -1});
    AddAssessmentRow(b, {'d', "dwk-s01-police_station", 20000, 22, 1});
    ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  }
  {
    // A batch built and never committed leaves no row behind.
    Batch dropped;
    AddAssessmentRow(dropped, {'j', "dwk-s01", 20000, 1, 100});
  }
  auto all = Sum('j', "dwk-s01", 20000, 20002);
  EXPECT_EQ(all[1], 10);
  EXPECT_EQ(all[3], 20);
  EXPECT_EQ(all[21], 0);  // five +1, five -1
  auto first = Sum('j', "dwk-s01", 20000, 20000);
  EXPECT_EQ(first[1], 4);  // i = 0, 3, 6, 9
  auto later = Sum('j', "dwk-s01", 20001, 20400);
  EXPECT_EQ(later[1], 6);
  EXPECT_EQ(Sum('j', "dwk-s01", 19000, 19999)[1], 0);
  EXPECT_EQ(Sum('d', "dwk-s01-police_station", 0, 999998)[22], 10);
  // Prefixes do not bleed: "dwk-s0" is another subject, "dwk-s01-c01" too.
  EXPECT_EQ(Sum('j', "dwk-s0", 0, 999998)[1], 0);
  EXPECT_EQ(Sum('j', "dwk-s01-c01", 0, 999998)[1], 0);
  EXPECT_EQ(Sum('d', "dwk-s01", 0, 999998)[1], 0);

  Reopen();
  EXPECT_EQ(Sum('j', "dwk-s01", 20000, 20002), all);
  EXPECT_EQ(Sum('j', "dwk-s01", 20000, 20000), first);
  EXPECT_TRUE(store_->GetCase("szs-000000000009").ok());
}

TEST_F(AssessmentStoreTest, ChildNodeRowsAreAbsoluteAndAddedOnRead) {
  Batch b;
  AddAssessmentRow(b, {'j', "dwk", 20000, 1, 3}, /*mark_pending=*/true);
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  auto pending = PendingAssessment(*store_, 100);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].subject, "dwk");
  EXPECT_EQ((*pending)[0].day, 20000);

  Batch child;
  PutChildAssessment(child, "node-s01", {'j', "dwk", 20000}, {{1, 5}, {3, 2}});
  PutChildAssessment(child, "node-s02", {'j', "dwk", 20000}, {{1, 7}});
  ASSERT_TRUE(store_->CommitAndWait(std::move(child)).ok());
  // Sent again (a resend, or a later absolute value): replaced, not added.
  Batch again;
  PutChildAssessment(again, "node-s01", {'j', "dwk", 20000}, {{1, 6}, {3, 2}});
  ASSERT_TRUE(store_->CommitAndWait(std::move(again)).ok());
  auto sum = Sum('j', "dwk", 20000, 20000);
  EXPECT_EQ(sum[1], 3 + 6 + 7);
  EXPECT_EQ(sum[3], 2);
  auto totals = AssessmentTotals(*store_, {'j', "dwk", 20000});
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(*totals, (std::vector<std::pair<int, int64_t>>{{1, 16}, {3, 2}}));

  Batch clear;
  ClearPendingAssessment(clear, {'j', "dwk", 20000});
  ASSERT_TRUE(store_->CommitAndWait(std::move(clear)).ok());
  EXPECT_TRUE(PendingAssessment(*store_, 100)->empty());
  Reopen();
  EXPECT_EQ(Sum('j', "dwk", 20000, 20000)[1], 16);
}

TEST_F(AssessmentStoreTest, LastReportPerGridAndCategory) {
  EXPECT_EQ(*LastReport(*store_, "g1", "dispute"), 0);
  Batch b;
  RecordLastReport(b, "g1", "dispute", 5000);
  RecordLastReport(b, "g1", "dispute.x", 7000);
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  Reopen();
  EXPECT_EQ(*LastReport(*store_, "g1", "dispute"), 5000);
  EXPECT_EQ(*LastReport(*store_, "g1", "dispute.x"), 7000);
  EXPECT_EQ(*LastReport(*store_, "g", "1dispute"), 0);
}

}  // namespace
}  // namespace whistle::storage
