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
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "actors/directive_context.h"
#include "actors/link_hub.h"
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

// A batch of receipts is durable: the shard may forget their in-memory copies.
struct ReceiptDurable {
  std::vector<std::string> keys;  // directive \0 unit, one per receipt written
};

// A newer version of a directive came down the parent link (queued to the store).
struct DirectiveUpdate {
  v1::Directive directive;
};

}  // namespace directive_internal

}  // namespace whistle::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::directive_internal::DirectiveOp)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::directive_internal::ReceiptDurable)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::directive_internal::DirectiveUpdate)

namespace whistle::actors {

namespace {

using directive_internal::DirectiveOp;
using directive_internal::DirectiveUpdate;
using directive_internal::OpKind;
using directive_internal::ReceiptDurable;
using directive_op_atom = caf::atom_constant<caf::atom("dirop")>;
using receipt_durable_atom = caf::atom_constant<caf::atom("rcptdur")>;
using directive_update_atom = caf::atom_constant<caf::atom("dirupd")>;
using receipt_flush_atom = caf::atom_constant<caf::atom("rcptflush")>;

constexpr size_t kShards = 4;
// Receipts per batch while expanding (1,903 grids are one batch; 100,000
// units are ~50 batches, each atomic with the cursor, about 0.5 MB), and at
// most per batch of signs and completions.
constexpr size_t kExpandChunk = 2048;
// Coalescing window of count updates to the parent: the first change waits
// this long, then one message per directive carries every change since.
constexpr auto kCountsFlush = std::chrono::milliseconds(25);
constexpr size_t kMaxIdLength = 128;
constexpr int kMaxLinkHops = 16;  // a unit is at most a few links away
constexpr const char* kDirectiveRef = "d:";
constexpr const char* kCountsRef = "c:";

// A receipt applied in memory, answered when its batch is durable.
struct PendingReceipt {
  v1::ReceiptView view;
  v1::Level level = v1::LEVEL_UNSPECIFIED;
  v1::ProgressCounts delta;
  Reply<v1::ReceiptView> reply;
};

// The receipts a shard has applied since its last flush.
struct ReceiptBatch {
  storage::Batch batch;
  // Directive -> jurisdiction row -> summed delta (keys copied once per batch).
  std::map<std::string, std::map<std::string, v1::ProgressCounts>> deltas;
  std::vector<PendingReceipt> pending;
  std::vector<std::string> keys;
  bool flush_queued = false;
};

void Add(v1::ProgressCounts& sum, const v1::ProgressCounts& d) {
  sum.set_total(sum.total() + d.total());
  sum.set_signed_(sum.signed_() + d.signed_());
  sum.set_done(sum.done() + d.done());
  sum.set_signed_late(sum.signed_late() + d.signed_late());
  sum.set_done_late(sum.done_late() + d.done_late());
}

struct ShardState {
  Directives::Impl* dir = nullptr;
  ReceiptBatch open;  // receipts applied, not yet handed to the store
  std::unordered_map<std::string, v1::Directive> directives;  // as last applied here
  // Receipts changed and not yet durable, by key, with how many of the
  // shard's batches still carry them (one lookup per receipt applied).
  struct Unwritten {
    v1::Receipt receipt;
    int batches = 0;
  };
  std::unordered_map<std::string, Unwritten> receipts;
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
void Expand(Directives::Impl* dir, const v1::Directive& d, const std::vector<std::string>& units,
            size_t from, v1::DirectiveExpansion cursor, storage::Batch batch,
            std::function<void(int64_t units)> done) {
  NodeContext* ctx = dir->ctx;
  std::unordered_set<std::string> indexed;
  size_t i = from;
  do {
    const size_t end = std::min(units.size(), i + kExpandChunk);
    const bool counts = end > i;
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
    if (counts) dir->CountsChanged(batch, d.id());
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
    if (counts) dir->Unsent(d.id());
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
                                d.id(), core::DraftFingerprint(op.draft->get()));
  }
  // Listed where it was issued too, even when no target is hosted here.
  for (const auto& j : dir->ctx->placement().HostedPath(d.issuer_jurisdiction_id())) {
    storage::IndexDirective(batch, j, d.id());
  }
  // One message per child node with targets, in the same batch: each child
  // expands to its own units and relays further down.
  for (const auto& peer : dir->ChildPeers(d))
    batch.Send(peer, kDirectiveRef + d.id(), ctx->NowMs());
  dir->SendUp(batch, d.id());
  const int64_t all_units = op.draft->unit_count();
  const v1::Level level = ctx->topology().Find(d.issuer_jurisdiction_id()) != nullptr
                              ? ctx->topology().Find(d.issuer_jurisdiction_id())->level()
                              : v1::LEVEL_UNSPECIFIED;
  Expand(dir, d, HostedUnits(*ctx, d), 0, {}, std::move(batch),
         [dir, d, level, started, request_key, all_units,
          reply = std::move(op.on_issue)](int64_t local_units) {
           // Every target in the subtree; child nodes expand theirs on arrival.
           const int64_t units =
               dir->ctx->placement().child_roots().empty() ? local_units : all_units;
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
StatusOr<v1::IssueDirectiveResponse> Issued(const NodeContext& ctx, const std::string& id) {
  const storage::Store& store = ctx.store();
  auto d = storage::GetDirective(store, id);
  if (!d.ok()) return d.status();
  auto cursor = storage::GetExpansion(store, id);
  if (!cursor.ok()) return cursor.status();
  v1::IssueDirectiveResponse out;
  *out.mutable_directive() = std::move(d).value();
  out.set_targets(cursor->units());
  if (!ctx.placement().child_roots().empty()) {
    // As the first answer: every target in the subtree, child nodes' included.
    out.set_targets(static_cast<int64_t>(
        core::ExpandTargets(out.directive().draft().targets(), ctx.topology()).size()));
  }
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
                        reply(Issued(*ctx, id));
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
  Expand(self->state.dir, d, units, from, op.resume.cursor, storage::Batch(), nullptr);
}

std::string IssuedElsewhere(const std::string& id, const std::string& here) {
  const std::string node = id.substr(0, id.find("-d-"));
  return "directive_id: " + core::Quote(id) + " was issued on node " + core::Quote(node) +
         ", not on this node (" + here + "); amend and cancel it there";
}

void OnChange(Self* self, DirectiveOp& op) {
  auto& st = self->state;
  Directives::Impl* dir = st.dir;
  NodeContext* ctx = dir->ctx;
  Status why;
  const v1::Directive* current = Find(self, op.id, &why);
  if (!dir->Mine(op.id)) {
    // Held here from above, or kept from below: the caller who may change it
    // is sent to the issuing node; anyone else is refused as it would be there.
    StatusOr<v1::Directive> copy = current != nullptr ? StatusOr<v1::Directive>(*current)
                                   : why.code() == Code::kNotFound
                                       ? storage::GetDirectiveFromBelow(ctx->store(), op.id)
                                       : StatusOr<v1::Directive>(why);
    if (!copy.ok()) return op.on_directive(current == nullptr ? why : copy.status());
    Status may = core::CheckCanChange(*copy, op.caller, ctx->topology());
    if (may.code() == Code::kPermissionDenied) return op.on_directive(may);
    return op.on_directive(Status::FailedPrecondition(IssuedElsewhere(op.id, ctx->node_id())));
  }
  if (current == nullptr) return op.on_directive(why);
  const int64_t now = ctx->NowMs();
  auto next = op.kind == OpKind::kAmend
                  ? core::ApplyAmend(*current, op.caller, op.amend, ctx->topology(), now)
                  : core::ApplyCancel(*current, op.caller, op.cancel, ctx->topology(), now);
  if (!next.ok()) return op.on_directive(next.status());
  st.directives[op.id] = *next;
  storage::Batch batch;
  storage::PutDirective(batch, *next);
  // The new version travels down like the first: the children keep the highest.
  for (const auto& peer : dir->ChildPeers(*next)) batch.Send(peer, kDirectiveRef + op.id, now);
  dir->SendUp(batch, op.id);
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

void FlushReceipts(Self* self);

void OnReceipt(Self* self, DirectiveOp& op) {
  auto& st = self->state;
  Directives::Impl* dir = st.dir;
  NodeContext* ctx = dir->ctx;
  Status why;
  const v1::Directive* d = Find(self, op.id, &why);
  if (d == nullptr) return op.on_receipt(why);
  std::string key = op.id + '\0' + op.unit;
  v1::Receipt current;
  if (auto it = st.receipts.find(key); it != st.receipts.end()) {
    current = it->second.receipt;
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
  // Into the shard's open batch: the receipts that arrive together are written
  // together, with their counts summed per row (one merge per row and batch).
  ReceiptBatch& open = st.open;
  storage::PutReceipt(open.batch, &current, t->next);
  auto& rows = open.deltas[op.id];
  for (auto& j : dir->CountedAt(t->next)) Add(rows[std::move(j)], t->delta);
  auto& unwritten = st.receipts[key];
  unwritten.receipt = t->next;
  ++unwritten.batches;
  PendingReceipt pending;
  *pending.view.mutable_directive() = *d;
  *pending.view.mutable_receipt() = t->next;
  pending.level = dir->UnitLevel(op.unit);
  pending.delta = t->delta;
  pending.reply = std::move(op.on_receipt);
  open.pending.push_back(std::move(pending));
  open.keys.push_back(std::move(key));
  if (open.pending.size() >= kExpandChunk) return FlushReceipts(self);  // bounded batches
  if (!open.flush_queued) {
    // Behind every receipt already in the mailbox: they join this batch.
    open.flush_queued = true;
    caf::anon_send(caf::actor_cast<caf::actor>(self), receipt_flush_atom::value);
  }
}

// Commits the open batch of receipts; each is answered once it is durable.
void FlushReceipts(Self* self) {
  auto& st = self->state;
  ReceiptBatch open = std::move(st.open);
  st.open = ReceiptBatch{};
  if (open.pending.empty()) return;
  Directives::Impl* dir = st.dir;
  for (const auto& [id, rows] : open.deltas) {
    for (const auto& [j, delta] : rows) storage::AddProgress(open.batch, id, j, delta);
    dir->CountsChanged(open.batch, id);
  }
  caf::actor me = caf::actor_cast<caf::actor>(self);
  dir->ctx->store().Commit(
      std::move(open.batch), [dir, me, keys = std::move(open.keys),
                              pending = std::move(open.pending)](const Status& s) mutable {
        if (!s.ok()) CommitFailed(s);
        for (auto& p : pending) {
          if (p.delta.signed_() > 0) dir->probe->Signed(p.level, p.view.receipt().signed_late());
          if (p.delta.done() > 0) dir->probe->Done(p.level, p.view.receipt().done_late());
          p.reply(std::move(p.view));
        }
        caf::anon_send(me, receipt_durable_atom::value, ReceiptDurable{std::move(keys)});
      });
  for (const auto& [id, rows] : open.deltas) dir->Unsent(id);
}

// Spawned with its arguments (CAF 0.17: see jurisdiction_actor.cc).
caf::behavior Shard(Self* self, Directives::Impl* dir) {
  self->state.dir = dir;
  return {
      [self](directive_op_atom, DirectiveOp& op) {
        // Other changes commit after the receipts applied before them.
        if (op.kind != OpKind::kSign && op.kind != OpKind::kComplete) FlushReceipts(self);
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
      [self](directive_update_atom, DirectiveUpdate& u) {
        auto& slot = self->state.directives[u.directive.id()];
        if (slot.version() < u.directive.version()) slot = std::move(u.directive);
      },
      [self](receipt_flush_atom) { FlushReceipts(self); },
      [self](receipt_durable_atom, const ReceiptDurable& r) {
        auto& st = self->state;
        for (const auto& key : r.keys) {
          auto it = st.receipts.find(key);
          if (it != st.receipts.end() && --it->second.batches <= 0) st.receipts.erase(it);
        }
      },
  };
}

}  // namespace

std::vector<std::string> Directives::Impl::CountedAt(const v1::Receipt& r) const {
  std::vector<std::string> out;
  if (r.unit_id() != r.jurisdiction_id()) out.push_back(r.unit_id());  // a department
  for (auto& j : ctx->placement().HostedPath(r.jurisdiction_id())) out.push_back(std::move(j));
  return out;
}

v1::Level Directives::Impl::UnitLevel(const std::string& unit) const {
  const v1::Jurisdiction* j = ctx->topology().Find(unit);
  return j == nullptr ? v1::LEVEL_UNSPECIFIED : j->level();
}

// ---- Federation ----

namespace {

// True when some target unit of `targets` lies inside `root`'s subtree;
// walks one subtree at most (no full expansion per child link).
bool AnyTargetWithin(const v1::Targets& targets, const core::Topology& topology,
                     const std::string& root) {
  if (targets.has_level()) {
    const std::string& s = targets.level().subtree_id();
    const v1::Level level = targets.level().level();
    const std::string* walk = nullptr;
    if (topology.IsWithin(root, s)) {
      walk = &root;
    } else if (topology.IsWithin(s, root)) {
      walk = &s;
    }
    if (walk == nullptr) return false;
    for (const auto* j : topology.Subtree(*walk)) {
      if (j->level() == level) return true;
    }
    return false;
  }
  const auto* listed = targets.has_jurisdictions() ? &targets.jurisdictions().ids()
                       : targets.has_departments() ? &targets.departments().ids()
                                                   : nullptr;
  if (listed == nullptr) return false;
  for (const auto& id : *listed) {
    if (topology.IsWithin(core::UnitJurisdiction(id, topology), root)) return true;
  }
  return false;
}

// A directive from the network is hostile until checked: what we key and expand by.
Status CheckDirectiveSync(const v1::Directive& d, const core::Topology& topology) {
  if (d.id().empty() || d.id().size() > kMaxIdLength || d.id().find("-d-") == std::string::npos) {
    return Status::InvalidArgument("directive_sync.directive.id: want <node>-d-<n>, 1..128 bytes");
  }
  if (d.version() < 1)
    return Status::InvalidArgument("directive_sync.directive.version: want >= 1");
  if (topology.Find(d.issuer_jurisdiction_id()) == nullptr) {
    return Status::InvalidArgument("directive_sync.directive.issuer_jurisdiction_id: unknown");
  }
  const auto& t = d.draft().targets();
  if (t.has_level() && topology.Find(t.level().subtree_id()) == nullptr) {
    return Status::InvalidArgument(
        "directive_sync.directive.draft.targets.level.subtree_id: unknown");
  }
  if (!t.has_level() && !t.has_jurisdictions() && !t.has_departments()) {
    return Status::InvalidArgument("directive_sync.directive.draft.targets: empty");
  }
  return Status::Ok();
}

// A directive a child node sends up was issued in its subtree and addresses
// only units there.
Status CheckFromBelow(const std::string& from, const v1::Directive& d,
                      const core::Topology& topology) {
  if (!topology.IsWithin(d.issuer_jurisdiction_id(), from)) {
    return Status::InvalidArgument("directive_sync.directive.issuer_jurisdiction_id: \"" +
                                   d.issuer_jurisdiction_id().substr(0, kMaxIdLength) +
                                   "\" is not in the subtree of the link's child root \"" + from +
                                   "\"");
  }
  const auto& t = d.draft().targets();
  bool inside = !t.has_level() || topology.IsWithin(t.level().subtree_id(), from);
  for (const auto& id : t.jurisdictions().ids()) {
    inside = inside && topology.IsWithin(core::UnitJurisdiction(id, topology), from);
  }
  for (const auto& id : t.departments().ids()) {
    inside = inside && topology.IsWithin(core::UnitJurisdiction(id, topology), from);
  }
  if (!inside) {
    return Status::InvalidArgument(
        "directive_sync.directive.draft.targets: a target lies outside the subtree of the "
        "link's child root \"" +
        from + "\"");
  }
  return Status::Ok();
}

Status CheckCountsSync(const std::string& from, const v1::CountsSync& c,
                       const core::Topology& topology) {
  if (from == core::kParentPeer) {
    return Status::InvalidArgument("counts_sync: only child nodes send counts up");
  }
  if (c.root() != from) {
    return Status::InvalidArgument("counts_sync.root: \"" + c.root().substr(0, kMaxIdLength) +
                                   "\" is not the link's child root \"" + from + "\"");
  }
  if (c.directive_id().empty() || c.directive_id().size() > kMaxIdLength) {
    return Status::InvalidArgument("counts_sync.directive_id: want 1..128 bytes");
  }
  const auto& n = c.counts();
  if (n.total() < 0 || n.signed_() < 0 || n.done() < 0 || n.signed_late() < 0 ||
      n.done_late() < 0 || n.signed_() > n.total() || n.done() > n.signed_()) {
    return Status::InvalidArgument("counts_sync.counts: want 0 <= done <= signed <= total");
  }
  for (const auto& [part, counts] : c.parts()) {
    const v1::Jurisdiction* j = topology.Find(part);
    const v1::Department* dept = topology.FindDepartment(part);
    const bool below = (j != nullptr && topology.Path(part).size() > 0 &&
                        topology.Path(part).back()->id() == from) ||
                       (dept != nullptr && dept->jurisdiction_id() == from);
    if (!below || counts.total() < 0 || counts.signed_() < 0 || counts.done() < 0) {
      return Status::InvalidArgument("counts_sync.parts: \"" + part.substr(0, kMaxIdLength) +
                                     "\" is not a child jurisdiction or department of " + from);
    }
  }
  return Status::Ok();
}

v1::ProgressCounts Minus(const v1::ProgressCounts& a, const v1::ProgressCounts& b) {
  v1::ProgressCounts d;
  d.set_total(a.total() - b.total());
  d.set_signed_(a.signed_() - b.signed_());
  d.set_done(a.done() - b.done());
  d.set_signed_late(a.signed_late() - b.signed_late());
  d.set_done_late(a.done_late() - b.done_late());
  return d;
}

void LogRefused(const std::string& from, const Status& why) {
  Log(LogLevel::kError, "directive update from a peer refused",
      {{"peer", from}, {"error", why.ToString()}});
}

}  // namespace

std::vector<std::string> Directives::Impl::ChildPeers(const v1::Directive& d) const {
  std::vector<std::string> out;
  for (const auto& child : ctx->placement().child_roots()) {
    if (AnyTargetWithin(d.draft().targets(), ctx->topology(), child)) out.push_back(child);
  }
  return out;
}

void Directives::Impl::CountsChanged(storage::Batch& batch, const std::string& id) {
  storage::BumpChangeSeq(batch, id, ctx->placement().hosted_root());
  if (SendsUp(id)) storage::MarkCountsDirty(batch, id);
}

void Directives::Impl::Unsent(const std::string& id) {
  if (!SendsUp(id)) return;
  {
    std::lock_guard lock(unsent_mu);
    // Under the lock: a flush in between must not leave a stale time behind.
    if (unsent.empty()) probe->CountsUnsentSince(static_cast<double>(ctx->NowMs()) / 1e3);
    unsent.insert(id);
  }
  unsent_cv.notify_all();
}

void Directives::Impl::FlushLoop() {
  const std::string parent(core::kParentPeer);
  std::unique_lock lock(unsent_mu);
  for (;;) {
    unsent_cv.wait(lock, [&] { return stopping || !unsent.empty(); });
    if (stopping) return;
    // Coalesce: everything that changes in the window rides on one message.
    unsent_cv.wait_for(lock, kCountsFlush, [&] { return stopping; });
    if (stopping) return;  // the durable marks send them after the restart
    std::unordered_set<std::string> ids;
    ids.swap(unsent);
    lock.unlock();
    // Queued after every batch that marked them: when the entry is sent,
    // the counts it reads include those changes.
    storage::Batch batch;
    const int64_t now = ctx->NowMs();
    for (const auto& id : ids) {
      batch.Send(parent, kCountsRef + id, now);
      storage::ClearCountsDirty(batch, id);
    }
    ctx->store().Commit(std::move(batch), [](const Status& s) {
      if (!s.ok()) CommitFailed(s);
    });
    probe->CountUpdatesSent(static_cast<double>(ids.size()));
    lock.lock();
    if (unsent.empty()) probe->CountsUnsentSince(0);
  }
}

void Directives::Impl::SendUp(storage::Batch& batch, const std::string& id) const {
  if (!ctx->placement().has_parent()) return;
  batch.Send(std::string(core::kParentPeer), kDirectiveRef + id, ctx->NowMs());
}

void Directives::Impl::ApplyDirective(const std::string& from, v1::Directive d,
                                      storage::Batch batch,
                                      std::function<void(const Status&)> finish) {
  const bool from_below = from != core::kParentPeer;
  Status bad = CheckDirectiveSync(d, ctx->topology());
  if (bad.ok() && from_below) bad = CheckFromBelow(from, d, ctx->topology());
  if (bad.ok() && Mine(d.id())) {
    bad = Status::InvalidArgument("directive_sync: directive " + d.id() + " is this node's own");
  }
  if (!bad.ok()) {
    LogRefused(from, bad);
    return ctx->store().Commit(std::move(batch), std::move(finish));  // the mark only
  }
  int64_t have = 0;
  {
    std::lock_guard lock(link_mu);
    auto& seen = from_below ? below_versions : versions;
    auto it = seen.find(d.id());
    if (from_below &&
        (versions.count(d.id()) > 0 || storage::GetDirective(ctx->store(), d.id()).ok())) {
      bad = Status::InvalidArgument("directive_sync: directive " + d.id() +
                                    " came down from the parent; a child cannot send it up");
    } else if (it != seen.end()) {
      have = it->second;
    } else if (auto stored = from_below ? storage::GetDirectiveFromBelow(ctx->store(), d.id())
                                        : storage::GetDirective(ctx->store(), d.id());
               stored.ok()) {
      have = stored->version();
    }
    if (bad.ok() && d.version() > have) seen[d.id()] = d.version();
  }
  if (!bad.ok()) {
    LogRefused(from, bad);
    return ctx->store().Commit(std::move(batch), std::move(finish));
  }
  if (d.version() <= have) return ctx->store().Commit(std::move(batch), std::move(finish));
  if (from_below) {
    // Kept for the watch and passed on up; every target lies below `from`.
    storage::PutDirectiveFromBelow(batch, d);
    SendUp(batch, d.id());
    return ctx->store().Commit(std::move(batch), std::move(finish));
  }
  const int64_t now = ctx->NowMs();
  probe->FanoutLatency(
      static_cast<double>(now - (have == 0 ? d.issued_at_unix_ms() : d.updated_at_unix_ms())) /
      1e3);
  storage::PutDirective(batch, d);
  storage::IndexDirective(batch, ctx->placement().hosted_root(), d.id());
  for (const auto& peer : ChildPeers(d)) batch.Send(peer, kDirectiveRef + d.id(), now);
  caf::actor shard = ShardOf(d.id());
  if (have == 0) {
    // First arrival: receipts and counts for the units hosted here, in
    // chunks with the cursor (a crash resumes after the last durable one).
    Expand(this, d, HostedUnits(*ctx, d), 0, {}, std::move(batch),
           [finish = std::move(finish)](int64_t) { finish(Status::Ok()); });
  } else {
    ctx->store().Commit(std::move(batch), std::move(finish));
  }
  caf::anon_send(shard, directive_update_atom::value, DirectiveUpdate{std::move(d)});
}

void Directives::Impl::ApplyCounts(const std::string& from, const v1::CountsSync& sync,
                                   int64_t written_at_ms, storage::Batch batch,
                                   std::function<void(const Status&)> finish) {
  if (Status bad = CheckCountsSync(from, sync, ctx->topology()); !bad.ok()) {
    LogRefused(from, bad);
    return ctx->store().Commit(std::move(batch), std::move(finish));
  }
  const std::string& id = sync.directive_id();
  // Come up from below: counted for the watch and passed on up, never listed
  // here (the child lists it). Held here (issued here or come down): listed.
  bool below = false;
  {
    std::lock_guard lock(link_mu);
    below = below_versions.count(id) > 0;  // its "d:" came first on this link, maybe not durable
  }
  below = below || (!storage::GetDirective(ctx->store(), id).ok() &&
                    storage::GetDirectiveFromBelow(ctx->store(), id).ok());
  const std::string key = id + '\0' + from;
  v1::ChildCounts last;
  v1::ChildCounts next;
  {
    std::lock_guard lock(link_mu);
    auto it = child_counts.find(key);
    if (it != child_counts.end()) {
      last = it->second;
    } else if (auto stored = storage::GetChildCounts(ctx->store(), id, from); stored.ok()) {
      last = std::move(stored).value();
    }
    // Older or equal: a redelivery, or overtaken by a newer update.
    if (sync.change_seq() <= last.change_seq()) {
      return ctx->store().Commit(std::move(batch), std::move(finish));
    }
    *next.mutable_counts() = sync.counts();
    next.set_change_seq(sync.change_seq());
    *next.mutable_parts() = sync.parts();
    child_counts[key] = next;
  }
  for (const auto& [part, counts] : sync.parts()) {
    auto was = last.parts().find(part);
    storage::AddProgress(
        batch, id, part,
        Minus(counts, was == last.parts().end() ? v1::ProgressCounts() : was->second));
  }
  const v1::ProgressCounts delta = Minus(sync.counts(), last.counts());
  // The child's root, then its ancestors hosted here.
  std::vector<std::string> at = {from};
  for (auto& j : ctx->placement().HostedPath(from)) {
    if (j != from) at.push_back(std::move(j));
  }
  for (const auto& j : at) {
    storage::AddProgress(batch, id, j, delta);
    if (!below) storage::IndexDirective(batch, j, id);
  }
  storage::PutChildCounts(batch, id, from, next);
  storage::CountUpdateReceived(batch, id);
  CountsChanged(batch, id);
  const int64_t now = ctx->NowMs();
  ctx->store().Commit(std::move(batch),
                      [this, now, written_at_ms, finish = std::move(finish)](const Status& s) {
                        probe->CountUpdateApplied(static_cast<double>(now - written_at_ms) / 1e3);
                        finish(s);
                      });
  Unsent(id);
}

Status Directives::Impl::RouteUnit(const std::string& unit, std::string* hop) const {
  hop->clear();
  const core::Placement& placement = ctx->placement();
  if (!placement.federated()) return Status::Ok();
  const std::string j = core::UnitJurisdiction(unit, ctx->topology());
  const std::string next = placement.NextHop(j);  // "" when hosted here
  if (next.empty() || ctx->topology().Find(j) == nullptr) return Status::Ok();
  if (ctx->link_hub() != nullptr) {
    *hop = next;
    return Status::Ok();
  }
  const std::string where = next == core::kParentPeer
                                ? "lies outside this node's root " + placement.hosted_root()
                                : "lies in the subtree of " + next + ", hosted by a child node";
  return Status::FailedPrecondition("unit_id: " + core::Quote(unit) + " " + where +
                                    "; this node (" + ctx->node_id() +
                                    ") has no node links: sign and complete at the node that "
                                    "hosts it");
}

void Directives::ApplyFromLink(const std::string& from, v1::LinkEnvelope envelope,
                               std::function<void(const Status&)> done) {
  NodeContext* ctx = impl_->ctx;
  const uint64_t seq = envelope.seq();
  if (!ctx->ClaimInbox(from, seq)) {
    // Applied already, maybe not durable yet: acknowledge behind that batch.
    return ctx->store().Commit(storage::Batch{}, std::move(done));
  }
  auto finish = [ctx, from, seq, done = std::move(done)](const Status& s) {
    if (!s.ok()) CommitFailed(s);
    ctx->InboxDurable(from, seq);
    done(s);
  };
  storage::Batch batch;
  batch.RecordInbox(from, seq);
  v1::LinkPayload& payload = *envelope.mutable_payload();
  if (payload.has_directive_sync()) {
    return impl_->ApplyDirective(from,
                                 std::move(*payload.mutable_directive_sync()->mutable_directive()),
                                 std::move(batch), std::move(finish));
  }
  if (payload.has_counts_sync()) {
    return impl_->ApplyCounts(from, payload.counts_sync(), envelope.written_at_ms(),
                              std::move(batch), std::move(finish));
  }
  if (payload.has_assessment_sync()) {
    // Assessment rows ride the same exactly-once link (actors/assessment.h).
    Status bad = ctx->assessment().ApplySync(from, payload.assessment_sync(), ctx->topology(),
                                             ctx->placement().has_parent(), batch);
    if (!bad.ok()) LogRefused(from, bad);
  }
  ctx->store().Commit(std::move(batch), std::move(finish));
}

bool Directives::BuildPayload(const std::string& ref, v1::LinkPayload* payload) const {
  const storage::Store& store = impl_->ctx->store();
  if (impl_->ctx->assessment().BuildPayload(store, impl_->ctx->placement().hosted_root(), ref,
                                            payload)) {
    return true;
  }
  if (ref.rfind(kDirectiveRef, 0) == 0) {
    auto d = storage::GetDirective(store, ref.substr(2));
    if (!d.ok()) d = storage::GetDirectiveFromBelow(store, ref.substr(2));  // passed on up
    if (d.ok()) *payload->mutable_directive_sync()->mutable_directive() = std::move(d).value();
    return true;
  }
  if (ref.rfind(kCountsRef, 0) == 0) {
    const std::string id = ref.substr(2);
    const std::string& root = impl_->ctx->placement().hosted_root();
    int64_t seq = 0;
    // Counts and their change sequence from one scan (one snapshot).
    auto counts = storage::GetProgress(store, id, root, &seq);
    if (counts.ok()) {
      auto* c = payload->mutable_counts_sync();
      c->set_directive_id(id);
      c->set_root(root);
      *c->mutable_counts() = std::move(counts).value();
      c->set_change_seq(seq);
      const core::Topology& topology = impl_->ctx->topology();
      std::vector<std::string> parts;
      for (const auto* j : topology.Children(root)) parts.push_back(j->id());
      for (const auto* dept : topology.DepartmentsOf(root)) parts.push_back(dept->id());
      for (const auto& part : parts) {
        auto n = storage::GetProgress(store, id, part);
        if (n.ok() && n->total() > 0) (*c->mutable_parts())[part] = std::move(n).value();
      }
    }
    return true;
  }
  return false;
}

Directives::Directives(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Directives::~Directives() {
  if (impl_ && impl_->flusher.joinable()) {
    {
      std::lock_guard lock(impl_->unsent_mu);
      impl_->stopping = true;
    }
    impl_->unsent_cv.notify_all();
    impl_->flusher.join();
  }
}

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
  if (ctx->placement().has_parent()) {
    // Counts a crash held back (changed, not yet in the parent's outbox) go up first.
    auto unsent = storage::DirtyCounts(ctx->store());
    if (!unsent.ok()) return unsent.status();
    for (auto& id : *unsent) raw->unsent.insert(std::move(id));
    if (!raw->unsent.empty())
      raw->probe->CountsUnsentSince(static_cast<double>(ctx->NowMs()) / 1e3);
    raw->flusher = std::thread([raw] { raw->FlushLoop(); });
    ctx->assessment().StartSending(&ctx->store(), [ctx] { return ctx->NowMs(); });
  }
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
  {
    std::lock_guard lock(impl_->unsent_mu);
    impl_->stopping = true;
  }
  impl_->unsent_cv.notify_all();
  if (impl_->flusher.joinable()) impl_->flusher.join();
  impl_->ctx->assessment().StopSending();
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
  // One lock over lookup, numbering and the send to the shard: two concurrent
  // retries cannot both issue, and a retry cannot overtake the issue it repeats.
  std::unique_lock<std::mutex> lock;
  if (request_id.empty()) {
    op.id = number();
  } else {
    const std::string& user = draft.issuer().user();
    std::string fingerprint = core::DraftFingerprint(draft.get());
    op.request_key = user + '\0' + request_id;
    lock = std::unique_lock(impl_->requests_mu);
    if (auto it = impl_->requests.find(op.request_key); it != impl_->requests.end()) {
      if (it->second.fingerprint != fingerprint) {
        const std::string first = it->second.id;
        lock.unlock();
        return done(core::IssueRequestReused(user, request_id, first));
      }
      op.kind = OpKind::kRetry;
      op.id = it->second.id;
    } else {
      auto found = storage::FindIssueRecord(impl_->ctx->store(), user, request_id);
      if (found.ok()) {
        // "" = recorded before fingerprints were kept (the service compared it).
        if (!found->fingerprint.empty() && found->fingerprint != fingerprint) {
          lock.unlock();
          return done(core::IssueRequestReused(user, request_id, found->directive_id));
        }
        // Through the shard: after a restart it may still be resuming the
        // expansion, and the answer waits for that like the first one did.
        op.kind = OpKind::kRetry;
        op.id = found->directive_id;
      } else if (found.status().code() != Code::kNotFound) {
        return done(found.status());
      } else {
        op.id = number();
        impl_->requests[op.request_key] = {op.id, std::move(fingerprint)};
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
  v1::ReceiptForward receipt;
  receipt.set_directive_id(id);
  receipt.set_unit_id(unit);
  *receipt.mutable_sign() = std::move(sign);
  ApplyReceipt(caller, std::move(receipt), 0, std::move(done));
}

void Directives::Complete(const std::string& id, const std::string& unit, const v1::Caller& caller,
                          v1::CompleteReceipt complete, Reply<v1::ReceiptView> done) {
  v1::ReceiptForward receipt;
  receipt.set_directive_id(id);
  receipt.set_unit_id(unit);
  *receipt.mutable_complete() = std::move(complete);
  ApplyReceipt(caller, std::move(receipt), 0, std::move(done));
}

namespace {

// Asks the node over link `hop` (see LinkCall): `fill` sets the request's
// kind, `take` picks the answer's part for `done`.
template <class T, class Fill, class Take>
void CallOver(const Directives::Impl& impl, const std::string& hop, const v1::Caller& caller,
              int hops, Fill fill, Take take, Reply<T> done) {
  LinkCall call;
  call.request.set_hops(hops);
  *call.request.mutable_caller() = caller;
  fill(call.request);
  call.reply = [done = std::move(done), take](StatusOr<v1::ForwardAnswer> answer) {
    if (!answer.ok()) return done(answer.status());
    done(take(*answer));
  };
  impl.Call(hop, std::move(call));
}

}  // namespace

void Directives::IssueOf(core::CheckedDraft draft, const std::string& request_id, int hops,
                         Reply<v1::IssueDirectiveResponse> done) {
  std::string hop;
  if (Status s = impl_->RouteUnit(draft.issuer().jurisdiction_id(), &hop); !s.ok()) {
    return done(s);
  }
  if (hop.empty()) return Issue(std::move(draft), request_id, std::move(done));
  v1::IssueDirectiveRequest forward;
  *forward.mutable_draft() = draft.get();
  forward.set_request_id(request_id);
  CallOver(
      *impl_, hop, draft.issuer(), hops,
      [&](v1::ForwardRequest& r) { *r.mutable_issue() = std::move(forward); },
      [](v1::ForwardAnswer& a) { return std::move(*a.mutable_issued()); }, std::move(done));
}

void Directives::ApplyReceipt(const v1::Caller& caller, v1::ReceiptForward receipt, int hops,
                              Reply<v1::ReceiptView> done) {
  std::string hop;
  if (Status s = impl_->RouteUnit(receipt.unit_id(), &hop); !s.ok()) return done(s);
  if (!hop.empty()) {
    // The unit's receipt lives on the node hosting it: one hop closer.
    return CallOver(
        *impl_, hop, caller, hops,
        [&](v1::ForwardRequest& r) { *r.mutable_receipt() = std::move(receipt); },
        [](v1::ForwardAnswer& a) { return std::move(*a.mutable_receipt()); }, std::move(done));
  }
  if (!impl_->Admit(done)) return;
  DirectiveOp op;
  op.kind = receipt.has_sign() ? OpKind::kSign : OpKind::kComplete;
  op.id = receipt.directive_id();
  op.unit = receipt.unit_id();
  op.caller = caller;
  if (receipt.has_sign()) op.sign = std::move(*receipt.mutable_sign());
  if (receipt.has_complete()) op.complete = std::move(*receipt.mutable_complete());
  op.on_receipt = std::move(done);
  caf::anon_send(impl_->ShardOf(op.id), directive_op_atom::value, std::move(op));
}

namespace {

// A ListTargets (or List) page token of a root whose units (directives) live
// on several nodes: "<segment>|<that segment's own token>", segment 0 = the
// units hosted here (this node's own directive index), k >= 1 = child root
// k-1 below the root (read on its node).
struct SegmentToken {
  size_t segment = 0;
  std::string inner;
};

StatusOr<SegmentToken> ParseSegmentToken(const std::string& token, size_t segments) {
  if (token.empty()) return SegmentToken{};
  if (token.size() > 4096) return Status::InvalidArgument("page_token: too long");
  const size_t bar = token.find('|');
  size_t segment = 0;
  const bool digits =
      bar != std::string::npos && bar > 0 && bar <= 3 &&
      std::all_of(token.begin(), token.begin() + bar, [](char c) { return c >= '0' && c <= '9'; });
  if (digits) segment = std::stoul(token.substr(0, bar));
  if (!digits || segment >= segments) {
    return Status::InvalidArgument("page_token: not a token this server issued");
  }
  return SegmentToken{segment, token.substr(bar + 1)};
}

}  // namespace

namespace {

// The caller sees a directive issued in its subtree or addressed into it;
// `row` is that of a jurisdiction inside the caller's subtree.
bool Sees(const v1::Caller& caller, const v1::Directive& d, const v1::ProgressRow& row,
          const core::Topology& topology) {
  return topology.IsWithin(d.issuer_jurisdiction_id(), caller.jurisdiction_id()) ||
         row.counts().total() > 0;
}

v1::ProgressRow Labelled(v1::ProgressRow row, const std::string& id,
                         const core::Topology& topology) {
  row.set_jurisdiction_id(id);
  if (const v1::Jurisdiction* j = topology.Find(id)) {
    row.set_name(j->name());
    row.set_level(j->level());
  }
  return row;
}

// A child node's progress of its root `below`, where every target of a
// directive it numbered lies, as the progress of `at` above it: the same
// counts, in one row for `at` and one for `at`'s child on the way down.
v1::GetProgressResponse Above(v1::GetProgressResponse theirs, const std::string& below,
                              const std::string& at, const core::Topology& topology) {
  std::string step = below;
  for (const v1::Jurisdiction* p = topology.Parent(step); p != nullptr && p->id() != at;
       p = topology.Parent(step)) {
    step = p->id();
  }
  const v1::ProgressRow total = theirs.total();
  *theirs.mutable_total() = Labelled(total, at, topology);
  theirs.clear_children();
  if (total.counts().total() > 0) *theirs.add_children() = Labelled(total, step, topology);
  return theirs;
}

// Child node roots inside `at`'s subtree, in id order.
std::vector<std::string> ChildRootsWithin(const NodeContext& ctx, const std::string& at) {
  std::vector<std::string> out;
  for (const auto& root : ctx.placement().child_roots()) {
    if (ctx.topology().IsWithin(root, at)) out.push_back(root);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Asks the child nodes in `roots` from `next` on, one after another, for
// directive `id`'s progress of their root, until one holds it: `done` gets
// that root and its answer; NOT_FOUND when none does (UNAVAILABLE when a
// node that might hold it did not answer).
void FindBelow(const Directives::Impl& impl, const v1::Caller& caller, std::string id,
               std::vector<std::string> roots, size_t next, int hops, bool unreachable,
               Reply<std::pair<std::string, v1::GetProgressResponse>> done) {
  if (next >= roots.size()) {
    if (unreachable) {
      return done(Status::Unavailable("directive_id: " + core::Quote(id) +
                                      " not found on the nodes that answered; a child node "
                                      "did not answer: try again"));
    }
    return done(Status::NotFound("directive_id: unknown directive " + core::Quote(id)));
  }
  v1::GetProgressRequest request;
  request.set_directive_id(id);
  request.set_jurisdiction_id(roots[next]);
  const std::string hop = roots[next];
  CallOver(
      impl, hop, caller, hops,
      [&](v1::ForwardRequest& r) { *r.mutable_progress() = std::move(request); },
      [](v1::ForwardAnswer& a) { return std::move(*a.mutable_progress()); },
      Reply<v1::GetProgressResponse>(
          [&impl, caller, id, roots, next, hops, unreachable,
           done = std::move(done)](StatusOr<v1::GetProgressResponse> answer) mutable {
            if (answer.ok()) return done(std::make_pair(roots[next], std::move(answer).value()));
            const Code code = answer.status().code();
            if (code != Code::kNotFound && code != Code::kUnavailable) {
              return done(answer.status());
            }
            FindBelow(impl, caller, std::move(id), std::move(roots), next + 1, hops,
                      unreachable || code == Code::kUnavailable, std::move(done));
          }));
}

}  // namespace

void Directives::ListTargets(const v1::Caller& caller, v1::ListTargetsRequest request, int hops,
                             Reply<v1::ListTargetsResponse> done) {
  std::string hop;
  if (Status s = impl_->RouteUnit(request.jurisdiction_id(), &hop); !s.ok()) return done(s);
  if (!hop.empty()) {
    // The subtree's receipts are held by the node hosting it.
    return CallOver(
        *impl_, hop, caller, hops,
        [&](v1::ForwardRequest& r) { *r.mutable_targets() = std::move(request); },
        [](v1::ForwardAnswer& a) { return std::move(*a.mutable_targets()); }, std::move(done));
  }
  // Hosted here: its own units first, then those of each child node below it
  // that the directive was sent to (one with no target never heard of it).
  auto d = Get(request.directive_id());
  if (!d.ok()) {
    auto roots = ChildRootsWithin(*impl_->ctx, request.jurisdiction_id());
    if (d.status().code() != Code::kNotFound || roots.empty() ||
        impl_->Mine(request.directive_id())) {
      return done(d.status());
    }
    // Numbered on a node below, which holds every one of its units: read there.
    const std::string id = request.directive_id();
    return FindBelow(*impl_, caller, id, std::move(roots), 0, hops, false,
                     [this, caller, request = std::move(request), hops, done = std::move(done)](
                         StatusOr<std::pair<std::string, v1::GetProgressResponse>> found) mutable {
                       if (!found.ok()) return done(found.status());
                       request.set_jurisdiction_id(found->first);
                       ListTargets(caller, std::move(request), hops, std::move(done));
                     });
  }
  std::vector<std::string> below;
  for (const auto& root : impl_->ChildPeers(*d)) {
    if (impl_->ctx->topology().IsWithin(root, request.jurisdiction_id())) below.push_back(root);
  }
  std::sort(below.begin(), below.end());
  auto at = ParseSegmentToken(request.page_token(), below.size() + 1);
  if (!at.ok()) return done(at.status());
  const size_t segment = at->segment;
  const size_t segments = below.size() + 1;
  // Wraps a segment's page: its own next token, else the next segment's start.
  auto wrap = [segment, segments](v1::ListTargetsResponse page) {
    if (!page.next_page_token().empty()) {
      page.set_next_page_token(std::to_string(segment) + "|" + page.next_page_token());
    } else if (segment + 1 < segments) {
      page.set_next_page_token(std::to_string(segment + 1) + "|");
    }
    return page;
  };
  if (segment == 0) {
    auto page =
        Targets(*d, request.jurisdiction_id(), request.state(), request.page_size(), at->inner);
    if (!page.ok()) return done(page.status());
    return done(wrap(std::move(page).value()));
  }
  const std::string child = below[segment - 1];
  request.set_jurisdiction_id(child);
  request.set_page_token(at->inner);
  ListTargets(
      caller, std::move(request), hops,
      [done = std::move(done), wrap, child](StatusOr<v1::ListTargetsResponse> page) {
        if (page.ok()) return done(wrap(std::move(page).value()));
        // Sent down but not there yet: a moment's wait, not an unknown directive.
        if (page.status().code() == Code::kNotFound) {
          return done(Status::Unavailable("directive_id: not yet received by the node hosting " +
                                          child + " (it is on its way down); try again"));
        }
        done(page.status());
      });
}

void Directives::ProgressOf(const v1::Caller& caller, v1::GetProgressRequest request, int hops,
                            Reply<v1::GetProgressResponse> done) {
  const std::string at = request.jurisdiction_id();
  std::string hop;
  if (Status s = impl_->RouteUnit(at, &hop); !s.ok()) return done(s);
  auto d = Get(request.directive_id());
  // A child node the directive was not sent to has no target of it: zeros, here.
  bool untargeted_child = false;
  if (!hop.empty() && hop != core::kParentPeer && d.ok()) {
    const std::vector<std::string> sent = impl_->ChildPeers(*d);
    untargeted_child = std::find(sent.begin(), sent.end(), hop) == sent.end();
  }
  if (!hop.empty() && !untargeted_child) {
    // The subtree's counts are held by the node hosting it.
    return CallOver(
        *impl_, hop, caller, hops,
        [&](v1::ForwardRequest& r) { *r.mutable_progress() = std::move(request); },
        [](v1::ForwardAnswer& a) { return std::move(*a.mutable_progress()); }, std::move(done));
  }
  const core::Topology& topology = impl_->ctx->topology();
  if (d.ok()) {
    auto progress = Progress(*d, at);
    if (!progress.ok()) return done(progress.status());
    // The caller's own row is read only when the asked one does not decide.
    auto addressed_to_mine = [&] {
      const std::string& mine = caller.jurisdiction_id();
      if (!impl_->ctx->placement().Hosts(mine)) return false;
      auto row = Row(*d, mine, 0);
      return row.ok() && row->counts().total() > 0;
    };
    if (!Sees(caller, *d, progress->total(), topology) && !addressed_to_mine()) {
      return done(Status::PermissionDenied("directive " + d->id() +
                                           " is neither issued in nor addressed to the "
                                           "caller's jurisdiction"));
    }
    return done(std::move(progress).value());
  }
  // Numbered on a node below (kept here only for the watch): a child node under `at` holds it.
  auto roots = ChildRootsWithin(*impl_->ctx, at);
  if (d.status().code() != Code::kNotFound || roots.empty() ||
      impl_->Mine(request.directive_id())) {
    return done(d.status());
  }
  FindBelow(*impl_, caller, request.directive_id(), std::move(roots), 0, hops, false,
            [at, &topology, done = std::move(done)](
                StatusOr<std::pair<std::string, v1::GetProgressResponse>> found) {
              if (!found.ok()) return done(found.status());
              done(Above(std::move(found->second), found->first, at, topology));
            });
}

void Directives::InboxOf(const v1::Caller& caller, v1::InboxRequest request, int hops,
                         Reply<v1::InboxResponse> done) {
  std::string hop;
  if (Status s = impl_->RouteUnit(request.unit_id(), &hop); !s.ok()) return done(s);
  if (!hop.empty()) {
    return CallOver(
        *impl_, hop, caller, hops,
        [&](v1::ForwardRequest& r) { *r.mutable_inbox() = std::move(request); },
        [](v1::ForwardAnswer& a) { return std::move(*a.mutable_inbox()); }, std::move(done));
  }
  done(Inbox(request.unit_id(), request.page_size(), request.page_token()));
}

namespace {

// List's page_size bounds and default (actors/directive_query.cc), here
// because a page spanning nodes is filled segment by segment.
constexpr int kMaxListPage = 500;
constexpr int kDefaultListPage = 50;
// At most this many reads of one child node for one page (see ReadChildList).
constexpr int kMaxChildListReads = 4;

// One page of child root `request.jurisdiction_id()`'s directives, for a List
// of `at` spanning several nodes (the child node reads it, over the link):
// only the directives this node does not hold itself, each with `at`'s row.
// A page thinned by held directives reads on for as many, a few times at
// most: never more than asked for. A read that fails after the first
// answers what the earlier ones kept, with their next token.
void ReadChildList(Directives* dirs, const Directives::Impl* impl, const v1::Caller& caller,
                   v1::ListDirectivesRequest request, int hops, std::string at, int reads,
                   v1::ListDirectivesResponse out, Reply<v1::ListDirectivesResponse> done) {
  v1::ListDirectivesRequest asked = request;
  dirs->ListOf(
      caller, std::move(asked), hops,
      [dirs, impl, caller, request = std::move(request), hops, at = std::move(at), reads,
       out = std::move(out),
       done = std::move(done)](StatusOr<v1::ListDirectivesResponse> page) mutable {
        if (!page.ok()) return reads > 1 ? done(std::move(out)) : done(page.status());
        const v1::Jurisdiction* j = impl->ctx->topology().Find(at);
        int64_t dropped = 0;
        for (auto& view : *page->mutable_directives()) {
          // Held here: issued here or come down through here, so this
          // node's own index lists it (segment 0). Not held: numbered on
          // that child node or below it, and listed there only.
          auto held = storage::GetDirective(impl->ctx->store(), view.directive().id());
          if (held.ok()) {
            ++dropped;
            continue;
          }
          if (held.status().code() != Code::kNotFound) return done(held.status());
          // Its receipts all lie in the child's subtree: the child root's
          // counts are `at`'s.
          v1::ProgressRow* row = view.mutable_progress();
          row->set_jurisdiction_id(at);
          if (j != nullptr) {
            row->set_name(j->name());
            row->set_level(j->level());
          }
          *out.add_directives() = std::move(view);
        }
        out.set_next_page_token(page->next_page_token());
        if (dropped == 0 || page->next_page_token().empty() || reads >= kMaxChildListReads) {
          return done(std::move(out));
        }
        request.set_page_size(static_cast<int32_t>(dropped));
        request.set_page_token(page->next_page_token());
        ReadChildList(dirs, impl, caller, std::move(request), hops, std::move(at), reads + 1,
                      std::move(out), std::move(done));
      });
}

// One page of a List of `at` whose subtree spans child nodes `below`
// (sorted): filled segment after segment (see SegmentToken) until it holds
// `want` directives or the last segment ends.
struct SpanningList {
  Directives* dirs = nullptr;
  const Directives::Impl* impl = nullptr;
  v1::Caller caller;
  int hops = 0;
  std::string at;
  std::vector<std::string> below;
  int want = 0;
  v1::ListDirectivesResponse out;
  Reply<v1::ListDirectivesResponse> done;
};

void ListSegment(std::shared_ptr<SpanningList> walk, size_t segment, std::string inner);

// Segment `segment` ended: the next one, in this page while it has room.
void NextSegment(std::shared_ptr<SpanningList> walk, size_t segment) {
  if (segment > walk->below.size()) return walk->done(std::move(walk->out));
  if (walk->out.directives_size() >= walk->want) {
    walk->out.set_next_page_token(std::to_string(segment) + "|");
    return walk->done(std::move(walk->out));
  }
  ListSegment(std::move(walk), segment, "");
}

void ListSegment(std::shared_ptr<SpanningList> walk, size_t segment, std::string inner) {
  const int room = walk->want - walk->out.directives_size();
  if (segment == 0) {
    auto page = walk->dirs->List(walk->at, room, inner);
    if (!page.ok()) return walk->done(page.status());
    for (auto& view : *page->mutable_directives()) *walk->out.add_directives() = std::move(view);
    if (!page->next_page_token().empty()) {
      walk->out.set_next_page_token("0|" + page->next_page_token());
      return walk->done(std::move(walk->out));
    }
    return NextSegment(std::move(walk), 1);
  }
  v1::ListDirectivesRequest request;
  request.set_jurisdiction_id(walk->below[segment - 1]);
  request.set_page_size(room);
  request.set_page_token(inner);
  const v1::Caller caller = walk->caller;
  const std::string at = walk->at;
  ReadChildList(walk->dirs, walk->impl, caller, std::move(request), walk->hops, at, 1, {},
                [walk, segment, inner](StatusOr<v1::ListDirectivesResponse> page) mutable {
                  const std::string mark = std::to_string(segment) + "|";
                  if (!page.ok()) {
                    // What the nodes before it gave is answered; this
                    // segment's page is asked again with the next token.
                    if (walk->out.directives_size() == 0) return walk->done(page.status());
                    walk->out.set_next_page_token(mark + inner);
                    return walk->done(std::move(walk->out));
                  }
                  for (auto& view : *page->mutable_directives()) {
                    *walk->out.add_directives() = std::move(view);
                  }
                  if (!page->next_page_token().empty()) {
                    walk->out.set_next_page_token(mark + page->next_page_token());
                    return walk->done(std::move(walk->out));
                  }
                  NextSegment(std::move(walk), segment + 1);
                });
}

}  // namespace

void Directives::ListOf(const v1::Caller& caller, v1::ListDirectivesRequest request, int hops,
                        Reply<v1::ListDirectivesResponse> done) {
  std::string hop;
  if (Status s = impl_->RouteUnit(request.jurisdiction_id(), &hop); !s.ok()) return done(s);
  if (!hop.empty()) {
    // Its directives are indexed on the node hosting it.
    return CallOver(
        *impl_, hop, caller, hops,
        [&](v1::ForwardRequest& r) { *r.mutable_directives() = std::move(request); },
        [](v1::ForwardAnswer& a) { return std::move(*a.mutable_directives()); }, std::move(done));
  }
  // Hosted here: this node's own index first, then each child node below it,
  // asked for its root's directives (those issued there never come up here).
  const std::string& at = request.jurisdiction_id();
  std::vector<std::string> below;
  for (const auto& root : impl_->ctx->placement().child_roots()) {
    if (impl_->ctx->topology().IsWithin(root, at)) below.push_back(root);
  }
  // Wholly hosted here: one segment, and the tokens of a single node.
  if (below.empty()) return done(List(at, request.page_size(), request.page_token()));
  std::sort(below.begin(), below.end());
  // Checked before any link is asked (the same bounds as List's).
  if (request.page_size() < 0 || request.page_size() > kMaxListPage) {
    return done(Status::InvalidArgument("page_size: must be 1.." + std::to_string(kMaxListPage) +
                                        ", got " + std::to_string(request.page_size())));
  }
  auto token = ParseSegmentToken(request.page_token(), below.size() + 1);
  if (!token.ok()) return done(token.status());
  auto walk = std::make_shared<SpanningList>();
  walk->dirs = this;
  walk->impl = impl_.get();
  walk->caller = caller;
  walk->hops = hops;
  walk->at = at;
  walk->below = std::move(below);
  walk->want = request.page_size() == 0 ? kDefaultListPage : request.page_size();
  walk->done = std::move(done);
  ListSegment(std::move(walk), token->segment, std::move(token->inner));
}

void Directives::Impl::Call(const std::string& hop, LinkCall call) const {
  if (call.request.hops() >= kMaxLinkHops) {
    return call.reply(Status::Unavailable("not reachable over the node links; retry"));
  }
  ctx->link_hub()->Call(hop, std::move(call));
}

}  // namespace whistle::actors
