// The directive actors. A directive always goes to the same shard, which
// applies its changes one at a time: sign and complete read the receipt as
// the shard last wrote it (in memory until durable), so two answers for one
// unit never both count. Changes are applied in memory at once (pipelining)
// and answered when their batch is durable; the store's FIFO group commit
// keeps them in order, as for cases.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "actors/directive_context.h"
#include "core/log.h"
#include "core/text.h"
#include "storage/directive_store.h"

namespace whistle::actors {

namespace directive_internal {

enum class OpKind { kIssue, kRetry, kResume, kAmend, kCancel, kSign, kComplete };

// One change for a shard, with its reply.
struct DirectiveOp {
  OpKind kind = OpKind::kIssue;
  std::string id;
  std::string unit;
  v1::Caller caller;
  std::optional<core::CheckedDraft> draft;  // kIssue
  std::string request_key;                  // kIssue, kRetry: user \0 request id ("" = none)
  storage::PendingExpansion resume;         // kResume
  v1::AmendDirective amend;
  v1::CancelDirective cancel;
  v1::SignReceipt sign;
  v1::CompleteReceipt complete;
  Reply<v1::IssueDirectiveResponse> on_issue;
  Reply<v1::Directive> on_directive;
  Reply<v1::ReceiptView> on_receipt;
};

// A receipt's batch is durable: the shard may forget its in-memory copy.
struct ReceiptDurable {
  std::string key;  // directive \0 unit
};

}  // namespace directive_internal

}  // namespace whistle::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::directive_internal::DirectiveOp)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::directive_internal::ReceiptDurable)

