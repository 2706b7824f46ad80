// The node's side of federation that needs no network: which links a case's
// copy travels to, applying copies that arrive (ownership transfers are
// copies whose owner is hosted here), and commands forwarded by peers. The
// links themselves (gRPC) live in link/.
#include <algorithm>
#include <cstdio>
#include <optional>

#include "actors/directives.h"
#include "actors/node.h"
#include "actors/node_context.h"
#include "core/directive.h"
#include "core/log.h"
#include "core/text.h"

namespace whistle::actors {

namespace {

constexpr size_t kMaxIdLength = 128;
constexpr int kMaxHops = 16;

// An id a peer may leave empty; when set, a well-formed one.
Status CheckOptionalId(std::string_view field, const std::string& id) {
  return id.empty() ? Status::Ok() : core::CheckId(field, id, kMaxIdLength);
}

// True when `m` serialises to bytes that parse again: a record that would not
// (a proto3 string that is not UTF-8) must never reach the store.
bool Storable(const google::protobuf::Message& m) {
  std::unique_ptr<google::protobuf::Message> back(m.New());
  return back->ParseFromString(m.SerializeAsString());
}

Status CheckCaller(std::string_view field, const v1::Caller& c) {
  if (Status s = CheckOptionalId(std::string(field) + ".user", c.user()); !s.ok()) return s;
  if (Status s = CheckOptionalId(std::string(field) + ".jurisdiction_id", c.jurisdiction_id());
      !s.ok()) {
    return s;
  }
  return CheckOptionalId(std::string(field) + ".department_id", c.department_id());
}

// The ids of a case copy: they become store keys and index entries.
Status CheckCaseIds(const v1::Case& c) {
  if (Status s = core::CheckId("case_sync.case.id", c.id(), kMaxIdLength); !s.ok()) return s;
  const std::pair<const char*, const std::string*> ids[] = {
      {"case_sync.case.reporter", &c.reporter()},
      {"case_sync.case.request_id", &c.request_id()},
      {"case_sync.case.routed_to_id", &c.routed_to_id()},
      {"case_sync.case.handler_department_id", &c.handler_department_id()},
      {"case_sync.case.owner_node_id", &c.owner_node_id()},
      {"case_sync.case.place.grid_id", &c.place().grid_id()},
      {"case_sync.case.category", &c.category()},
  };
  for (const auto& [field, value] : ids) {
    if (Status s = CheckOptionalId(field, *value); !s.ok()) return s;
  }
  for (const auto& id : c.touched_ids()) {
    if (Status s = CheckOptionalId("case_sync.case.touched_ids", id); !s.ok()) return s;
  }
  for (const auto& summons : c.summons()) {
    if (Status s = CheckOptionalId("case_sync.case.summons.department_id", summons.department_id());
        !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// A copy from the network is hostile until checked: every field we index by,
// and the whole record must be one the store can read back.
Status CheckSync(const v1::CaseSync& sync, const core::Topology& topology) {
  const v1::Case& c = sync.case_();
  if (Status s = CheckCaseIds(c); !s.ok()) return s;
  if (topology.Find(c.owner_id()) == nullptr) {
    return Status::InvalidArgument("case_sync.case.owner_id: unknown jurisdiction " +
                                   core::Quote(c.owner_id()));
  }
  if (c.state() == v1::CASE_STATE_UNSPECIFIED || !v1::CaseState_IsValid(c.state())) {
    return Status::InvalidArgument("case_sync.case.state: invalid");
  }
  if (c.history_length() != sync.history_size()) {
    return Status::InvalidArgument("case_sync.history: " + std::to_string(sync.history_size()) +
                                   " entries for history_length " +
                                   std::to_string(c.history_length()));
  }
  for (int i = 0; i < sync.history_size(); ++i) {
    const auto& e = sync.history(i);
    if (e.seq() != i + 1 || e.case_id() != c.id()) {
      return Status::InvalidArgument("case_sync.history[" + std::to_string(i) + "]: want seq " +
                                     std::to_string(i + 1) + " of " + c.id());
    }
    const std::string field = "case_sync.history[" + std::to_string(i) + "]";
    if (Status s = CheckCaller(field + ".actor", e.actor()); !s.ok()) return s;
    if (Status s = CheckOptionalId(field + ".jurisdiction_id", e.jurisdiction_id()); !s.ok()) {
      return s;
    }
    if (Status s = CheckOptionalId(field + ".from_jurisdiction_id", e.from_jurisdiction_id());
        !s.ok()) {
      return s;
    }
    for (const auto& d : e.department_ids()) {
      if (Status s = CheckOptionalId(field + ".department_ids", d); !s.ok()) return s;
    }
    if (!Storable(e)) {
      return Status::InvalidArgument(field + ": would not read back once stored");
    }
  }
  if (!Storable(c))
    return Status::InvalidArgument("case_sync.case: would not read back once stored");
  return Status::Ok();
}

void LogDropped(const std::string& from, const Status& why) {
  Log(LogLevel::kError, "case copy from a peer refused",
      {{"peer", from}, {"error", why.ToString()}});
}

}  // namespace

void NodeContext::AddSyncs(storage::Batch& batch, const v1::Case& c, std::string_view from) {
  if (!placement_.federated()) return;
  for (const auto& peer : placement_.SyncPeers(c, from)) {
    if (peer == core::kParentPeer && !placement_.has_parent()) continue;
    batch.Send(peer, c.id(), NowMs());
  }
}

uint64_t NodeContext::DurableInboxSeq(const std::string& peer) {
  std::lock_guard lock(sync_mu_);
  if (auto it = inbox_durable_.find(peer); it != inbox_durable_.end()) return it->second;
  auto stored = store_->InboxSeq(peer);
  uint64_t seq = stored.ok() ? *stored : 0;
  inbox_durable_[peer] = seq;
  return seq;
}

bool NodeContext::ClaimInbox(const std::string& peer, uint64_t seq) {
  std::lock_guard lock(sync_mu_);
  auto [it, fresh] = inbox_queued_.try_emplace(peer, 0);
  if (fresh) {
    auto stored = store_->InboxSeq(peer);
    it->second = stored.ok() ? *stored : 0;
  }
  if (seq <= it->second) return false;
  it->second = seq;
  return true;
}

void NodeContext::InboxDurable(const std::string& peer, uint64_t seq) {
  std::lock_guard lock(sync_mu_);
  inbox_durable_[peer] = std::max(inbox_durable_[peer], seq);
}

void NodeContext::ApplySync(const std::string& from, uint64_t seq, v1::CaseSync sync,
                            std::function<void(const Status&)> done) {
  const Status bad = CheckSync(sync, *topology_);
  const std::string id = sync.case_().id();
  storage::Batch batch;
  bool take = false;
  bool owned = false;
  int64_t have = 0;
  bool resend = false;
  std::optional<v1::Case> copy_before;  // the copy stored or queued here, left for `sync`
  {
    std::lock_guard lock(sync_mu_);
    if (seq != 0) {
      auto [it, fresh] = inbox_queued_.try_emplace(from, 0);
      if (fresh) {
        auto stored = store_->InboxSeq(from);
        it->second = stored.ok() ? *stored : 0;
      }
      resend = seq <= it->second;
      if (!resend) it->second = seq;
    }
  }
  if (resend) {
    // Applied already, but maybe not durable yet: acknowledge only behind
    // that batch (an empty batch completes after every earlier one).
    return store_->Commit(storage::Batch{}, std::move(done));
  }
  {
    std::lock_guard lock(sync_mu_);
    if (seq != 0) {
      batch.RecordInbox(from, seq);
    }
    if (!bad.ok()) {
      LogDropped(from, bad);
    } else {
      bool owned_here = false;
      std::string have_node;
      v1::Case before;
      if (auto p = sync_pending_.find(id); p != sync_pending_.end()) {
        have = p->second.length;
        owned_here = p->second.owned;
        have_node = p->second.owner_node;
        before.set_owner_id(p->second.owner_id);
        before.set_state(p->second.state);
      } else if (auto stored = store_->GetCase(id); stored.ok()) {
        have = stored->history_length();
        owned_here = Hosts(stored->owner_id());
        have_node = stored->owner_node_id();
        before = std::move(stored).value();
      }
      // The owner's copy is the truth; only the owner changes a case. A copy
      // as long as ours may still name the owner's node (announced after a
      // transfer).
      const auto& in = sync.case_();
      take = !owned_here && (in.history_length() > have ||
                             (in.history_length() == have && !in.owner_node_id().empty() &&
                              in.owner_node_id() != have_node));
      if (take) {
        owned = Hosts(in.owner_id());
        if (have > 0) copy_before = std::move(before);
        auto& p = sync_pending_[id];
        p.length = in.history_length();
        p.owned = owned;
        p.owner_node = owned ? node_id_ : in.owner_node_id();
        p.owner_id = in.owner_id();
        p.state = in.state();
        ++p.batches;
      }
    }
  }
  v1::Case copy;
  if (take) {
    copy = sync.case_();
    copy.clear_read_only();
    if (owned) copy.set_owner_node_id(node_id_);
    batch.PutCase(nullptr, copy, owned, copy_before ? &*copy_before : nullptr);
    for (const auto& e : sync.history()) {
      if (e.seq() > have) batch.PutHistory(e);
    }
    if (owned) {
      // Transferred in: every node with a copy learns which node owns it now.
      AddSyncs(batch, copy, "");
      // Created on another node (its link here was down): a retry of the
      // report sent here now answers with this case, not a new one.
      // A record of a report sent on from here whose answer was lost ("" case
      // id) is completed the same way.
      if (!copy.reporter().empty() && !copy.request_id().empty()) {
        auto record = store_->FindRequestRecord(copy.reporter(), copy.request_id());
        if (record.status().code() == Code::kNotFound || (record.ok() && record->case_id.empty())) {
          batch.RecordRequest(copy.reporter(), copy.request_id(), id, ReportFingerprintOf(copy));
        }
      }
    } else {
      // Onwards, away from where it came from; a copy riding on a forwarded
      // answer too, in case it overtook the envelope it duplicates.
      AddSyncs(batch, copy, from);
    }
  }
  // The hand-over goes out right after its batch is queued: the new owner's
  // batches for the case follow it in the store's FIFO, and commands this
  // link forwards later reach the actor after it (same sending thread).
  std::optional<Handover> handover;
  if (take && owned) handover = Handover{copy};
  store_->Commit(std::move(batch), [this, from, seq, take, owned, copy = std::move(copy),
                                    copy_before = std::move(copy_before),
                                    done = std::move(done)](const Status& s) {
    if (!s.ok()) {
      std::fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"commit failed, stopping\"}\n");
      std::abort();
    }
    {
      std::lock_guard lock(sync_mu_);
      if (seq != 0) inbox_durable_[from] = std::max(inbox_durable_[from], seq);
      if (take) {
        auto p = sync_pending_.find(copy.id());
        if (p != sync_pending_.end() && --p->second.batches == 0) sync_pending_.erase(p);
      }
    }
    if (take && copy_before) AddCopyCount(copy_before->owner_id(), copy_before->state(), -1);
    if (take && !owned) AddCopyCount(copy.owner_id(), copy.state(), 1);
    if (take && owned) {
      AddCount(copy.owner_id(), copy.state(), 1);
      if (core::IsOpen(copy.state())) {
        probe_.OpenDelta(topology_->Find(copy.owner_id())->level(), copy.state(), 1);
      }
    }
    done(s);
  });
  if (handover) {
    const std::string owner = handover->value.owner_id();
    caf::anon_send(JurisdictionActor(owner), handover_atom::value, std::move(*handover));
  }
}

// ---- Node ----

void Node::SetLinkHub(LinkHub* hub) { impl_->ctx->set_link_hub(hub); }
const core::Placement& Node::placement() const { return impl_->ctx->placement(); }

void Node::ApplySync(const std::string& from, uint64_t seq, v1::CaseSync sync,
                     std::function<void(const Status&)> done) {
  impl_->ctx->ApplySync(from, seq, std::move(sync), std::move(done));
}

uint64_t Node::DurableInboxSeq(const std::string& peer) {
  return impl_->ctx->DurableInboxSeq(peer);
}

void Node::HandleForward(const v1::ForwardRequest& request,
                         std::function<void(StatusOr<v1::Case>, const v1::CaseSync*)> done) {
  NodeContext* ctx = impl_->ctx.get();
  const core::Context checks = ctx->core();
  auto refuse = [&](Status s) { done(std::move(s), nullptr); };
  // Bytes from the network: checked as the services check a client's call.
  auto caller = core::CheckCaller(request.caller(), checks);
  if (!caller.ok()) return refuse(caller.status());
  if (Status s = core::CheckId("forward.case_id", request.case_id(), kMaxIdLength); !s.ok()) {
    return refuse(std::move(s));
  }
  if (request.command().has_report() || request.command().has_overdue()) {
    return refuse(
        Status::InvalidArgument("forward.command: reports and deadlines are not forwarded"));
  }
  auto command = core::CheckCommand(std::move(caller).value(), request.command(), checks);
  if (!command.ok()) return refuse(command.status());
  if (ctx->topology().Find(request.owner_id()) == nullptr) {
    return refuse(Status::InvalidArgument("forward.owner_id: unknown jurisdiction"));
  }
  if (request.hops() < 0 || request.hops() >= kMaxHops) {
    return refuse(Status::Unavailable("case " + request.case_id() + " is changing owner; retry"));
  }
  CaseRequest req;
  req.caller = request.caller();
  req.case_id = request.case_id();
  req.command = request.command();
  req.checked = std::move(command).value();
  req.hops = request.hops() + 1;
  req.reply = [ctx, id = request.case_id(), done = std::move(done)](StatusOr<v1::Case> result) {
    if (!result.ok()) {
      if (result.status().code() == Code::kNotFound) {
        // Its transfer is still on the way here.
        return done(Status::Unavailable("case " + id + " has not reached node " + ctx->node_id() +
                                        " yet; retry"),
                    nullptr);
      }
      return done(result.status(), nullptr);
    }
    auto full = ctx->store().GetCaseWithHistory(id);
    if (!full.ok()) return done(std::move(result), nullptr);
    v1::CaseSync sync;
    *sync.mutable_case_() = std::move(full->first);
    for (auto& e : full->second) *sync.add_history() = std::move(e);
    done(std::move(result), &sync);
  };
  ctx->SendTo(request.owner_id(), std::move(req));
}

namespace {

using AnswerReply = std::function<void(StatusOr<v1::ForwardAnswer>)>;

// A reply that puts a T into the ForwardAnswer field `field` for `done`.
template <class T>
std::function<void(StatusOr<T>)> Answering(AnswerReply done, T* (v1::ForwardAnswer::*field)()) {
  return [done = std::move(done), field](StatusOr<T> result) {
    if (!result.ok()) return done(result.status());
    v1::ForwardAnswer answer;
    *(answer.*field)() = std::move(result).value();
    done(std::move(answer));
  };
}

// The caller of a call from a peer node: well formed and not a department
// reading a subtree (bytes from the network, checked as the service checks).
StatusOr<core::CheckedCaller> CallerOf(const v1::ForwardRequest& request, const core::Context& c) {
  return core::CheckCaller(request.caller(), c);
}

void HandleReceipt(Directives& dirs, const core::Topology& topology, const v1::Caller& caller,
                   const v1::ForwardRequest& request, AnswerReply done) {
  const v1::ReceiptForward& r = request.receipt();
  if (Status s = core::CheckId("forward.receipt.directive_id", r.directive_id(), kMaxIdLength);
      !s.ok()) {
    return done(std::move(s));
  }
  if (Status s = core::CheckId("forward.receipt.unit_id", r.unit_id(), kMaxIdLength); !s.ok()) {
    return done(std::move(s));
  }
  if (topology.Find(r.unit_id()) == nullptr && topology.FindDepartment(r.unit_id()) == nullptr) {
    return done(Status::InvalidArgument("forward.receipt.unit_id: unknown unit " +
                                        core::Quote(r.unit_id())));
  }
  if (!core::ActsFor(caller, r.unit_id(), topology)) {
    return done(Status::PermissionDenied("unit_id: the caller does not act for unit " +
                                         core::Quote(r.unit_id())));
  }
  if (r.kind_case() == v1::ReceiptForward::KIND_NOT_SET) {
    return done(Status::InvalidArgument("forward.receipt: neither sign nor complete"));
  }
  dirs.ApplyReceipt(
      caller, r, request.hops() + 1,
      Answering<v1::ReceiptView>(std::move(done), &v1::ForwardAnswer::mutable_receipt));
}

void HandleTargets(Directives& dirs, const core::Topology& topology, const v1::Caller& caller,
                   const v1::ForwardRequest& request, AnswerReply done) {
  const v1::ListTargetsRequest& t = request.targets();
  if (Status s = core::CheckId("forward.targets.directive_id", t.directive_id(), kMaxIdLength);
      !s.ok()) {
    return done(std::move(s));
  }
  if (Status s =
          core::CheckId("forward.targets.jurisdiction_id", t.jurisdiction_id(), kMaxIdLength);
      !s.ok()) {
    return done(std::move(s));
  }
  if (topology.Find(t.jurisdiction_id()) == nullptr) {
    return done(Status::InvalidArgument("forward.targets.jurisdiction_id: unknown jurisdiction " +
                                        core::Quote(t.jurisdiction_id())));
  }
  if (caller.role() == v1::ROLE_DEPARTMENT ||
      !topology.IsWithin(t.jurisdiction_id(), caller.jurisdiction_id())) {
    return done(Status::PermissionDenied("jurisdiction " + core::Quote(t.jurisdiction_id()) +
                                         " is outside the caller's jurisdiction"));
  }
  if (!v1::ReceiptState_IsValid(t.state())) {
    return done(Status::InvalidArgument("forward.targets.state: unknown value"));
  }
  dirs.ListTargets(
      caller, t, request.hops() + 1,
      Answering<v1::ListTargetsResponse>(std::move(done), &v1::ForwardAnswer::mutable_targets));
}

void HandleInbox(Directives& dirs, const core::Topology& topology, const v1::Caller& caller,
                 const v1::ForwardRequest& request, AnswerReply done) {
  const v1::InboxRequest& in = request.inbox();
  if (Status s = core::CheckId("forward.inbox.unit_id", in.unit_id(), kMaxIdLength); !s.ok()) {
    return done(std::move(s));
  }
  const std::string j = core::UnitJurisdiction(in.unit_id(), topology);
  if (topology.Find(j) == nullptr) {
    return done(Status::InvalidArgument("forward.inbox.unit_id: unknown unit " +
                                        core::Quote(in.unit_id())));
  }
  // The unit itself, or a leader or staff member above it (as the service).
  const bool supervises = (caller.role() == v1::ROLE_LEADER || caller.role() == v1::ROLE_STAFF) &&
                          topology.IsWithin(j, caller.jurisdiction_id());
  if (!supervises && !core::ActsFor(caller, in.unit_id(), topology)) {
    return done(Status::PermissionDenied("unit_id: the caller may not read the inbox of " +
                                         core::Quote(in.unit_id())));
  }
  dirs.InboxOf(caller, in, request.hops() + 1,
               Answering<v1::InboxResponse>(std::move(done), &v1::ForwardAnswer::mutable_inbox));
}

void HandleList(Directives& dirs, const core::Topology& topology, const v1::Caller& caller,
                const v1::ForwardRequest& request, AnswerReply done) {
  const v1::ListDirectivesRequest& l = request.directives();
  if (Status s =
          core::CheckId("forward.directives.jurisdiction_id", l.jurisdiction_id(), kMaxIdLength);
      !s.ok()) {
    return done(std::move(s));
  }
  if (topology.Find(l.jurisdiction_id()) == nullptr) {
    return done(
        Status::InvalidArgument("forward.directives.jurisdiction_id: unknown jurisdiction " +
                                core::Quote(l.jurisdiction_id())));
  }
  if (caller.role() == v1::ROLE_DEPARTMENT ||
      !topology.IsWithin(l.jurisdiction_id(), caller.jurisdiction_id())) {
    return done(Status::PermissionDenied("jurisdiction " + core::Quote(l.jurisdiction_id()) +
                                         " is outside the caller's jurisdiction"));
  }
  dirs.ListOf(caller, l, request.hops() + 1,
              Answering<v1::ListDirectivesResponse>(std::move(done),
                                                    &v1::ForwardAnswer::mutable_directives));
}

void HandleProgress(Directives& dirs, const core::Topology& topology, const v1::Caller& caller,
                    const v1::ForwardRequest& request, AnswerReply done) {
  const v1::GetProgressRequest& p = request.progress();
  if (Status s = core::CheckId("forward.progress.directive_id", p.directive_id(), kMaxIdLength);
      !s.ok()) {
    return done(std::move(s));
  }
  if (Status s =
          core::CheckId("forward.progress.jurisdiction_id", p.jurisdiction_id(), kMaxIdLength);
      !s.ok()) {
    return done(std::move(s));
  }
  if (topology.Find(p.jurisdiction_id()) == nullptr) {
    return done(Status::InvalidArgument("forward.progress.jurisdiction_id: unknown jurisdiction " +
                                        core::Quote(p.jurisdiction_id())));
  }
  if (caller.role() == v1::ROLE_DEPARTMENT ||
      !topology.IsWithin(p.jurisdiction_id(), caller.jurisdiction_id())) {
    return done(Status::PermissionDenied("jurisdiction " + core::Quote(p.jurisdiction_id()) +
                                         " is outside the caller's jurisdiction"));
  }
  dirs.ProgressOf(
      caller, p, request.hops() + 1,
      Answering<v1::GetProgressResponse>(std::move(done), &v1::ForwardAnswer::mutable_progress));
}

void HandleIssue(Directives& dirs, const core::Context& c, int64_t now_ms,
                 const core::CheckedCaller& caller, const v1::ForwardRequest& request,
                 AnswerReply done) {
  const v1::IssueDirectiveRequest& issue = request.issue();
  if (!issue.request_id().empty()) {
    if (Status s = core::CheckId("forward.issue.request_id", issue.request_id(), kMaxIdLength);
        !s.ok()) {
      return done(std::move(s));
    }
  }
  // Checked again here, as the service checks a client's.
  auto draft = core::CheckIssue(caller, issue.draft(), c, now_ms);
  if (!draft.ok()) return done(draft.status());
  dirs.IssueOf(
      std::move(draft).value(), issue.request_id(), request.hops() + 1,
      Answering<v1::IssueDirectiveResponse>(std::move(done), &v1::ForwardAnswer::mutable_issued));
}

}  // namespace

void Node::HandleCall(const v1::ForwardRequest& request,
                      std::function<void(StatusOr<v1::ForwardAnswer>)> done) {
  NodeContext* ctx = impl_->ctx.get();
  auto caller = CallerOf(request, ctx->core());
  if (!caller.ok()) return done(caller.status());
  if (request.hops() < 0 || request.hops() >= kMaxHops) {
    return done(Status::Unavailable("not reachable over the node links; retry"));
  }
  if (request.has_report()) return HandleReportCall(request, std::move(done));
  if (request.has_receipt()) {
    return HandleReceipt(directives(), ctx->topology(), caller->get(), request, std::move(done));
  }
  if (request.has_inbox()) {
    return HandleInbox(directives(), ctx->topology(), caller->get(), request, std::move(done));
  }
  if (request.has_directives()) {
    return HandleList(directives(), ctx->topology(), caller->get(), request, std::move(done));
  }
  if (request.has_progress()) {
    return HandleProgress(directives(), ctx->topology(), caller->get(), request, std::move(done));
  }
  if (request.has_issue()) {
    return HandleIssue(directives(), ctx->core(), ctx->NowMs(), *caller, request, std::move(done));
  }
  HandleTargets(directives(), ctx->topology(), caller->get(), request, std::move(done));
}

}  // namespace whistle::actors
