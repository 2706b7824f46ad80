// NodeContext: what every actor of a node shares. Built once by Node::Start,
// then read-only except for the atomics and the mutex-guarded counts.
#pragma once

#include <array>
#include <atomic>
#include <caf/all.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "actors/assessment.h"
#include "actors/directives.h"
#include "actors/link_hub.h"
#include "actors/messages.h"
#include "actors/node.h"
#include "actors/probe.h"
#include "core/case_machine.h"
#include "core/placement.h"
#include "storage/store.h"
#include "whistle/v1/link.pb.h"

namespace whistle::actors {

class NodeContext {
 public:
  NodeContext(std::string node_id, std::shared_ptr<const core::Topology> topology,
              std::shared_ptr<const core::Policy> policy, std::unique_ptr<storage::Store> store,
              prometheus::Registry* registry);

  const std::string& node_id() const { return node_id_; }
  const core::Topology& topology() const { return *topology_; }
  const core::Policy& policy() const { return *policy_; }
  core::Context core() const { return {*topology_, *policy_, hosted_root_}; }
  void set_hosted_root(std::string root) { hosted_root_ = std::move(root); }
  const core::Placement& placement() const { return placement_; }
  void set_placement(core::Placement p) { placement_ = std::move(p); }
  // True when this node runs the actor of jurisdiction `id`.
  bool Hosts(const std::string& id) const { return jurisdictions_.count(id) != 0; }
  void set_link_hub(LinkHub* hub) { hub_.store(hub); }
  LinkHub* link_hub() const { return hub_.load(); }
  storage::Store& store() { return *store_; }
  const storage::Store& store() const { return *store_; }
  CaseProbe& probe() { return probe_; }
  AssessmentBook& assessment() { return assessment_; }
  // Business time: every deadline and stamp of the node reads this clock.
  int64_t NowMs() const { return clock().NowMs(); }
  const core::Clock& clock() const { return clock_ ? *clock_ : core::DefaultClock(); }
  // Before any actor starts; null = the system clock.
  void set_clock(std::shared_ptr<core::Clock> clock) { clock_ = std::move(clock); }
  // The test clock when the node runs on one (--test-clock-start-ms), else null.
  core::ManualClock* manual_clock() const { return dynamic_cast<core::ManualClock*>(clock_.get()); }

  // The fingerprint (core::ReportFingerprint) of the report that created
  // `c`, rebuilt from the case: what a retry of it must repeat.
  static std::string ReportFingerprintOf(const v1::Case& c);

  // Loads the case sequence and the per-owner counts from the store.
  Status Load();
  std::string NewCaseId();

  // Actor handles; filled by Node::Start before any request arrives.
  std::unordered_map<std::string, caf::actor>& jurisdictions() { return jurisdictions_; }
  std::unordered_map<std::string, caf::actor>& departments() { return departments_; }
  caf::actor JurisdictionActor(const std::string& id) const;
  caf::actor DepartmentActor(const std::string& id) const;

  // Sends a request for an existing case to the actor of its current owner
  // (as the store knows it; the owner forwards if ownership moved since).
  void RouteToOwner(CaseRequest request);
  // Sends a request to jurisdiction `owner`, or answers it when unknown.
  void SendTo(const std::string& owner, CaseRequest request);

  // Called once a transition is durable: updates counts and metrics. `owned`:
  // this node still owns `after` (false when the transition handed it away).
  void RecordDurable(const v1::Case* before, const v1::Case& after, const v1::HistoryEntry& entry,
                     bool owned = true);

  // Federation. Adds one outbox entry per link towards a jurisdiction that
  // touched `c`, except `from` (the link it came in on); none in one process.
  void AddSyncs(storage::Batch& batch, const v1::Case& c, std::string_view from);
  // Applies a copy of a case received from link `from` (envelope `seq`, or 0
  // for a copy riding on a forwarded answer, which is not relayed): stores
  // it if newer, takes ownership when its owner is hosted here, relays it,
  // and records `seq`, all in one batch. `done` runs once that is durable.
  void ApplySync(const std::string& from, uint64_t seq, v1::CaseSync sync,
                 std::function<void(const Status&)> done);
  // Envelope `seq` from `peer` is about to be applied: false when it was
  // already (a resend; acknowledge it behind an empty batch, as ApplySync
  // does). Directive envelopes use it; they share the link's numbering.
  bool ClaimInbox(const std::string& peer, uint64_t seq);
  // The batch recording `seq` from `peer` is durable.
  void InboxDurable(const std::string& peer, uint64_t seq);
  // Last envelope seq from `peer` applied durably (for hello/welcome).
  uint64_t DurableInboxSeq(const std::string& peer);
  // Cases per state owned by exactly `owner`.
  std::array<int64_t, v1::CaseState_ARRAYSIZE> CountsOf(const std::string& owner) const;
  // The same for the read-only copies kept here of cases owned on other nodes.
  std::array<int64_t, v1::CaseState_ARRAYSIZE> CopyCountsOf(const std::string& owner) const;

