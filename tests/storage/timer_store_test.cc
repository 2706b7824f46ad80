// What the deadline timer needs from the store: the next deadline in one
// seek, a listener told of every deadline a commit writes, and change-log
// stamps and ages from the node's clock.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "storage/directive_store.h"
#include "storage/store.h"

namespace whistle::storage {
namespace {

class TimerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/whistle_timer_store_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    Options options;
    options.path = dir_ + "/db";
    options.sync = false;
    options.clock = &clock_;
    auto opened = Store::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Puts case `id` owned here, its next deadline moving from `before` to `due`.
  void Time(const std::string& id, int64_t before, int64_t due) {
    v1::Case old_case, c;
    old_case.set_id(id);
    old_case.set_owner_id("j");
    old_case.set_next_deadline_ms(before);
    c = old_case;
    c.set_next_deadline_ms(due);
    Batch b;
    b.PutCase(before == 0 ? nullptr : &old_case, c, true);
    ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  }

  core::ManualClock clock_{5'000};
  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(TimerStoreTest, NextDueIsTheEarliestDeadlineAfterTheGivenTime) {
  auto none = store_->NextDueMs(0);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  Time("b", 0, 9'000);
  Time("a", 0, 6'000);
  Time("c", 0, 6'000);
  EXPECT_EQ(*store_->NextDueMs(-1), 6'000);
  EXPECT_EQ(*store_->NextDueMs(5'999), 6'000);
  EXPECT_EQ(*store_->NextDueMs(6'000), 9'000);  // strictly after
  EXPECT_FALSE(store_->NextDueMs(9'000)->has_value());
  Time("a", 6'000, 12'000);  // moved: the old key is gone
  Time("c", 6'000, 0);       // settled: no key
  EXPECT_EQ(*store_->NextDueMs(0), 9'000);
  auto due = store_->DueTimers(9'000, 10);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].case_id, "b");
}

TEST_F(TimerStoreTest, AMalformedTimerKeyHidesNoDeadline) {
  ASSERT_TRUE(store_->WriteRawForTest("timers", "0000000000001000/", "").ok());  // no case id
  ASSERT_TRUE(store_->WriteRawForTest("timers", "12x", "").ok());
  Time("a", 0, 6'000);
  auto due = store_->DueTimers(7'000, 10);
  ASSERT_TRUE(due.ok()) << due.status().ToString();
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].case_id, "a");
  EXPECT_EQ(*store_->NextDueMs(0), 6'000);
}

TEST_F(TimerStoreTest, TheTimerListenerHearsTheEarliestDeadlineOfEachBatch) {
  std::mutex mu;
  std::vector<int64_t> heard;
  store_->SetTimerListener([&](int64_t due) {
    std::lock_guard lock(mu);
    heard.push_back(due);
  });
  Time("a", 0, 7'000);
  Batch two;
  v1::Case x, y;
  x.set_id("x");
  x.set_next_deadline_ms(8'000);
  y.set_id("y");
  y.set_next_deadline_ms(3'000);
  two.PutCase(nullptr, x, true);
  two.PutCase(nullptr, y, true);
  ASSERT_TRUE(store_->CommitAndWait(std::move(two)).ok());
  Time("a", 7'000, 0);  // a deadline removed: nothing to hear
  v1::Case copy;
  copy.set_id("copy");
  copy.set_next_deadline_ms(1'000);
  Batch not_owned;
  not_owned.PutCase(nullptr, copy, false);  // a copy's deadlines are its owner's
  ASSERT_TRUE(store_->CommitAndWait(std::move(not_owned)).ok());
  store_->SetTimerListener({});
  Time("z", 0, 2'000);  // cleared: not heard
  std::lock_guard lock(mu);
  EXPECT_EQ(heard, (std::vector<int64_t>{7'000, 3'000}));
}

TEST_F(TimerStoreTest, ChangesWithoutAStampGetTheStoreClocksTime) {
  ASSERT_TRUE(clock_.Set(1'700'000'000'000).ok());
  Batch b;
  v1::ProgressCounts delta;
  delta.set_total(1);
  AddProgress(b, "d1", "j", delta);  // a directive change: stamped at commit
  v1::Change stamped;
  stamped.set_at_ms(1'699'999'999'000);
  stamped.add_jurisdiction_ids("j");
  b.RecordChange(stamped);  // stamped by its writer: kept
  ASSERT_TRUE(store_->CommitAndWait(std::move(b)).ok());
  auto changes = store_->ReadChanges(0, 10);
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  ASSERT_EQ(changes->size(), 2u);
  EXPECT_EQ((*changes)[0].change.at_ms(), 1'700'000'000'000);
  EXPECT_EQ((*changes)[1].change.at_ms(), 1'699'999'999'000);
  // The stamp is added to the stored bytes: the rest reads back unchanged.
  const v1::Change& first = (*changes)[0].change;
  ASSERT_EQ(first.jurisdiction_ids_size(), 1);
  EXPECT_EQ(first.jurisdiction_ids(0), "j");
  EXPECT_EQ(first.directive_change().directive_id(), "d1");
  EXPECT_EQ(first.directive_change().delta().total(), 1);
}

}  // namespace
}  // namespace whistle::storage
