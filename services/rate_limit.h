// RateLimiter: per-caller request rate limits, a token bucket per user (the
// verified caller, so one caller cannot spend another's budget). The map of
// buckets is bounded: past max_callers the least recently seen caller is
// forgotten (and starts again with a full bucket). Denials answer
// RESOURCE_EXHAUSTED and are counted in whistle_rpc_denied_total{reason}.
// Thread-safe; called from gRPC threads.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "core/status.h"

namespace prometheus {
class Registry;
}

namespace whistle::services {

class RateLimiter {
 public:
  struct Options {
    double per_second = 1000;  // <= 0: no limit
    double burst = 2000;
    size_t max_callers = 100000;
  };
  using Clock = std::chrono::steady_clock;

  RateLimiter(Options options, prometheus::Registry* registry);  // registry null: no metrics
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // OK when `user` may make one more call now; RESOURCE_EXHAUSTED otherwise
  // (counted with reason "rate_limit").
  Status Admit(std::string_view user) { return Admit(user, Clock::now()); }
  Status Admit(std::string_view user, Clock::time_point now);  // for tests

  size_t tracked() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace whistle::services
