// What directive_actor.cc and directive_query.cc share: the state of
// Directives. Internal to actors/.
#pragma once

#include <atomic>
#include <caf/all.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "actors/directive_probe.h"
#include "actors/directives.h"
#include "actors/link_hub.h"
#include "actors/node_context.h"
#include "whistle/v1/link.pb.h"

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
  // user \0 request id -> directive id and draft fingerprint, for Issues not yet durable.
  struct PendingIssue {
    std::string id;
    std::string fingerprint;  // core::DraftFingerprint of the draft
  };
  std::mutex requests_mu;
  std::unordered_map<std::string, PendingIssue> requests;  // guarded by requests_mu

  // "<node id>-d-": directive ids given out here; the rest is 12 digits.
  std::string IdPrefix() const { return ctx->node_id() + "-d-"; }
  caf::actor ShardOf(const std::string& id) const {
    return shards[std::hash<std::string>{}(id) % shards.size()];
  }
  // Where a receipt of `unit` is counted: a department's own row, then the
  // hosted path of its jurisdiction.
  std::vector<std::string> CountedAt(const v1::Receipt& r) const;
  // The unit's level for metrics (LEVEL_UNSPECIFIED for a department).
  v1::Level UnitLevel(const std::string& unit) const;

  // ---- Federation (directive_actor.cc) ----
  // True for a directive numbered on this node.
  bool Mine(const std::string& id) const { return id.rfind(IdPrefix(), 0) == 0; }
  // True when this node reports the directive's counts to its parent: every
  // directive does on a node with a parent (one that came down, one issued
  // here, one that came up from below), so every node above sees it move.
  bool SendsUp(const std::string& /*id*/) const { return ctx->placement().has_parent(); }
  // Child links whose subtree holds a target unit of `d`.
  std::vector<std::string> ChildPeers(const v1::Directive& d) const;
  // For a batch that changes the counts of the hosted root: bumps their
  // change sequence and, when they go up, marks them unsent (durably).
  void CountsChanged(storage::Batch& batch, const std::string& id);
  // After committing such a batch: the flusher sends the counts up.
  void Unsent(const std::string& id);
  void FlushLoop();
  // Applies a directive or counts update from link `from` in one batch with
  // the inbox mark `batch` already holds; `finish` once durable.
  // Queues "d:<id>" to the parent in `batch` (nothing on the root node).
  void SendUp(storage::Batch& batch, const std::string& id) const;
  void ApplyDirective(const std::string& from, v1::Directive d, storage::Batch batch,
                      std::function<void(const Status&)> finish);
  void ApplyCounts(const std::string& from, const v1::CountsSync& sync, int64_t written_at_ms,
                   storage::Batch batch, std::function<void(const Status&)> finish);
  // FAILED_PRECONDITION naming the node when `unit` is hosted on another node.
  // Where a receipt for `unit` is applied: here (`*hop` empty) or over node
  // link `*hop` towards the node hosting it; FAILED_PRECONDITION naming that
  // node when this node has no links.
  // (A jurisdiction id routes the same way: to the node hosting it.)
  Status RouteUnit(const std::string& unit, std::string* hop) const;
  // Sends `call` over link `hop`; UNAVAILABLE past the hop limit.
  void Call(const std::string& hop, LinkCall call) const;

  std::mutex link_mu;
  std::unordered_map<std::string, int64_t> versions;  // guarded by link_mu: highest queued
  // The same for directives that came up from child nodes, kept apart so a
  // child can never hold back a version coming down (guarded by link_mu).
  std::unordered_map<std::string, int64_t> below_versions;
  std::unordered_map<std::string, v1::ChildCounts> child_counts;  // guarded: directive \0 child
  std::mutex unsent_mu;
  std::condition_variable unsent_cv;
  std::unordered_set<std::string> unsent;  // guarded by unsent_mu
  bool stopping = false;                   // guarded by unsent_mu
  std::thread flusher;                     // only with a parent link
};

}  // namespace whistle::actors
