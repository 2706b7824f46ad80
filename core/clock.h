// Clock: where a node reads business time (deadlines, history stamps, change
// log ages). One per node, shared by its actors, services and store, so a
// test can move time forward instead of sleeping. Latency measurements use
// std::chrono::steady_clock directly and token checks real wall time; neither
// goes through here.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>

#include "core/status.h"

namespace whistle::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. Thread-safe.
  virtual int64_t NowMs() const = 0;
};

// The system's wall clock (what production runs on).
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
};

// The process-wide SystemClock, for code given no clock.
const Clock& DefaultClock();

// The times whistled's test clock may take, 2000-01-01 .. 2200-01-01 (UTC), both
// included: the times an assessment can be asked for (AssessmentService).
inline constexpr int64_t kTestClockMinMs = 946'684'800'000;
inline constexpr int64_t kTestClockMaxMs = 7'258'118'400'000;

// A clock that moves only when told (whistled --test-clock-start-ms). Never
// moves backwards, nor past `max_ms`. Thread-safe; listeners run on the
// caller's thread after each change, outside the clock's lock (so they may
// read NowMs).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms, int64_t max_ms = std::numeric_limits<int64_t>::max())
      : now_ms_(start_ms), max_ms_(max_ms) {}
  int64_t NowMs() const override;
  // INVALID_ARGUMENT naming `field` when `ms` is before now or after max_ms.
  // Returns the new time.
  StatusOr<int64_t> Set(int64_t ms, const char* field = "ms");
  // INVALID_ARGUMENT naming `field` when `delta_ms` is negative or moves the
  // clock past max_ms (or overflows).
  StatusOr<int64_t> Advance(int64_t delta_ms, const char* field = "delta_ms");

  // Called with the new time after every change; returns a handle for RemoveListener.
  int AddListener(std::function<void(int64_t)> listener);
  void RemoveListener(int handle);

 private:
  void Notify(int64_t now_ms);

  mutable std::mutex mu_;
  int64_t now_ms_;  // guarded by mu_
  const int64_t max_ms_;
  std::mutex listeners_mu_;
  int next_handle_ = 1;                                    // guarded by listeners_mu_
  std::map<int, std::function<void(int64_t)>> listeners_;  // guarded by listeners_mu_
};

}  // namespace whistle::core
