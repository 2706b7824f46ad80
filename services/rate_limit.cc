#include "services/rate_limit.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cstdio>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace whistle::services {

struct RateLimiter::Impl {
  struct Bucket {
    double tokens;
    Clock::time_point refilled;
    std::list<std::string>::iterator lru;
  };
  Options options;
  mutable std::mutex mu;
  std::unordered_map<std::string, Bucket> buckets;
  std::list<std::string> lru;  // most recently seen first
  prometheus::Counter* denied = nullptr;
};

RateLimiter::RateLimiter(Options options, prometheus::Registry* registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->options.burst = std::max(1.0, options.burst);
  impl_->options.max_callers = std::max<size_t>(1, options.max_callers);
  if (registry != nullptr) {
    impl_->denied = &prometheus::BuildCounter()
                         .Name("whistle_rpc_denied_total")
                         .Help(
                             "Calls refused before any work because of a server-side limit, "
                             "by reason (rate_limit: the caller's requests per second).")
                         .Register(*registry)
                         .Add({{"reason", "rate_limit"}});
  }
}

RateLimiter::~RateLimiter() = default;

Status RateLimiter::Admit(std::string_view user, Clock::time_point now) {
  const Options& o = impl_->options;
  if (o.per_second <= 0) return Status::Ok();
  std::lock_guard lock(impl_->mu);
  auto it = impl_->buckets.find(std::string(user));
  if (it == impl_->buckets.end()) {
    if (impl_->buckets.size() >= o.max_callers) {
      impl_->buckets.erase(impl_->lru.back());
      impl_->lru.pop_back();
    }
    impl_->lru.emplace_front(user);
    it = impl_->buckets.emplace(std::string(user), Impl::Bucket{o.burst, now, impl_->lru.begin()})
             .first;
  } else {
    impl_->lru.splice(impl_->lru.begin(), impl_->lru, it->second.lru);
    double elapsed = std::chrono::duration<double>(now - it->second.refilled).count();
    if (elapsed > 0) {
      it->second.tokens = std::min(o.burst, it->second.tokens + elapsed * o.per_second);
      it->second.refilled = now;
    }
  }
  if (it->second.tokens >= 1) {
    it->second.tokens -= 1;
    return Status::Ok();
  }
  if (impl_->denied != nullptr) impl_->denied->Increment();
  char rate[64];
  std::snprintf(rate, sizeof(rate), "%g requests/s (burst %g)", o.per_second, o.burst);
  return Status(Code::kResourceExhausted,
                std::string("rate limit: this caller exceeds ") + rate + "; retry later");
}

size_t RateLimiter::tracked() const {
  std::lock_guard lock(impl_->mu);
  return impl_->buckets.size();
}

}  // namespace whistle::services
