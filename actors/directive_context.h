// What directive_actor.cc and directive_query.cc share: the state of
// Directives. Internal to actors/.
#pragma once

#include <atomic>
#include <caf/all.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/directive_probe.h"
#include "actors/directives.h"
#include "actors/node_context.h"

namespace whistle::actors {

struct Directives::Impl {
  NodeContext* ctx = nullptr;
  std::unique_ptr<DirectiveProbe> probe;
  std::vector<caf::actor> shards;
  std::atomic<uint64_t> next_seq{1};
  std::atomic<int64_t>* inflight = nullptr;  // the node's writes in flight
  int64_t max_inflight = 0;

  // Counts `done` in flight, or answers RESOURCE_EXHAUSTED and returns false.
  template <class T>
  bool Admit(Reply<T>& done) {
    if (inflight->fetch_add(1, std::memory_order_relaxed) >= max_inflight && max_inflight > 0) {
      inflight->fetch_sub(1, std::memory_order_relaxed);
      done(Status(Code::kResourceExhausted, "node busy: " + std::to_string(max_inflight) +
                                                " writes in flight; retry with backoff"));
      return false;
    }
    done = [counter = inflight, inner = std::move(done)](StatusOr<T> result) {
      counter->fetch_sub(1, std::memory_order_relaxed);
      inner(std::move(result));
    };
    return true;
  }
  // user \0 request id -> directive id, for Issues not yet durable.
  std::mutex requests_mu;
  std::unordered_map<std::string, std::string> requests;  // guarded by requests_mu

  // "<node id>-d-": directive ids given out here; the rest is 12 digits.
  std::string IdPrefix() const { return ctx->node_id() + "-d-"; }
  caf::actor ShardOf(const std::string& id) const {
    return shards[std::hash<std::string>{}(id) % shards.size()];
  }
  // `jurisdiction` and its ancestors, those hosted here: where a unit's
  // receipt is counted on this node.
  std::vector<std::string> HostedPath(const std::string& jurisdiction) const;
  // Where a receipt of `unit` is counted: a department's own row, then the
  // hosted path of its jurisdiction.
  std::vector<std::string> CountedAt(const v1::Receipt& r) const;
  // The unit's level for metrics (LEVEL_UNSPECIFIED for a department).
  v1::Level UnitLevel(const std::string& unit) const;
};

}  // namespace whistle::actors
