#include "actors/node.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "actors/node_context.h"
#include "core/text.h"

namespace whistle::actors {

// ---- NodeContext ----

NodeContext::NodeContext(std::string node_id, std::shared_ptr<const core::Topology> topology,
                         std::shared_ptr<const core::Policy> policy,
                         std::unique_ptr<storage::Store> store, prometheus::Registry* registry)
    : node_id_(std::move(node_id)),
      topology_(std::move(topology)),
      policy_(std::move(policy)),
      store_(std::move(store)),
      probe_(registry),
      assessment_(registry) {
  // Every bounded case-flow series exists from start-up (docs/metrics.md).
  std::vector<std::string> categories;
  for (const auto& c : policy_->config().categories()) categories.push_back(c.id());
  probe_.CreateSeries(categories);
}

Status NodeContext::Load() {
  auto last = store_->LastCaseSeq(node_id_);
  if (!last.ok()) return last.status();
  next_seq_ = *last + 1;
  auto counts = store_->Counts();
  if (!counts.ok()) return counts.status();
  for (const auto& [key, n] : *counts) {
    const auto& [owner, state] = key;
    if (state <= 0 || state >= v1::CaseState_ARRAYSIZE || n == 0) continue;
    AddCount(owner, static_cast<v1::CaseState>(state), n);
    const v1::Jurisdiction* j = topology_->Find(owner);
    if (j != nullptr && core::IsOpen(static_cast<v1::CaseState>(state))) {
      probe_.OpenDelta(j->level(), static_cast<v1::CaseState>(state), static_cast<double>(n));
    }
  }
  auto copies = store_->Counts(/*copies=*/true);
  if (!copies.ok()) return copies.status();
  for (const auto& [key, n] : *copies) {
    const auto& [owner, state] = key;
    if (state <= 0 || state >= v1::CaseState_ARRAYSIZE || n == 0) continue;
    AddCopyCount(owner, static_cast<v1::CaseState>(state), n);
  }
  return Status::Ok();
}

std::string NodeContext::NewCaseId() {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%012llu", static_cast<unsigned long long>(next_seq_++));
  return node_id_ + "-" + buf;
}

caf::actor NodeContext::JurisdictionActor(const std::string& id) const {
  auto it = jurisdictions_.find(id);
  return it == jurisdictions_.end() ? caf::actor{} : it->second;
}

caf::actor NodeContext::DepartmentActor(const std::string& id) const {
  auto it = departments_.find(id);
  return it == departments_.end() ? caf::actor{} : it->second;
}

void NodeContext::SendTo(const std::string& owner, CaseRequest request) {
  if (caf::actor target = JurisdictionActor(owner)) {
    caf::anon_send(target, case_atom::value, std::move(request));
    return;
  }
  LinkHub* hub = hub_.load();
  const std::string hop = placement_.NextHop(owner);
  if (hop.empty() || (hop == core::kParentPeer && !placement_.has_parent())) {
    // The caller's mistake, and a lasting one: retrying here cannot help
    // (FAILED_PRECONDITION, not UNAVAILABLE, which invites retries).
    request.reply(Status::FailedPrecondition(
        "case " + request.case_id + " is owned by " + owner +
        ", which this node does not host and has no link to; ask a node that hosts it"));
    return;
  }
  if (hub == nullptr) {  // links not set up yet (start-up): retry
    request.reply(Status::Unavailable("case " + request.case_id + " is owned by " + owner +
                                      " on another node and links are not up yet; retry"));
    return;
  }
  if (request.command.has_overdue()) {
    // Deadlines are the owner's: its own timer fires them.
    request.reply(Status::FailedPrecondition("case " + request.case_id + " is owned elsewhere"));
    return;
  }
  hub->Forward(hop, owner, std::move(request));
}

void NodeContext::RouteToOwner(CaseRequest request) {
  auto current = store_->GetCase(request.case_id);
  if (!current.ok()) return request.reply(current.status());
  SendTo(current->owner_id(), std::move(request));
}

void NodeContext::AddCount(const std::string& owner, v1::CaseState state, int64_t delta) {
  std::lock_guard lock(counts_mu_);
  counts_[owner][state] += delta;
}

void NodeContext::AddCopyCount(const std::string& owner, v1::CaseState state, int64_t delta) {
  std::lock_guard lock(counts_mu_);
  copy_counts_[owner][state] += delta;
}

std::array<int64_t, v1::CaseState_ARRAYSIZE> NodeContext::CopyCountsOf(
    const std::string& owner) const {
  std::lock_guard lock(counts_mu_);
  auto it = copy_counts_.find(owner);
  return it == copy_counts_.end() ? std::array<int64_t, v1::CaseState_ARRAYSIZE>{} : it->second;
}

std::array<int64_t, v1::CaseState_ARRAYSIZE> NodeContext::CountsOf(const std::string& owner) const {
  std::lock_guard lock(counts_mu_);
  auto it = counts_.find(owner);
  return it == counts_.end() ? std::array<int64_t, v1::CaseState_ARRAYSIZE>{} : it->second;
}

namespace {

v1::Level LevelOf(const core::Topology& topology, const std::string& id) {
  const v1::Jurisdiction* j = topology.Find(id);
  return j == nullptr ? v1::LEVEL_UNSPECIFIED : j->level();
}

bool Missed(int64_t before_by, int64_t after_by, int64_t now) {
  return before_by != 0 && before_by <= now && after_by != before_by;
}

}  // namespace

void NodeContext::RecordDurable(const v1::Case* before, const v1::Case& after,
                                const v1::HistoryEntry& entry, bool owned) {
  const v1::Level level_after = LevelOf(*topology_, after.owner_id());
  if (!owned) {
    // Handed to another node (or created here for one): it counts the case
    // from now on; this node keeps a read-only copy.
    AddCopyCount(after.owner_id(), after.state(), 1);
    if (before != nullptr) {
      AddCount(before->owner_id(), before->state(), -1);
      if (core::IsOpen(before->state())) {
        probe_.OpenDelta(LevelOf(*topology_, before->owner_id()), before->state(), -1);
      }
    }
  } else if (before == nullptr || before->owner_id() != after.owner_id() ||
             before->state() != after.state()) {
    if (before != nullptr) {
      AddCount(before->owner_id(), before->state(), -1);
      if (core::IsOpen(before->state())) {
        probe_.OpenDelta(LevelOf(*topology_, before->owner_id()), before->state(), -1);
      }
    }
    AddCount(after.owner_id(), after.state(), 1);
    if (core::IsOpen(after.state())) probe_.OpenDelta(level_after, after.state(), 1);
  }
  probe_.Transition(entry.kind(), level_after, after.category());
  if (entry.kind() != v1::TRANSITION_KIND_OVERDUE || before == nullptr) return;
  const v1::Level level_before = LevelOf(*topology_, before->owner_id());
  const int64_t at = entry.at_ms();
  const auto& b = before->deadlines();
  const auto& a = after.deadlines();
  if (Missed(b.accept_by_ms(), a.accept_by_ms(), at)) probe_.Overdue(level_before, "accept");
  if (Missed(b.dispatch_by_ms(), a.dispatch_by_ms(), at)) probe_.Overdue(level_before, "dispatch");
  if (Missed(b.resolve_by_ms(), a.resolve_by_ms(), at)) probe_.Overdue(level_before, "resolve");
  if (Missed(b.verify_by_ms(), a.verify_by_ms(), at)) probe_.Overdue(level_before, "verify");
  // By department: an escalation in the same transition may drop pending summons.
  for (const auto& s : after.summons()) {
    if (!s.no_show()) continue;
    bool was = false;
    for (const auto& o : before->summons()) {
      was = was || (o.department_id() == s.department_id() && o.no_show());
    }
    if (!was) {
      probe_.Overdue(level_before, "report_in");
      probe_.NoShow(level_before);
    }
  }
}

// ---- Node ----

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options,
                                            std::shared_ptr<const core::Topology> topology,
                                            std::shared_ptr<const core::Policy> policy,
                                            std::unique_ptr<storage::Store> store,
                                            prometheus::Registry* registry) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->ctx = std::make_unique<NodeContext>(options.node_id, std::move(topology), std::move(policy),
                                            std::move(store), registry);
  impl->ctx->set_clock(options.clock);
  if (Status s = impl->ctx->Load(); !s.ok()) return s;
  auto placement = core::Placement::Build(impl->ctx->topology(), options.hosted_jurisdiction,
                                          options.child_roots, options.has_parent);
  if (!placement.ok()) return placement.status();
  const std::string root = placement->hosted_root();
  // Without a parent link nothing can move above the hosted root.
  if (!options.hosted_jurisdiction.empty() && !options.has_parent) {
    impl->ctx->set_hosted_root(root);
  }
  impl->ctx->set_placement(std::move(placement).value());
  impl->config = std::make_unique<caf::actor_system_config>();
  // One worker per core: CAF's default floor is 4, too many for small pods.
  size_t threads = options.scheduler_threads > 0
                       ? options.scheduler_threads
                       : std::max<size_t>(2, std::thread::hardware_concurrency());
  impl->config->set("scheduler.max-threads", threads);
  // Work sharing: an idle worker blocks on a condition variable. CAF's default
  // (work stealing) polls with 50 us sleeps between messages, 13% of a node's
  // CPU in directive_bench; sharing cut node CPU per Sign 13-29% and the
  // 100,000-grid run from 22.2 to 15.0 s (bench/README.md).
  impl->config->set("scheduler.policy", caf::atom("sharing"));

  impl->config->set("logger.verbosity", caf::atom("quiet"));
  impl->system = std::make_unique<caf::actor_system>(*impl->config);
  NodeContext* ctx = impl->ctx.get();
  const core::Topology& tree = ctx->topology();
  // Actors only for the hosted subtree: other nodes run the rest.
  for (const v1::Jurisdiction* j : tree.Subtree(root)) {
    if (!ctx->placement().Hosts(j->id())) continue;
    ctx->jurisdictions()[j->id()] = SpawnJurisdiction(*impl->system, ctx, j->id());
    for (const v1::Department* d : tree.DepartmentsOf(j->id())) {
      ctx->departments()[d->id()] = SpawnDepartment(*impl->system, ctx, d->id());
    }
  }
  if (options.timer_interval_ms > 0) {
    impl->timer = SpawnTimer(*impl->system, ctx, options.timer_interval_ms);
  }
  auto directives = Directives::Start(*impl->system, ctx, registry, &impl->inflight_writes,
                                      options.max_inflight_writes);
  if (!directives.ok()) return directives.status();
  impl->directives = std::move(directives).value();
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

