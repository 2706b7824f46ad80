#include "core/clock.h"

#include <chrono>
#include <limits>
#include <string>
#include <vector>

namespace whistle::core {

int64_t SystemClock::NowMs() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const Clock& DefaultClock() {
  static const SystemClock clock;
  return clock;
}

namespace {

// " (2200-01-01 UTC)" for the test clock's bound, else nothing.
std::string MaxName(int64_t max_ms) { return max_ms == kTestClockMaxMs ? " (2200-01-01 UTC)" : ""; }

}  // namespace

int64_t ManualClock::NowMs() const {
  std::lock_guard lock(mu_);
  return now_ms_;
}

StatusOr<int64_t> ManualClock::Set(int64_t ms, const char* field) {
  {
    std::lock_guard lock(mu_);
    if (ms < now_ms_) {
      return Status::InvalidArgument(std::string(field) + ": " + std::to_string(ms) +
                                     " is before the clock's " + std::to_string(now_ms_) +
                                     "; the clock never moves backwards");
    }
    if (ms > max_ms_) {
      return Status::InvalidArgument(std::string(field) + ": " + std::to_string(ms) +
                                     " is after the clock's latest time " +
                                     std::to_string(max_ms_) + MaxName(max_ms_));
    }
    now_ms_ = ms;
  }
  Notify(ms);
  return ms;
}

StatusOr<int64_t> ManualClock::Advance(int64_t delta_ms, const char* field) {
  int64_t now = 0;
  {
    std::lock_guard lock(mu_);
    if (delta_ms < 0) {
      return Status::InvalidArgument(std::string(field) + ": " + std::to_string(delta_ms) +
                                     " is negative; the clock never moves backwards");
    }
    if (delta_ms > max_ms_ - now_ms_) {
      return Status::InvalidArgument(std::string(field) + ": " + std::to_string(delta_ms) +
                                     " moves the clock from " + std::to_string(now_ms_) +
                                     " past its latest time " + std::to_string(max_ms_) +
                                     MaxName(max_ms_));
    }
    now_ms_ += delta_ms;
    now = now_ms_;
  }
  Notify(now);
  return now;
}

int ManualClock::AddListener(std::function<void(int64_t)> listener) {
  std::lock_guard lock(listeners_mu_);
  const int handle = next_handle_++;
  listeners_.emplace(handle, std::move(listener));
  return handle;
}

void ManualClock::RemoveListener(int handle) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(handle);
}

void ManualClock::Notify(int64_t now_ms) {
  // Under listeners_mu_: a listener removed by RemoveListener never runs after it returns.
  std::lock_guard lock(listeners_mu_);
  for (const auto& [handle, listener] : listeners_) listener(now_ms);
}

}  // namespace whistle::core