  // Destroys the store (drains its commit queue); called after actors stop.
  void CloseStore() { store_.reset(); }

 private:
  void AddCount(const std::string& owner, v1::CaseState state, int64_t delta);
  void AddCopyCount(const std::string& owner, v1::CaseState state, int64_t delta);

  std::string node_id_;
  std::shared_ptr<const core::Topology> topology_;
  std::shared_ptr<const core::Policy> policy_;
  std::unique_ptr<storage::Store> store_;
  std::string hosted_root_;  // "" = the whole topology
  core::Placement placement_;
  std::atomic<LinkHub*> hub_{nullptr};
  // Copies being applied: case id -> history length queued, until durable;
  // inbox: peer -> last seq queued / durable.
  std::mutex sync_mu_;
  struct PendingCopy {
    int64_t length = 0;  // history length queued
    int batches = 0;     // not yet durable
    bool owned = false;  // the copy made this node the owner
    std::string owner_node;
    std::string owner_id;  // the copy queued (when not owned): its copy-index entry
    v1::CaseState state = v1::CASE_STATE_UNSPECIFIED;
  };
  std::unordered_map<std::string, PendingCopy> sync_pending_;
  std::unordered_map<std::string, uint64_t> inbox_queued_;
  std::unordered_map<std::string, uint64_t> inbox_durable_;
  CaseProbe probe_;
  AssessmentBook assessment_;
  std::shared_ptr<core::Clock> clock_;
  std::atomic<uint64_t> next_seq_{1};
  std::unordered_map<std::string, caf::actor> jurisdictions_;
  std::unordered_map<std::string, caf::actor> departments_;
  mutable std::mutex counts_mu_;
  std::unordered_map<std::string, std::array<int64_t, v1::CaseState_ARRAYSIZE>> counts_;
  std::unordered_map<std::string, std::array<int64_t, v1::CaseState_ARRAYSIZE>> copy_counts_;
};

// Spawns the actor of one jurisdiction: it owns the open cases of that
// jurisdiction, runs their state machine and persists every transition.
caf::actor SpawnJurisdiction(caf::actor_system& sys, NodeContext* ctx, std::string id);
// Spawns the desk of one department: receives summons, tracks report-ins and
// forwards the department's actions to the case owner.
caf::actor SpawnDepartment(caf::actor_system& sys, NodeContext* ctx, std::string id);
// The deadline timer and its wake-up hooks (store commits, a ManualClock).
struct TimerHandle {
  caf::actor actor;
  int clock_listener = 0;  // ManualClock listener handle, 0 = none
};
// Spawns the deadline timer: it sleeps until the earliest stored deadline has
// passed (at most `max_sleep_ms`), then sends an overdue command to each due
// case's owner. Hooks the store and a ManualClock to wake it earlier.
TimerHandle SpawnTimer(caf::actor_system& sys, NodeContext* ctx, int max_sleep_ms);
// Unhooks the timer and stops it; before the store closes.
void StopTimer(NodeContext* ctx, TimerHandle& timer);

// Node's state, shared by node.cc and node_query.cc.
struct Node::Impl {
  NodeOptions options;
  std::unique_ptr<NodeContext> ctx;
  std::unique_ptr<caf::actor_system_config> config;
  std::unique_ptr<caf::actor_system> system;
  TimerHandle timer;
  std::unique_ptr<Directives> directives;
  std::atomic<int64_t> inflight_writes{0};

  // Reports in flight, one per user + request id (Node::Report): a second
  // report with the same pair waits for the first (same content) or is
  // refused (other content), whatever owner either routes to. An entry
  // leaves once its case is durable, when the store answers for it.
  // Sharded by the pair's hash, so unrelated reports rarely wait on one lock.
  struct Reservation {
    std::string fingerprint;
    std::string case_id;
    std::vector<CaseCallback> waiters;
  };
  struct ReservationShard {
    std::mutex mu;
    std::unordered_map<std::string, Reservation> reserved;  // guarded by mu
  };
  std::array<ReservationShard, 16> reservations;
  ReservationShard& ShardOf(const std::string& key) {
    return reservations[std::hash<std::string>{}(key) % reservations.size()];
  }

  ~Impl() {
    if (system) {
      StopTimer(ctx.get(), timer);
      for (auto& [id, a] : ctx->jurisdictions())
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      for (auto& [id, a] : ctx->departments())
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
      if (directives) directives->Stop();
      system->await_all_actors_done();
    }
    directives.reset();  // its actor handles go before the actor system
    // Actors are gone; drain the commit queue so every queued caller is answered.
    if (ctx) ctx->CloseStore();
    system.reset();
  }
};

}  // namespace whistle::actors