// Bounds the writes in flight: past the limit a caller learns at once that the
// node is busy instead of waiting in an ever longer queue.
bool Node::Admit(CaseCallback& done) {
  auto& inflight = impl_->inflight_writes;
  const int64_t limit = impl_->options.max_inflight_writes;
  if (inflight.fetch_add(1, std::memory_order_relaxed) >= limit && limit > 0) {
    inflight.fetch_sub(1, std::memory_order_relaxed);
    done(Status(Code::kResourceExhausted,
                "node busy: " + std::to_string(limit) + " writes in flight; retry with backoff"));
    return false;
  }
  done = [&inflight, inner = std::move(done)](StatusOr<v1::Case> result) {
    inflight.fetch_sub(1, std::memory_order_relaxed);
    inner(std::move(result));
  };
  return true;
}

int64_t Node::inflight_writes() const {
  return impl_->inflight_writes.load(std::memory_order_relaxed);
}

namespace {

Status RequestIdReused(const std::string& user, const std::string& request_id,
                       const std::string& case_id) {
  const std::string used = case_id.empty() ? "for another report" : "for case " + case_id;
  return Status::AlreadyExists("report.request_id: " + core::Quote(request_id) + " of user " +
                               core::Quote(user) + " was already used " + used +
                               " with different content; a new report needs a new request id");
}

// A retry of a report sent on earlier whose answer never came, while the
// node it went to cannot be asked.
Status ReportInDoubt(const std::string& request_id, const std::string& hop) {
  return Status::Unavailable("report.request_id: " + core::Quote(request_id) +
                             " was sent on to node link " + hop +
                             " and its answer was lost; retry once that link is back");
}

// True when copies of `c` travel to this node: its owner, its grid or a
// jurisdiction that touched it is hosted here or below (every copy goes up,
// and down towards each of those).
bool KeepsCopy(const NodeContext& ctx, const v1::Case& c) {
  auto here_or_below = [&ctx](const std::string& id) {
    return !id.empty() && ctx.topology().Find(id) != nullptr &&
           ctx.placement().NextHop(id) != core::kParentPeer;
  };
  if (here_or_below(c.owner_id()) || here_or_below(c.place().grid_id())) return true;
  for (const auto& t : c.touched_ids()) {
    if (here_or_below(t)) return true;
  }
  return false;
}

}  // namespace

