// Node: one whistled process's actor system. Owns the CAF actor system, one
// actor per jurisdiction and per department, the deadline timer actor and
// the Store. Services call it from gRPC threads; replies arrive on CAF or
// commit threads. No CAF header leaks from here (keeps service builds light).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/case_machine.h"
#include "core/clock.h"
#include "core/placement.h"
#include "core/policy.h"
#include "core/status.h"
#include "core/topology.h"
#include "storage/store.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/link.pb.h"
#include "whistle/v1/service.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::actors {

struct NodeOptions {
  std::string node_id = "szs";      // prefix of case ids
  std::string hosted_jurisdiction;  // subtree root this node runs actors for; "" = all
  // Longest the deadline timer sleeps (it wakes at the next due deadline; this
  // bounds how late one fires after a wall-clock jump); 0 disables the timer.
  int timer_interval_ms = 60000;
  // Business time of the node (shared with its store); null = the system clock.
  std::shared_ptr<core::Clock> clock;
  size_t scheduler_threads = 0;          // 0 = hardware concurrency
  int64_t max_inflight_writes = 10000;   // past it, writes get RESOURCE_EXHAUSTED; 0 = no limit
  std::vector<std::string> child_roots;  // subtrees hosted by child nodes
  bool has_parent = false;               // a parent node hosts what lies above
};

class LinkHub;
class Directives;

using CaseCallback = std::function<void(StatusOr<v1::Case>)>;

class Node {
 public:
  // Spawns the actors. `registry` may be null (no metrics).
  static StatusOr<std::unique_ptr<Node>> Start(NodeOptions options,
                                               std::shared_ptr<const core::Topology> topology,
                                               std::shared_ptr<const core::Policy> policy,
                                               std::unique_ptr<storage::Store> store,
                                               prometheus::Registry* registry);
  // Stops the timer, lets the actors finish, then drains and closes the store.
  ~Node();

  // Writes: `done` runs once the transition is durable (or refused). Both
  // take the request as core::CheckReport / CheckCommand accepted it; the
  // actor applies it without checking again.
  void Report(core::CheckedReport report, CaseCallback done);
  void Act(const std::string& case_id, core::CheckedCommand command, CaseCallback done);

  // Reads: acknowledged state straight from the store.
  // Writes in flight now (admitted, not yet answered).
  int64_t inflight_writes() const;

  StatusOr<v1::Case> Get(const std::string& case_id) const;
  // Empty for an unknown case; callers check the case first (they must anyway,
  // for read access), so the store is not read twice.
  // Entries that cannot be read are left out and their seqs appended to
  // `unreadable_seqs` (when given; DATA_LOSS otherwise).
  StatusOr<std::vector<v1::HistoryEntry>> History(
      const std::string& case_id, std::vector<int64_t>* unreadable_seqs = nullptr) const;
  // Cases owned anywhere in the subtree of `jurisdiction_id`, paged.
  StatusOr<v1::ListCasesResponse> List(const std::string& jurisdiction_id, v1::CaseState state,
                                       int page_size, const std::string& page_token) const;
  // Cases per state owned anywhere in the subtree of `jurisdiction_id`.
  StatusOr<v1::CountCasesResponse> Count(const std::string& jurisdiction_id) const;

  // ---- Federation (called by link/) ----
  void SetLinkHub(LinkHub* hub);
  const core::Placement& placement() const;
  // A command forwarded by a peer node: checked again (bytes from the
  // network), then routed to the owner here or further along the tree.
  // `done` gets the answer; OK answers come with the case as stored here.
  void HandleForward(const v1::ForwardRequest& request,
                     std::function<void(StatusOr<v1::Case>, const v1::CaseSync*)> done);
  // A directive receipt or receipts page (ForwardRequest.receipt, .targets)
  // asked by a peer node: checked again, then answered here or sent on
  // towards the node that holds it.
  void HandleCall(const v1::ForwardRequest& request,
                  std::function<void(StatusOr<v1::ForwardAnswer>)> done);
  // See NodeContext::ApplySync.
  void ApplySync(const std::string& from, uint64_t seq, v1::CaseSync sync,
                 std::function<void(const Status&)> done);
  uint64_t DurableInboxSeq(const std::string& peer);

  const core::Topology& topology() const;
  const core::Policy& policy() const;
  core::Context context() const;
  // The node's business clock (NodeOptions::clock).
  const core::Clock& clock() const;
  // Commit-path and RocksDB figures, for metrics.
  storage::StoreStats StoreStats() const;
  const std::string& data_dir() const;
  storage::Store& store();
  // The directive side of the node (actors/directives.h).
  Directives& directives();

 private:
  struct Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  // Counts `done` in flight, or answers RESOURCE_EXHAUSTED and returns false.
  bool Admit(CaseCallback& done);
  // A report admitted here (from a client, or forwarded by a peer: `hops`
  // links so far): answered from this node's request index, created here
  // when its owner is hosted here or the link towards the owner is down
  // before sending, else forwarded towards the owner's node.
  void SubmitReport(core::CheckedReport report, int hops, CaseCallback done);
  // ForwardRequest.report from a peer (HandleCall): checked again, then SubmitReport.
  void HandleReportCall(const v1::ForwardRequest& request,
                        std::function<void(StatusOr<v1::ForwardAnswer>)> done);
  std::unique_ptr<Impl> impl_;
};

}  // namespace whistle::actors
