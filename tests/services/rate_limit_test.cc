// RateLimiter: a token bucket per caller, refilled with time, bounded in how
// many callers it remembers, denials counted.
#include "services/rate_limit.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <string>

namespace whistle::services {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

double Denied(prometheus::Registry& registry) {
  for (const auto& family : registry.Collect()) {
    if (family.name == "whistle_rpc_denied_total") {
      for (const auto& m : family.metric) {
        if (m.label.size() == 1 && m.label[0].value == "rate_limit") return m.counter.value;
      }
    }
  }
  return -1;
}

TEST(RateLimiterTest, BurstThenRate) {
  prometheus::Registry registry;
  RateLimiter limiter({.per_second = 2, .burst = 3}, &registry);
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("ann", t0).ok()) << i;
  Status refused = limiter.Admit("ann", t0);
  EXPECT_EQ(refused.code(), Code::kResourceExhausted);
  EXPECT_NE(refused.message().find("rate limit"), std::string::npos) << refused.message();
  EXPECT_EQ(Denied(registry), 1);
  // Half a second later one token has come back (2/s), not two.
  EXPECT_TRUE(limiter.Admit("ann", t0 + 500ms).ok());
  EXPECT_FALSE(limiter.Admit("ann", t0 + 500ms).ok());
  // Never more than the burst, however long the caller waited.
  const auto later = t0 + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit("ann", later).ok()) << i;
  EXPECT_FALSE(limiter.Admit("ann", later).ok());
  EXPECT_EQ(Denied(registry), 3);
}

TEST(RateLimiterTest, CallersHaveTheirOwnBuckets) {
  RateLimiter limiter({.per_second = 1, .burst = 1}, nullptr);
  const auto t0 = Clock::now();
  EXPECT_TRUE(limiter.Admit("ann", t0).ok());
  EXPECT_FALSE(limiter.Admit("ann", t0).ok());
  EXPECT_TRUE(limiter.Admit("bob", t0).ok());
}

TEST(RateLimiterTest, ZeroRateIsNoLimit) {
  RateLimiter limiter({.per_second = 0, .burst = 1}, nullptr);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.Admit("ann").ok());
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(RateLimiterTest, RemembersAtMostMaxCallersEvictingTheLeastRecent) {
  RateLimiter limiter({.per_second = 1, .burst = 1, .max_callers = 100}, nullptr);
  const auto t0 = Clock::now();
  EXPECT_TRUE(limiter.Admit("ann", t0).ok());  // ann's bucket is empty now
  for (int i = 0; i < 99; ++i) EXPECT_TRUE(limiter.Admit("u" + std::to_string(i), t0).ok());
  EXPECT_FALSE(limiter.Admit("ann", t0).ok());  // still remembered: most recent again
  for (int i = 0; i < 10000; ++i) (void)limiter.Admit("v" + std::to_string(i), t0);
  EXPECT_EQ(limiter.tracked(), 100u);
  // ann was evicted long ago: she starts again with a full bucket.
  EXPECT_TRUE(limiter.Admit("ann", t0).ok());
}

}  // namespace
}  // namespace whistle::services