std::string NodeContext::ReportFingerprintOf(const v1::Case& c) {
  v1::ReportCommand report;
  report.set_request_id(c.request_id());
  // A transfer may have corrected the category since: the reported one counts.
  report.set_category(c.original_category().empty() ? c.category() : c.original_category());
  report.set_severity(c.severity());
  *report.mutable_place() = c.place();
  report.set_text(c.text());
  *report.mutable_attachments() = c.attachments();
  return core::ReportFingerprint(report);
}

// Idempotency per (user, request id), whatever the owner: a report is created
// on the node hosting its owner, which keeps the record (case id and content
// fingerprint) in the batch that creates the case; a node that does not host
// the owner forwards the report there, hop by hop, and relays the answer.
// Only when the link towards the owner is down before anything is sent is
// the case created here and handed over later (reports are taken while a
// node is down); the owner's node then records the request on arrival. A
// forward whose outcome is unknown answers UNAVAILABLE: the retry is
// deduplicated where the owner is.
void Node::Report(core::CheckedReport report, CaseCallback done) {
  if (!Admit(done)) return;
  SubmitReport(std::move(report), 0, std::move(done));
}

void Node::SubmitReport(core::CheckedReport report, int hops, CaseCallback done) {
  NodeContext& ctx = *impl_->ctx;
  const std::string owner = report.owner();
  std::string hop;  // "" = the owner is hosted here
  if (!ctx.Hosts(owner)) {
    hop = ctx.placement().NextHop(owner);
    if (hop.empty() || (hop == core::kParentPeer && !ctx.placement().has_parent())) {
      // A lasting mistake (the grid is outside what this node reaches): not UNAVAILABLE.
      return done(Status::FailedPrecondition(
          "report routed to " + owner +
          ", which this node does not host and has no link to; report to a node that hosts it"));
    }
  }
  // No links yet (start-up) counts as a link that is down: taken here.
  const bool forward = !hop.empty() && ctx.link_hub() != nullptr;
  const std::string user = report.caller().user();
  const std::string request_id = report.report().request_id();
  std::string key = user + '\0' + request_id;
  std::string fingerprint = core::ReportFingerprint(report.report());
  std::string case_id;
  bool in_doubt = false;  // sent on before, outcome unknown (see below)
  Impl::ReservationShard& shard = impl_->ShardOf(key);
  {
    std::unique_lock lock(shard.mu);
    if (auto it = shard.reserved.find(key); it != shard.reserved.end()) {
      Impl::Reservation& first = it->second;
      if (first.fingerprint == fingerprint) {
        first.waiters.push_back(std::move(done));  // answered with the first
        return;
      }
      if (!first.case_id.empty()) {
        Status refused = RequestIdReused(user, request_id, first.case_id);
        lock.unlock();
        return done(std::move(refused));
      }
      // The first is on its way to another node: its case names the refusal.
      first.waiters.push_back(
          [user, request_id, done = std::move(done)](StatusOr<v1::Case> result) {
            if (!result.ok()) {
              return done(Status::Unavailable("report.request_id: " + core::Quote(request_id) +
                                              " was in use by another report that failed; retry"));
            }
            done(RequestIdReused(user, request_id, result->id()));
          });
      return;
    }
    // Under the lock: a reservation leaves only once its record is durable,
    // so a report not in the map is either recorded here or new here. The
    // record answers a retry, wherever the case is owned now.
    auto found = ctx.store().FindRequestRecord(user, request_id);
    if (found.ok() && found->case_id.empty()) {
      // An earlier attempt was sent on and never answered: only the node it
      // went to knows whether it made the case, so it is asked again there,
      // never taken here meanwhile (that could make a second case).
      if (found->fingerprint != fingerprint) {
        lock.unlock();
        return done(RequestIdReused(user, request_id, ""));
      }
      if (!forward && !hop.empty()) {  // no links yet (start-up)
        lock.unlock();
        return done(ReportInDoubt(request_id, hop));
      }
      in_doubt = forward;  // else hosted here now (another placement): taken here
    } else if (found.ok()) {
      // "" = recorded before fingerprints were kept: taken as the same report.
      if (!found->fingerprint.empty() && found->fingerprint != fingerprint) {
        lock.unlock();
        return done(RequestIdReused(user, request_id, found->case_id));
      }
      auto stored = ctx.store().GetCase(found->case_id);
      // Forwarded from here earlier, and no copy kept here: asked again where it is.
      if (stored.ok() || stored.status().code() != Code::kNotFound || !forward) {
        lock.unlock();
        return done(std::move(stored));
      }
    } else if (found.status().code() != Code::kNotFound) {
      lock.unlock();
      return done(found.status());
    }
    if (!forward) case_id = ctx.NewCaseId();
    shard.reserved[key] = Impl::Reservation{fingerprint, case_id, {}};
  }
  done = [&shard, key, inner = std::move(done)](StatusOr<v1::Case> result) {
    std::vector<CaseCallback> waiters;
    {
      std::lock_guard lock(shard.mu);
      auto it = shard.reserved.find(key);
      if (it != shard.reserved.end()) {
        waiters = std::move(it->second.waiters);
        shard.reserved.erase(it);
      }
    }
    for (auto& waiter : waiters) waiter(result);
    inner(std::move(result));
  };
  // Created here: owned here, or (link down) for an owner on another node,
  // to which it is handed over once the link is back.
  auto create = [&ctx](core::CheckedReport checked, std::string id, std::string digest,
                       CaseCallback reply) {
    const std::string& to = checked.owner();
    const std::string intake = ctx.Hosts(to) ? to : ctx.placement().hosted_root();
    CaseRequest req;
    req.checked = std::move(checked);
    req.case_id = std::move(id);
    req.report_fingerprint = std::move(digest);
    req.reply = std::move(reply);
    ctx.SendTo(intake, std::move(req));
  };
  if (!forward) {
    return create(std::move(report), std::move(case_id), std::move(fingerprint), std::move(done));
  }
  // The node hosting the owner dedupes and creates; this node keeps the
  // reservation meanwhile, and records the answer as its own.
  LinkCall call;
  *call.request.mutable_caller() = report.caller();
  *call.request.mutable_report() = report.report();
  call.request.set_owner_id(owner);
  call.request.set_hops(hops);
  struct Pending {
    core::CheckedReport report;
    std::string fingerprint;
    CaseCallback done;
  };
  auto pending = std::make_shared<Pending>(
      Pending{std::move(report), std::move(fingerprint), std::move(done)});
  // Down before anything was sent: taken here after all, handed over later;
  // unless an earlier attempt went on, whose case may exist there.
  call.unsent = [&ctx, &shard, key, pending, create, in_doubt, request_id, hop] {
    if (in_doubt) {
      CaseCallback reply = std::move(pending->done);
      return reply(ReportInDoubt(request_id, hop));
    }
    std::string id = ctx.NewCaseId();
    {
      std::lock_guard lock(shard.mu);
      if (auto it = shard.reserved.find(key); it != shard.reserved.end()) it->second.case_id = id;
    }
    create(std::move(pending->report), std::move(id), std::move(pending->fingerprint),
           std::move(pending->done));
  };
  call.reply = [&ctx, pending, hop, user, request_id](StatusOr<v1::ForwardAnswer> answer) {
    CaseCallback reply = std::move(pending->done);
    if (!answer.ok()) return reply(answer.status());  // sent: the outcome may be unknown
    if (!answer->has_case_() || answer->case_().id().empty()) {
      return reply(
          Status::Unavailable("node link " + hop + " answered a report without its case; retry"));
    }
    auto result = std::make_shared<v1::Case>(std::move(*answer->mutable_case_()));
    // The record here, so a retry here with other content is refused here too.
    auto record = [&ctx, result, user, request_id, fingerprint = pending->fingerprint,
                   reply = std::move(reply)](const Status&) mutable {
      storage::Batch batch;
      batch.RecordRequest(user, request_id, result->id(), fingerprint);
      ctx.store().Commit(std::move(batch), [result, reply = std::move(reply)](const Status&) {
        reply(std::move(*result));
      });
    };
    if (!answer->has_sync() || !KeepsCopy(ctx, answer->sync().case_())) {
      return record(Status::Ok());
    }
    // A copy would reach this node anyway: answer once it is current, so a
    // read here right after sees the case.
    ctx.ApplySync(hop, 0, std::move(*answer->mutable_sync()), std::move(record));
  };
  if (in_doubt) return ctx.link_hub()->Call(hop, std::move(call));
  // Durably "sent on, outcome unknown" before it goes: a retry after a lost
  // answer (or a restart here) then asks that node again instead of making
  // a second case here while the link is down.
  storage::Batch mark;
  mark.RecordRequest(user, request_id, "", pending->fingerprint);
  ctx.store().Commit(std::move(mark),
                     [&ctx, hop, pending, call = std::move(call)](const Status& s) mutable {
                       if (!s.ok()) {
                         CaseCallback reply = std::move(pending->done);
                         return reply(Status::Unavailable("report not sent on: " + s.message()));
                       }
                       ctx.link_hub()->Call(hop, std::move(call));
                     });
}

