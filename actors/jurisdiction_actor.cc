// The jurisdiction actor. It owns the open cases of one jurisdiction: every
// command on such a case runs here, one at a time, so the state machine
// needs no locks. Transitions are applied in memory at once (pipelining) and
// answered when their batch is durable; the store's FIFO group commit keeps
// acknowledgements in order.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "actors/node_context.h"
#include "core/text.h"

namespace whistle::actors {

namespace {

constexpr int kMaxHops = 16;

struct JurisdictionState {
  NodeContext* ctx = nullptr;
  std::string id;
  std::unordered_map<std::string, v1::Case> cases;  // open, or touched with commits in flight
  struct Moved {
    std::string to;      // the owner it was handed to
    int64_t length = 0;  // its history length then
  };
  std::unordered_map<std::string, Moved> moved;   // handed over, until durable
  std::unordered_map<std::string, int> inflight;  // case id -> commits not yet durable
  // Reports that came without a reservation (sent to the actor directly, not
  // through Node::Report): user + request id -> case id, until durable.
  std::unordered_map<std::string, std::string> requests;
  static inline const char* name = "jurisdiction";
};

using Self = caf::stateful_actor<JurisdictionState>;

void Forward(Self* self, CaseRequest& req, const std::string& owner) {
  if (++req.hops > kMaxHops) {
    req.reply(Status::Unavailable("case " + req.case_id + " is changing owner; retry"));
    return;
  }
  self->state.ctx->SendTo(owner, std::move(req));
}

// The case in memory, or loaded from the store; nullptr when the request was
// forwarded to the real owner or answered with an error.
v1::Case* Lookup(Self* self, CaseRequest& req) {
  auto& st = self->state;
  if (auto it = st.cases.find(req.case_id); it != st.cases.end()) return &it->second;
  if (auto it = st.moved.find(req.case_id); it != st.moved.end()) {
    Forward(self, req, it->second.to);
    return nullptr;
  }
  auto loaded = st.ctx->store().GetCase(req.case_id);
  if (!loaded.ok()) {
    req.reply(loaded.status());
    return nullptr;
  }
  if (loaded->owner_id() != st.id) {
    Forward(self, req, loaded->owner_id());
    return nullptr;
  }
  st.ctx->probe().InMemoryDelta(1);
  return &st.cases.emplace(req.case_id, std::move(loaded).value()).first->second;
}

// Settled cases leave memory once nothing about them is in flight.
void MaybeEvict(Self* self, const std::string& case_id) {
  auto& st = self->state;
  if (st.inflight.count(case_id) != 0) return;
  auto it = st.cases.find(case_id);
  if (it == st.cases.end() || core::IsOpen(it->second.state())) return;
  st.cases.erase(it);
  st.ctx->probe().InMemoryDelta(-1);
}

// Federation bookkeeping on the new case: who touched it (their nodes keep
// a copy) and which node owns it. Nothing changes in one process.
void Annotate(NodeContext* ctx, const v1::Caller& caller, v1::Case& next) {
  if (!ctx->placement().federated()) return;
  std::string who = caller.role() == v1::ROLE_DEPARTMENT
                        ? core::JurisdictionOf(ctx->topology(), caller.department_id())
                        : caller.jurisdiction_id();
  if (!who.empty() && ctx->topology().Find(who) != nullptr &&
      std::find(next.touched_ids().begin(), next.touched_ids().end(), who) ==
          next.touched_ids().end()) {
    next.add_touched_ids(who);
  }
  if (ctx->Hosts(next.owner_id())) {
    next.set_owner_node_id(ctx->node_id());
  } else {
    next.clear_owner_node_id();  // the new owner's node announces itself on arrival
  }
}

// Carries out a transition: memory, effects, then one durable batch. A case
// whose new owner lives on another node leaves in the same batch (outbox).
// `report_fingerprint`: set for a new report, whose user + request id are
// recorded in the same batch as the case.
void Commit(Self* self, std::optional<v1::Case> before, core::Transition t,
            std::string report_fingerprint, const v1::Caller& caller, CaseReply reply,
            std::string request_key = "") {
  auto& st = self->state;
  NodeContext* ctx = st.ctx;
  Annotate(ctx, caller, t.next);
  const std::string case_id = t.next.id();
  const bool owned = ctx->Hosts(t.next.owner_id());
  storage::Batch batch;
  // Assessment rows in the same batch as the transition (docs/assessment.md).
  ctx->assessment().Record(ctx->store(), ctx->core(), before ? &*before : nullptr, t, batch,
                           ctx->placement().has_parent());
  batch.PutCase(before ? &*before : nullptr, t.next, owned);
  batch.PutHistory(t.entry);
  ctx->AddSyncs(batch, t.next, "");
  if (!report_fingerprint.empty()) {
    batch.RecordRequest(t.next.reporter(), t.next.request_id(), case_id, report_fingerprint);
  }
  if (!request_key.empty()) st.requests[request_key] = case_id;
  ++st.inflight[case_id];

  if (!owned) {
    if (st.cases.erase(case_id) != 0) ctx->probe().InMemoryDelta(-1);
    st.moved[case_id] = {t.next.owner_id(), t.next.history_length()};
  } else if (!t.effects.handover_to.empty()) {
    if (st.cases.erase(case_id) != 0) ctx->probe().InMemoryDelta(-1);
    st.moved[case_id] = {t.effects.handover_to, t.next.history_length()};
  } else {
    auto [it, inserted] = st.cases.insert_or_assign(case_id, t.next);
    if (inserted) ctx->probe().InMemoryDelta(1);
  }
  for (const auto& dept : t.effects.summon) {
    caf::actor desk = ctx->DepartmentActor(dept);
    if (desk) self->send(desk, summon_atom::value, SummonNotice{case_id, dept, 0});
  }

  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto queued = std::chrono::steady_clock::now();
  // The hand-over goes out after its batch is queued, so the new owner's
  // batches for this case always follow it in the store's FIFO.
  caf::actor next_owner;
  std::optional<Handover> handover;
  if (owned && !t.effects.handover_to.empty()) {
    next_owner = ctx->JurisdictionActor(t.effects.handover_to);
    handover = Handover{t.next};
  }
  ctx->store().Commit(std::move(batch), [ctx, me, queued, owned, before = std::move(before),
                                         next = std::move(t.next), entry = std::move(t.entry),
                                         request_key = std::move(request_key),
                                         reply = std::move(reply)](const Status& status) {
    if (!status.ok()) {
      // Memory is now ahead of the disk: stop, and let the restart recover from the WAL.
      std::fprintf(stderr,
                   "{\"level\":\"fatal\",\"msg\":\"commit failed, stopping\",\"error\":\"%s\"}\n",
                   status.ToString().c_str());
      reply(Status::Unavailable("storage failure: " + status.message()));
      std::abort();
    }
    ctx->probe().CommitLatency(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - queued).count());
    ctx->RecordDurable(before ? &*before : nullptr, next, entry, owned);
    caf::anon_send(me, committed_atom::value, Committed{next.id(), request_key});
    reply(next);
  });
  if (next_owner) self->send(next_owner, handover_atom::value, std::move(*handover));
}

// A report without a reservation retried: answered with the first report's
// case once that is durable, or refused when its content differs.
bool AnswerRetry(Self* self, const std::string& key, const std::string& fingerprint,
                 CaseReply& reply) {
  auto& st = self->state;
  std::string case_id;
  const std::string user = key.substr(0, key.find('\0'));
  const std::string request_id = key.substr(key.find('\0') + 1);
  if (auto it = st.requests.find(key); it != st.requests.end()) {
    case_id = it->second;
  } else {
    auto found = st.ctx->store().FindRequestRecord(user, request_id);
    if (!found.ok()) return false;
    if (!found->fingerprint.empty() && found->fingerprint != fingerprint) {
      reply(Status::AlreadyExists("report.request_id: " + core::Quote(request_id) + " of user " +
                                  core::Quote(user) + " was already used for case " +
                                  found->case_id + " with different content"));
      return true;
    }
    case_id = found->case_id;
  }
  NodeContext* ctx = st.ctx;
  // An empty batch completes after every earlier batch: the first report is durable then.
  ctx->store().Commit(storage::Batch{},
                      [ctx, case_id, reply = std::move(reply)](const Status& status) {
                        if (!status.ok()) return reply(status);
                        reply(ctx->store().GetCase(case_id));
                      });
  return true;
}

void OnReport(Self* self, CaseRequest& req) {
  auto& st = self->state;
  const auto* checked = std::get_if<core::CheckedReport>(&req.checked);
  if (checked == nullptr) {
    // Reports are checked where they enter the node; one that was not is a bug.
    return req.reply(Status::Internal("report reached jurisdiction " + st.id + " unchecked"));
  }
  // Retries were answered where the report entered the node (Node::Report,
  // one reservation per user + request id whatever the owner).
  std::string fingerprint = req.report_fingerprint.empty()
                                ? core::ReportFingerprint(checked->report())
                                : std::move(req.report_fingerprint);
  std::string request_key;
  if (req.case_id.empty()) {
    // No reservation (sent here directly, as actor tests do): this actor's own check.
    request_key = checked->caller().user() + '\0' + checked->report().request_id();
    if (AnswerRetry(self, request_key, fingerprint, req.reply)) return;
  }
  const std::string case_id = req.case_id.empty() ? st.ctx->NewCaseId() : req.case_id;
  auto t = core::Report(*checked, case_id, st.ctx->NowMs(), st.ctx->core());
  if (!t.ok()) return req.reply(t.status());
  if (t->next.owner_id() != st.id && st.ctx->Hosts(t->next.owner_id())) {
    // Routing happens before the actor is chosen; a mismatch is a bug, not user error.
    return req.reply(
        Status::Internal("report routed to " + st.id + " but owned by " + t->next.owner_id()));
  }
  // Owned on another node: created here (id from this node), then transferred.
  Commit(self, std::nullopt, std::move(t).value(), std::move(fingerprint), checked->caller(),
         std::move(req.reply), std::move(request_key));
}

void OnCommand(Self* self, CaseRequest& req) {
  auto& st = self->state;
  const auto* checked = std::get_if<core::CheckedCommand>(&req.checked);
  // Commands are checked where they enter the node; only the timer's overdue
  // (the system caller's own path) comes without.
  if (checked == nullptr && !(req.command.has_overdue() && core::IsSystemCaller(req.caller))) {
    return req.reply(Status::Internal("command for case " + req.case_id + " reached jurisdiction " +
                                      st.id + " unchecked"));
  }
  v1::Case* current = Lookup(self, req);
  if (current == nullptr) return;
  const int64_t now = st.ctx->NowMs();
  auto t = checked != nullptr
               ? core::Apply(*current, *checked, now, st.ctx->core())
               : core::ApplyOverdue(*current, req.command.overdue(), now, st.ctx->core());
  if (!t.ok()) {
    req.reply(t.status());
    MaybeEvict(self, req.case_id);
    return;
  }
  // One copy of the old state: the batch needs it now, the metrics once durable.
  Commit(self, *current, std::move(t).value(), "",
         checked != nullptr ? checked->caller() : req.caller, std::move(req.reply));
}

// A hand-over this actor has already moved past: the case left again (still
// in flight, or durable with a longer history or another owner).
bool Stale(const JurisdictionState& st, const v1::Case& handed) {
  if (auto it = st.moved.find(handed.id());
      it != st.moved.end() && handed.history_length() <= it->second.length) {
    return true;
  }
  auto stored = st.ctx->store().GetCase(handed.id());
  if (!stored.ok()) return false;  // its batch is not durable yet
  return stored->history_length() > handed.history_length() ||
         (stored->history_length() == handed.history_length() && stored->owner_id() != st.id);
}

// Spawned with its arguments rather than a capturing lambda: CAF 0.17 binds a
// null tuple reference when a function actor gets no arguments (UBSan flags it).
caf::behavior Jurisdiction(Self* self, NodeContext* ctx, std::string id) {
  self->state.ctx = ctx;
  self->state.id = std::move(id);
  return {
      [self](case_atom, CaseRequest& req) {
        if (std::holds_alternative<core::CheckedReport>(req.checked) || req.command.has_report()) {
          OnReport(self, req);
        } else {
          OnCommand(self, req);
        }
      },
      [self](handover_atom, Handover& h) {
        auto& st = self->state;
        auto& cases = st.cases;
        auto it = cases.find(h.value.id());
        if (it == cases.end()) {
          // A command may have loaded the case from the store before this
          // message arrived and moved it on: never bring that copy back.
          if (Stale(st, h.value)) return;
          cases.emplace(h.value.id(), std::move(h.value));
          self->state.ctx->probe().InMemoryDelta(1);
        } else if (it->second.history_length() < h.value.history_length()) {
          // Loaded from the store first (the hand-over was durable already),
          // never moved past by a transition here: only a newer copy replaces it.
          it->second = std::move(h.value);
        }
      },
      [self](committed_atom, const Committed& c) {
        auto& st = self->state;
        auto it = st.inflight.find(c.case_id);
        if (it != st.inflight.end() && --it->second <= 0) {
          st.inflight.erase(it);
          st.moved.erase(c.case_id);
        }
        if (!c.request_key.empty()) st.requests.erase(c.request_key);
        MaybeEvict(self, c.case_id);
      },
  };
}

}  // namespace

caf::actor SpawnJurisdiction(caf::actor_system& sys, NodeContext* ctx, std::string id) {
  return sys.spawn(Jurisdiction, ctx, std::move(id));
}

}  // namespace whistle::actors
