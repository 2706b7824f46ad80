// ManualClock: moves only when told, never backwards, tells its listeners.
#include "core/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>
#include <vector>

namespace whistle::core {
namespace {

TEST(ManualClockTest, StandsStillUntilMoved) {
  ManualClock clock(1'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(clock.NowMs(), 1'000);
  auto set = clock.Set(5'000);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(*set, 5'000);
  auto advanced = clock.Advance(90'000);
  ASSERT_TRUE(advanced.ok());
  EXPECT_EQ(*advanced, 95'000);
  EXPECT_EQ(clock.NowMs(), 95'000);
  EXPECT_TRUE(clock.Set(95'000).ok());  // setting to now is not moving back
}

TEST(ManualClockTest, NeverMovesBackwardsAndNamesTheField) {
  ManualClock clock(10'000);
  auto back = clock.Set(9'999, "now_ms");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(back.status().message().rfind("now_ms:", 0), 0u) << back.status().message();
  auto negative = clock.Advance(-1, "delta_ms");
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(negative.status().message().rfind("delta_ms:", 0), 0u);
  auto overflow = clock.Advance(std::numeric_limits<int64_t>::max(), "delta_ms");
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(clock.NowMs(), 10'000);  // refused moves change nothing
}

TEST(ManualClockTest, NeverMovesPastItsLatestTime) {
  ManualClock clock(kTestClockMinMs, kTestClockMaxMs);
  auto set = clock.Set(kTestClockMaxMs + 1, "now_ms");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(set.status().message().rfind("now_ms:", 0), 0u) << set.status().message();
  auto far = clock.Advance(106'752LL * 86'400'000, "delta_ms");  // to the year 2292
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.status().message().rfind("delta_ms:", 0), 0u) << far.status().message();
  EXPECT_FALSE(clock.Advance(std::numeric_limits<int64_t>::max(), "delta_ms").ok());
  EXPECT_EQ(clock.NowMs(), kTestClockMinMs);  // refused moves change nothing
  EXPECT_TRUE(clock.Advance(kTestClockMaxMs - kTestClockMinMs).ok());  // the bound is included
  EXPECT_EQ(clock.NowMs(), kTestClockMaxMs);
  EXPECT_FALSE(clock.Advance(1).ok());
}

TEST(ManualClockTest, ListenersHearEveryMoveUntilRemoved) {
  ManualClock clock(0);
  std::vector<int64_t> heard;
  const int handle = clock.AddListener([&](int64_t now) { heard.push_back(now); });
  ASSERT_TRUE(clock.Advance(10).ok());
  ASSERT_TRUE(clock.Set(100).ok());
  ASSERT_FALSE(clock.Set(50).ok());  // refused: not heard
  clock.RemoveListener(handle);
  ASSERT_TRUE(clock.Advance(1).ok());
  EXPECT_EQ(heard, (std::vector<int64_t>{10, 100}));
}

TEST(ManualClockTest, ConcurrentAdvancesAllCount) {
  ManualClock clock(0);
  std::atomic<int> calls{0};
  clock.AddListener([&](int64_t) { ++calls; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) ASSERT_TRUE(clock.Advance(1).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.NowMs(), 4000);
  EXPECT_EQ(calls.load(), 4000);
}

TEST(SystemClockTest, FollowsTheWallClock) {
  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t now = DefaultClock().NowMs();
  EXPECT_GE(now, before);
  EXPECT_LT(now - before, 5'000);
}

}  // namespace
}  // namespace whistle::core