void Node::HandleReportCall(const v1::ForwardRequest& request,
                            std::function<void(StatusOr<v1::ForwardAnswer>)> done) {
  NodeContext* ctx = impl_->ctx.get();
  // Bytes from the network: the report and its caller are checked as the
  // service checks a client's (well formed; may report there; routed here).
  auto report = core::CheckReport(request.caller(), request.report(), ctx->core());
  if (!report.ok()) return done(report.status());
  if (Status s = ctx->store().AdmitWrite(); !s.ok()) return done(std::move(s));
  CaseCallback reply = [ctx, done = std::move(done)](StatusOr<v1::Case> result) {
    if (!result.ok()) return done(result.status());
    v1::ForwardAnswer answer;
    // The case as stored here (it is, once answered OK) rides along, so the
    // asking node is current before it answers.
    if (auto full = ctx->store().GetCaseWithHistory(result->id()); full.ok()) {
      auto* sync = answer.mutable_sync();
      *sync->mutable_case_() = std::move(full->first);
      for (auto& e : full->second) *sync->add_history() = std::move(e);
    }
    *answer.mutable_case_() = std::move(result).value();
    done(std::move(answer));
  };
  if (!Admit(reply)) return;
  SubmitReport(std::move(report).value(), request.hops() + 1, std::move(reply));
}

