// Directives: the directive side of a node. Owns the directive actors (a
// few shards; one directive always goes to the same shard, which applies its
// changes one at a time) and the directive probe. Writes answer once their
// batch is durable; reads see acknowledged state straight from the store.
// Each node expands a directive only to the units it hosts (core::Placement)
// and counts per jurisdiction, so a child node's subtree counts can later be
// sent up as one record per jurisdiction. No CAF header leaks from here.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/directive.h"
#include "core/status.h"
#include "whistle/v1/directive.pb.h"
#include "whistle/v1/directive_service.pb.h"
#include "whistle/v1/link.pb.h"

namespace prometheus {
class Registry;
}
namespace caf {
class actor_system;
}

namespace whistle::actors {

class NodeContext;
class DirectiveProbe;

template <class T>
using Reply = std::function<void(StatusOr<T>)>;

class Directives {
 public:
  // Spawns the shards on `system` and resumes every
  // expansion a crash cut short. `registry` may be null. Writes count in
  // `inflight` (the node's, shared with cases): past `max_inflight` (> 0)
  // they are refused with RESOURCE_EXHAUSTED.
  static StatusOr<std::unique_ptr<Directives>> Start(caf::actor_system& system, NodeContext* ctx,
                                                     prometheus::Registry* registry,
                                                     std::atomic<int64_t>* inflight,
                                                     int64_t max_inflight);
  ~Directives();
  // Asks the shards to exit (the node then waits for all actors).
  void Stop();

  // ---- Writes (answered once durable) ----
  // Numbers the directive, writes it with every receipt and count of the
  // units hosted here (in chunks, each atomic with the expansion cursor).
  // With a `request_id`, a retry by the same user gets the first directive,
  // answered once that one is durable.
  void Issue(core::CheckedDraft draft, const std::string& request_id,
             Reply<v1::IssueDirectiveResponse> done);
  // Issue on the node hosting the issuer's jurisdiction: here, or forwarded
  // over the node links (`hops` so far). There it is numbered and deduped,
  // and every target lies at or below it.
  void IssueOf(core::CheckedDraft draft, const std::string& request_id, int hops,
               Reply<v1::IssueDirectiveResponse> done);
  void Amend(const std::string& id, const v1::Caller& caller, v1::AmendDirective amend,
             Reply<v1::Directive> done);
  void Cancel(const std::string& id, const v1::Caller& caller, v1::CancelDirective cancel,
              Reply<v1::Directive> done);
  void Sign(const std::string& id, const std::string& unit, const v1::Caller& caller,
            v1::SignReceipt sign, Reply<v1::ReceiptView> done);
  void Complete(const std::string& id, const std::string& unit, const v1::Caller& caller,
                v1::CompleteReceipt complete, Reply<v1::ReceiptView> done);
  // Sign or complete as `receipt` says: here when this node hosts the unit,
  // else forwarded over the node links (`hops` so far) to the node that does.
  void ApplyReceipt(const v1::Caller& caller, v1::ReceiptForward receipt, int hops,
                    Reply<v1::ReceiptView> done);
  // A page of receipts of `request.jurisdiction_id`'s subtree (set, checked
  // by the caller): read here, or over the node links from the node hosting
  // that jurisdiction when a child node does.
  void ListTargets(const v1::Caller& caller, v1::ListTargetsRequest request, int hops,
                   Reply<v1::ListTargetsResponse> done);
  // A page of `request.unit_id`'s directive inbox (set, checked by the
  // caller): read here, or over the node links from the node hosting it.
  void InboxOf(const v1::Caller& caller, v1::InboxRequest request, int hops,
               Reply<v1::InboxResponse> done);
  // A page of `request.jurisdiction_id`'s directives (set, checked by the
  // caller): read here, or over the node links when a child node hosts it.
  // A subtree spanning child nodes is paged in segments (this node's List,
  // then each child node's, read there), each directive once; a page ends
  // at a child node that is down, and one that starts there is UNAVAILABLE.
  void ListOf(const v1::Caller& caller, v1::ListDirectivesRequest request, int hops,
              Reply<v1::ListDirectivesResponse> done);
  // `request.directive_id`'s progress in `request.jurisdiction_id`'s subtree
  // (set, checked by the caller, inside the caller's; not a department):
  // read here when this node hosts that jurisdiction and holds the
  // directive; else over the node links, from the node hosting the
  // jurisdiction, or from the child node below it that numbered the
  // directive (not held above it). PERMISSION_DENIED when
  // the caller may not see the directive (neither issued in nor addressed
  // into its subtree).
  void ProgressOf(const v1::Caller& caller, v1::GetProgressRequest request, int hops,
                  Reply<v1::GetProgressResponse> done);

  // ---- Reads ----
  StatusOr<v1::Directive> Get(const std::string& id) const;
  StatusOr<v1::Receipt> Receipt(const std::string& id, const std::string& unit) const;
  // Counts of `jurisdiction`'s subtree as this node holds them; overdue at `now_ms`.
  StatusOr<v1::ProgressRow> Row(const v1::Directive& d, const std::string& jurisdiction,
                                int64_t now_ms) const;
  // The subtree's row and one row per child jurisdiction or own department with targets.
  StatusOr<v1::GetProgressResponse> Progress(const v1::Directive& d,
                                             const std::string& jurisdiction) const;
  // Directives issued in, or addressed into, `jurisdiction`'s subtree, as
  // this node's own index holds them (see ListOf for child nodes').
  StatusOr<v1::ListDirectivesResponse> List(const std::string& jurisdiction, int page_size,
                                            const std::string& page_token) const;
  // Receipts of units inside `jurisdiction`'s subtree in `state` (UNSPECIFIED = all).
  StatusOr<v1::ListTargetsResponse> Targets(const v1::Directive& d, const std::string& jurisdiction,
                                            v1::ReceiptState state, int page_size,
                                            const std::string& page_token) const;
  StatusOr<v1::InboxResponse> Inbox(const std::string& unit, int page_size,
                                    const std::string& page_token) const;

  // ---- Federation (called by link/ through Node) ----
  // Applies a DirectiveSync or CountsSync envelope from link `from` (see
  // link.proto), exactly once: a resend changes nothing. `done` once durable.
  void ApplyFromLink(const std::string& from, v1::LinkEnvelope envelope,
                     std::function<void(const Status&)> done);
  // The payload of outbox entry `ref` ("d:<id>" or "c:<id>", as stored now);
  // false when `ref` names a case.
  bool BuildPayload(const std::string& ref, v1::LinkPayload* payload) const;

  // Defined in actors/directive_context.h, shared by the shards and the reads.
  struct Impl;

 private:
  explicit Directives(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace whistle::actors