namespace whistle::actors {

namespace {

using directive_internal::DirectiveOp;
using directive_internal::OpKind;
using directive_internal::ReceiptDurable;
using directive_op_atom = caf::atom_constant<caf::atom("dirop")>;
using receipt_durable_atom = caf::atom_constant<caf::atom("rcptdur")>;

constexpr size_t kShards = 4;
// Receipts per batch while expanding: 1,903 grids are one batch; 100,000
// units are ~50 batches, each atomic with the cursor (about 0.5 MB).
constexpr size_t kExpandChunk = 2048;

struct ShardState {
  Directives::Impl* dir = nullptr;
  std::unordered_map<std::string, v1::Directive> directives;  // as last applied here
  std::unordered_map<std::string, v1::Receipt> receipts;      // changed, not yet durable
  std::unordered_map<std::string, int> inflight;              // receipt key -> batches queued
  static inline const char* name = "directive";
};

using Self = caf::stateful_actor<ShardState>;

[[noreturn]] void CommitFailed(const Status& status) {
  // Memory is now ahead of the disk: stop, and let the restart recover from the WAL.
  std::fprintf(stderr,
               "{\"level\":\"fatal\",\"msg\":\"directive commit failed, stopping\","
               "\"error\":\"%s\"}\n",
               status.ToString().c_str());
  std::abort();
}

// The directive as last applied here, loaded on first use; nullptr when unknown.
const v1::Directive* Find(Self* self, const std::string& id, Status* why) {
  auto& st = self->state;
  if (auto it = st.directives.find(id); it != st.directives.end()) return &it->second;
  auto loaded = storage::GetDirective(st.dir->ctx->store(), id);
  if (!loaded.ok()) {
    *why = loaded.status().code() == Code::kNotFound
               ? Status::NotFound("directive_id: unknown directive " + core::Quote(id))
               : loaded.status();
    return nullptr;
  }
  return &st.directives.emplace(id, std::move(loaded).value()).first->second;
}

// The target units of `d` that this node hosts, sorted.
std::vector<std::string> HostedUnits(const NodeContext& ctx, const v1::Directive& d) {
  const auto& placement = ctx.placement();
  std::vector<std::string> units =
      core::ExpandTargets(d.draft().targets(), ctx.topology(), placement.hosted_root());
  units.erase(std::remove_if(units.begin(), units.end(),
                             [&](const std::string& u) {
                               return !placement.Hosts(core::UnitJurisdiction(u, ctx.topology()));
                             }),
              units.end());
  return units;
}

// Writes receipts and counts for units[from..] in chunks; each chunk is one
// batch with the cursor, so a crash resumes after the last durable chunk and
// counts every unit exactly once. `batch` may already hold the directive.
// `done` runs once the last chunk is durable.
void Expand(Self* self, const v1::Directive& d, const std::vector<std::string>& units, size_t from,
            v1::DirectiveExpansion cursor, storage::Batch batch,
            std::function<void(int64_t units)> done) {
  Directives::Impl* dir = self->state.dir;
  NodeContext* ctx = dir->ctx;
  std::unordered_set<std::string> indexed;
  size_t i = from;
  do {
    const size_t end = std::min(units.size(), i + kExpandChunk);
    std::unordered_map<std::string, int64_t> totals;
    std::unordered_map<int, int64_t> per_level;
    for (; i < end; ++i) {
      v1::Receipt r = core::NewReceipt(d.id(), units[i], ctx->topology());
      storage::PutReceipt(batch, nullptr, r);
      for (const auto& j : dir->CountedAt(r)) ++totals[j];
      ++per_level[dir->UnitLevel(units[i])];
    }
    for (const auto& [j, n] : totals) {
      v1::ProgressCounts delta;
      delta.set_total(n);
      storage::AddProgress(batch, d.id(), j, delta);
      if (indexed.insert(j).second) storage::IndexDirective(batch, j, d.id());
    }
    if (end > from) cursor.set_after_unit(units[end - 1]);
    cursor.set_units(static_cast<int64_t>(end));
    cursor.set_complete(end == units.size());
    storage::PutExpansion(batch, d.id(), cursor);
    const bool last = cursor.complete();
    ctx->store().Commit(
        std::move(batch), [dir, per_level = std::move(per_level), last,
                           total = static_cast<int64_t>(units.size()), done](const Status& status) {
          if (!status.ok()) CommitFailed(status);
          for (const auto& [level, n] : per_level) {
            dir->probe->ReceiptsIssued(static_cast<v1::Level>(level), static_cast<double>(n));
          }
          if (last && done) done(total);
        });
    batch = storage::Batch();
  } while (i < units.size());
}

void OnIssue(Self* self, DirectiveOp& op) {
  auto& st = self->state;
  Directives::Impl* dir = st.dir;
  NodeContext* ctx = dir->ctx;
  const auto started = std::chrono::steady_clock::now();
  v1::Directive d = core::NewDirective(*op.draft, op.id, ctx->NowMs());
  st.directives[d.id()] = d;
  storage::Batch batch;
  storage::PutDirective(batch, d);
  const std::string request_key = op.request_key;
  if (!request_key.empty()) {
    const size_t sep = request_key.find('\0');
    storage::RecordIssueRequest(batch, request_key.substr(0, sep), request_key.substr(sep + 1),
                                d.id());
  }
  // Listed where it was issued too, even when no target is hosted here.
  for (const auto& j : dir->HostedPath(d.issuer_jurisdiction_id())) {
    storage::IndexDirective(batch, j, d.id());
  }
  const v1::Level level = ctx->topology().Find(d.issuer_jurisdiction_id()) != nullptr
                              ? ctx->topology().Find(d.issuer_jurisdiction_id())->level()
                              : v1::LEVEL_UNSPECIFIED;
  Expand(self, d, HostedUnits(*ctx, d), 0, {}, std::move(batch),
         [dir, d, level, started, request_key, reply = std::move(op.on_issue)](int64_t units) {
           if (!request_key.empty()) {
             std::lock_guard lock(dir->requests_mu);
             dir->requests.erase(request_key);
           }
           dir->probe->OpenDelta(level, 1);
           dir->probe->ExpansionLatency(
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
           v1::IssueDirectiveResponse out;
           *out.mutable_directive() = d;
           out.set_targets(units);
           reply(std::move(out));
         });
}

// The first Issue's answer, read from the store.
StatusOr<v1::IssueDirectiveResponse> Issued(const storage::Store& store, const std::string& id) {
  auto d = storage::GetDirective(store, id);
  if (!d.ok()) return d.status();
  auto cursor = storage::GetExpansion(store, id);
  if (!cursor.ok()) return cursor.status();
  v1::IssueDirectiveResponse out;
  *out.mutable_directive() = std::move(d).value();
  out.set_targets(cursor->units());
  return out;
}

// A retried Issue: an empty batch completes after every batch queued before
// it, the first Issue's (or its resumed expansion's) included: this shard
// queued all of them when it handled that Issue or resume.
void OnRetry(Self* self, DirectiveOp& op) {
  NodeContext* ctx = self->state.dir->ctx;
  ctx->store().Commit(storage::Batch(),
                      [ctx, id = op.id, reply = std::move(op.on_issue)](const Status& s) {
                        if (!s.ok()) return reply(s);
                        reply(Issued(ctx->store(), id));
                      });
}

// An expansion a crash cut short: the same units, after the cursor.
void OnResume(Self* self, DirectiveOp& op) {
  NodeContext* ctx = self->state.dir->ctx;
  const v1::Directive& d = op.resume.directive;
  self->state.directives.try_emplace(d.id(), d);
  std::vector<std::string> units = HostedUnits(*ctx, d);
  const std::string& after = op.resume.cursor.after_unit();
  size_t from = 0;
  if (op.resume.cursor.units() > 0) {
    from = static_cast<size_t>(std::upper_bound(units.begin(), units.end(), after) - units.begin());
  }
  Expand(self, d, units, from, op.resume.cursor, storage::Batch(), nullptr);
}

void OnChange(Self* self, DirectiveOp& op) {
  auto& st = self->state;
  Directives::Impl* dir = st.dir;
  NodeContext* ctx = dir->ctx;
  Status why;
  const v1::Directive* current = Find(self, op.id, &why);
  if (current == nullptr) return op.on_directive(why);
  const int64_t now = ctx->NowMs();
  auto next = op.kind == OpKind::kAmend
                  ? core::ApplyAmend(*current, op.caller, op.amend, ctx->topology(), now)
                  : core::ApplyCancel(*current, op.caller, op.cancel, ctx->topology(), now);
  if (!next.ok()) return op.on_directive(next.status());
  st.directives[op.id] = *next;
  storage::Batch batch;
  storage::PutDirective(batch, *next);
  const bool cancelled = op.kind == OpKind::kCancel;
  const bool mine = next->id().rfind(dir->IdPrefix(), 0) == 0;
  const v1::Jurisdiction* issuer = ctx->topology().Find(next->issuer_jurisdiction_id());
  const v1::Level level = issuer != nullptr ? issuer->level() : v1::LEVEL_UNSPECIFIED;
  ctx->store().Commit(std::move(batch), [dir, cancelled, mine, level, d = *next,
                                         reply = std::move(op.on_directive)](const Status& s) {
    if (!s.ok()) CommitFailed(s);
    if (cancelled && mine) dir->probe->OpenDelta(level, -1);
    reply(d);
  });
}

void OnReceipt(Self* self, DirectiveOp& op) {
  auto& st = self->state;
  Directives::Impl* dir = st.dir;
  NodeContext* ctx = dir->ctx;
  Status why;
  const v1::Directive* d = Find(self, op.id, &why);
  if (d == nullptr) return op.on_receipt(why);
  const std::string key = op.id + '\0' + op.unit;
  v1::Receipt current;
  if (auto it = st.receipts.find(key); it != st.receipts.end()) {
    current = it->second;
  } else {
    auto loaded = storage::GetReceipt(ctx->store(), op.id, op.unit);
    if (!loaded.ok()) {
      return op.on_receipt(loaded.status().code() == Code::kNotFound
                               ? Status::NotFound("unit_id: " + core::Quote(op.unit) +
                                                  " is not a target of directive " + op.id)
                               : loaded.status());
    }
    current = std::move(loaded).value();
  }
  const int64_t now = ctx->NowMs();
  auto t = op.kind == OpKind::kSign
               ? core::ApplySign(*d, current, op.caller, op.sign, ctx->topology(), now)
               : core::ApplyComplete(*d, current, op.caller, op.complete, ctx->topology(), now);
  if (!t.ok()) return op.on_receipt(t.status());
  storage::Batch batch;
  storage::PutReceipt(batch, &current, t->next);
  for (const auto& j : dir->CountedAt(t->next)) {
    storage::AddProgress(batch, op.id, j, t->delta);
  }
  st.receipts[key] = t->next;
  ++st.inflight[key];
  caf::actor me = caf::actor_cast<caf::actor>(self);
  v1::ReceiptView view;
  *view.mutable_directive() = *d;
  *view.mutable_receipt() = t->next;
  const v1::Level level = dir->UnitLevel(op.unit);
  ctx->store().Commit(std::move(batch),
                      [dir, me, key, level, delta = t->delta, view = std::move(view),
                       reply = std::move(op.on_receipt)](const Status& s) {
                        if (!s.ok()) CommitFailed(s);
                        if (delta.signed_() > 0)
                          dir->probe->Signed(level, view.receipt().signed_late());
                        if (delta.done() > 0) dir->probe->Done(level, view.receipt().done_late());
                        caf::anon_send(me, receipt_durable_atom::value, ReceiptDurable{key});
                        reply(view);
                      });
}

// Spawned with its arguments (CAF 0.17: see jurisdiction_actor.cc).
caf::behavior Shard(Self* self, Directives::Impl* dir) {
  self->state.dir = dir;
  return {
      [self](directive_op_atom, DirectiveOp& op) {
        switch (op.kind) {
          case OpKind::kIssue:
            return OnIssue(self, op);
          case OpKind::kRetry:
            return OnRetry(self, op);
          case OpKind::kResume:
            return OnResume(self, op);
          case OpKind::kAmend:
          case OpKind::kCancel:
            return OnChange(self, op);
          case OpKind::kSign:
          case OpKind::kComplete:
            return OnReceipt(self, op);
        }
      },
      [self](receipt_durable_atom, const ReceiptDurable& r) {
        auto& st = self->state;
        auto it = st.inflight.find(r.key);
        if (it != st.inflight.end() && --it->second <= 0) {
          st.inflight.erase(it);
          st.receipts.erase(r.key);
        }
      },
  };
}

}  // namespace

std::vector<std::string> Directives::Impl::HostedPath(const std::string& jurisdiction) const {
  std::vector<std::string> out;
  const core::Topology& topology = ctx->topology();
  if (topology.Find(jurisdiction) == nullptr) return out;
  if (ctx->placement().Hosts(jurisdiction)) out.push_back(jurisdiction);
  for (const v1::Jurisdiction* up : topology.Path(jurisdiction)) {
    if (ctx->placement().Hosts(up->id())) out.push_back(up->id());
  }
  return out;
}

std::vector<std::string> Directives::Impl::CountedAt(const v1::Receipt& r) const {
  std::vector<std::string> out;
  if (r.unit_id() != r.jurisdiction_id()) out.push_back(r.unit_id());  // a department
  for (auto& j : HostedPath(r.jurisdiction_id())) out.push_back(std::move(j));
  return out;
}

v1::Level Directives::Impl::UnitLevel(const std::string& unit) const {
  const v1::Jurisdiction* j = ctx->topology().Find(unit);
  return j == nullptr ? v1::LEVEL_UNSPECIFIED : j->level();
}

Directives::Directives(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Directives::~Directives() = default;

StatusOr<std::unique_ptr<Directives>> Directives::Start(caf::actor_system& system, NodeContext* ctx,
                                                        prometheus::Registry* registry,
                                                        std::atomic<int64_t>* inflight,
                                                        int64_t max_inflight) {
  auto impl = std::make_unique<Impl>();
  impl->ctx = ctx;
  impl->inflight = inflight;
  impl->max_inflight = max_inflight;
  impl->probe = std::make_unique<DirectiveProbe>(registry);
  auto last = storage::LastDirectiveSeq(ctx->store(), impl->IdPrefix());
  if (!last.ok()) return last.status();
  impl->next_seq = *last + 1;
  Impl* raw = impl.get();
  Status counted = storage::ForEachDirective(ctx->store(), [raw](const v1::Directive& d) {
    if (d.state() == v1::DIRECTIVE_STATE_ACTIVE && d.id().rfind(raw->IdPrefix(), 0) == 0) {
      const v1::Jurisdiction* j = raw->ctx->topology().Find(d.issuer_jurisdiction_id());
      if (j != nullptr) raw->probe->OpenDelta(j->level(), 1);
    }
    return true;
  });
  if (!counted.ok()) return counted;
  auto pending = storage::IncompleteExpansions(ctx->store());
  if (!pending.ok()) return pending.status();
  for (size_t i = 0; i < kShards; ++i) impl->shards.push_back(system.spawn(Shard, raw));
  for (auto& p : *pending) {
    Log(LogLevel::kInfo, "resuming a directive's expansion cut short",
        {{"directive", p.directive.id()},
         {"after_unit", p.cursor.after_unit()},
         {"units_written", std::to_string(p.cursor.units())}});
    DirectiveOp op;
    op.kind = OpKind::kResume;
    op.id = p.directive.id();
    op.resume = std::move(p);
    caf::anon_send(impl->ShardOf(op.id), directive_op_atom::value, std::move(op));
  }
  return std::unique_ptr<Directives>(new Directives(std::move(impl)));
}

void Directives::Stop() {
  for (auto& shard : impl_->shards) caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
}

void Directives::Issue(core::CheckedDraft draft, const std::string& request_id,
                       Reply<v1::IssueDirectiveResponse> done) {
  if (!impl_->Admit(done)) return;
  DirectiveOp op;
  op.kind = OpKind::kIssue;
  auto number = [this] {
    char digits[16];
    std::snprintf(digits, sizeof(digits), "%012llu",
                  static_cast<unsigned long long>(impl_->next_seq.fetch_add(1)));
    return impl_->IdPrefix() + digits;
  };
  if (request_id.empty()) {
    op.id = number();
  } else {
    const std::string& user = draft.issuer().user();
    op.request_key = user + '\0' + request_id;
    // One lock over lookup and numbering: two concurrent retries cannot both issue.
    std::lock_guard lock(impl_->requests_mu);
    if (auto it = impl_->requests.find(op.request_key); it != impl_->requests.end()) {
      op.kind = OpKind::kRetry;
      op.id = it->second;
    } else {
      auto found = storage::FindIssueRequest(impl_->ctx->store(), user, request_id);
      if (found.ok()) {
        // Through the shard: after a restart it may still be resuming the
        // expansion, and the answer waits for that like the first one did.
        op.kind = OpKind::kRetry;
        op.id = *found;
      } else if (found.status().code() != Code::kNotFound) {
        return done(found.status());
      } else {
        op.id = number();
        impl_->requests[op.request_key] = op.id;
      }
    }
  }
  if (op.kind == OpKind::kIssue) op.draft = std::move(draft);
  op.on_issue = std::move(done);
  caf::anon_send(impl_->ShardOf(op.id), directive_op_atom::value, std::move(op));
}

void Directives::Amend(const std::string& id, const v1::Caller& caller, v1::AmendDirective amend,
                       Reply<v1::Directive> done) {
  if (!impl_->Admit(done)) return;
  DirectiveOp op;
  op.kind = OpKind::kAmend;
  op.id = id;
  op.caller = caller;
  op.amend = std::move(amend);
  op.on_directive = std::move(done);
  caf::anon_send(impl_->ShardOf(id), directive_op_atom::value, std::move(op));
}

void Directives::Cancel(const std::string& id, const v1::Caller& caller, v1::CancelDirective cancel,
                        Reply<v1::Directive> done) {
  if (!impl_->Admit(done)) return;
  DirectiveOp op;
  op.kind = OpKind::kCancel;
  op.id = id;
  op.caller = caller;
  op.cancel = std::move(cancel);
  op.on_directive = std::move(done);
  caf::anon_send(impl_->ShardOf(id), directive_op_atom::value, std::move(op));
}

void Directives::Sign(const std::string& id, const std::string& unit, const v1::Caller& caller,
                      v1::SignReceipt sign, Reply<v1::ReceiptView> done) {
  if (!impl_->Admit(done)) return;
  DirectiveOp op;
  op.kind = OpKind::kSign;
  op.id = id;
  op.unit = unit;
  op.caller = caller;
  op.sign = std::move(sign);
  op.on_receipt = std::move(done);
  caf::anon_send(impl_->ShardOf(id), directive_op_atom::value, std::move(op));
}

void Directives::Complete(const std::string& id, const std::string& unit, const v1::Caller& caller,
                          v1::CompleteReceipt complete, Reply<v1::ReceiptView> done) {
  if (!impl_->Admit(done)) return;
  DirectiveOp op;
  op.kind = OpKind::kComplete;
  op.id = id;
  op.unit = unit;
  op.caller = caller;
  op.complete = std::move(complete);
  op.on_receipt = std::move(done);
  caf::anon_send(impl_->ShardOf(id), directive_op_atom::value, std::move(op));
}

}  // namespace whistle::actors