void Node::Act(const std::string& case_id, core::CheckedCommand command, CaseCallback done) {
  if (!Admit(done)) return;
  CaseRequest req;
  req.caller = command.caller();
  req.case_id = case_id;
  req.command = command.command();
  req.checked = std::move(command);
  req.reply = std::move(done);
  if (req.caller.role() == v1::ROLE_DEPARTMENT) {
    caf::actor desk = impl_->ctx->DepartmentActor(req.caller.department_id());
    if (desk) return caf::anon_send(desk, case_atom::value, std::move(req));
  }
  impl_->ctx->RouteToOwner(std::move(req));
}

StatusOr<v1::Case> Node::Get(const std::string& case_id) const {
  NodeContext& ctx = *impl_->ctx;
  auto found = ctx.store().GetCase(case_id);
  if (!found.ok() || !ctx.placement().federated()) return found;
  // A copy of a case owned on another node is read-only here.
  if (ctx.Hosts(found->owner_id())) {
    found->set_owner_node_id(ctx.node_id());
  } else {
    found->set_read_only(true);
  }
  return found;
}

StatusOr<std::vector<v1::HistoryEntry>> Node::History(const std::string& case_id,
                                                      std::vector<int64_t>* unreadable_seqs) const {
  return impl_->ctx->store().History(case_id, unreadable_seqs);
}

const core::Topology& Node::topology() const { return impl_->ctx->topology(); }
const core::Policy& Node::policy() const { return impl_->ctx->policy(); }
core::Context Node::context() const { return impl_->ctx->core(); }
const core::Clock& Node::clock() const { return impl_->ctx->clock(); }
storage::StoreStats Node::StoreStats() const { return impl_->ctx->store().Stats(); }
const std::string& Node::data_dir() const { return impl_->ctx->store().path(); }
storage::Store& Node::store() { return impl_->ctx->store(); }
Directives& Node::directives() { return *impl_->directives; }

}  // namespace whistle::actors
