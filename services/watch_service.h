// WatchService: the live watch. Streams a node's change log (storage: one
// entry per case transition and per directive change, written in the batch
// of the change itself) under a subtree, from a resume token, then tails it.
//
// Each stream is a ServerWriteReactor that pulls entries from the store in
// chunks (memory per stream: one chunk) and writes them one at a time. The
// store's change listener (its answer thread) wakes idle streams. A stream
// that once caught up and then falls more than `max_lag` entries behind the
// log ends with RESOURCE_EXHAUSTED; the client resumes from its last token.
// Thread-safe: reactors run on gRPC threads and the store's answer thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "actors/node.h"
#include "services/identity.h"
#include "services/rate_limit.h"
#include "services/rpc_probe.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::services {

struct WatchOptions {
  size_t chunk = 256;        // entries read from the store at a time
  uint64_t max_lag = 50000;  // entries a tailing stream may fall behind
};

class WatchService final : public v1::WatchService::CallbackService {
 public:
  // `registry` may be null (no metrics).
  WatchService(actors::Node& node, RpcProbe& probe, const Authenticator& auth, RateLimiter* limiter,
               prometheus::Registry* registry, WatchOptions options = {});
  ~WatchService() override;

  grpc::ServerWriteReactor<v1::Change>* Watch(grpc::CallbackServerContext* context,
                                              const v1::WatchRequest* request) override;

  // Called by the store's change listener with the highest durable change seq.
  void OnCommitted(uint64_t seq);

  class Stream;

 private:
  friend class Stream;
  void Remove(Stream* stream);

  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  RateLimiter* limiter_;
  const WatchOptions options_;
  std::mutex mu_;
  std::unordered_set<Stream*> streams_;  // guarded by mu_
  struct Probe;                          // whistle_watch_* metrics
  std::unique_ptr<Probe> metrics_;
};

// Resume token of change-log entry `seq`, and back. ParseToken: INVALID_ARGUMENT
// naming from_token when malformed.
std::string ChangeToken(uint64_t seq);
StatusOr<uint64_t> ParseChangeToken(const std::string& token);

}  // namespace whistle::services
