// Directive records in the Store: the directive as issued (and amended),
// one receipt per target unit hosted on this node, progress counts per
// (directive, jurisdiction) for every ancestor-or-self of a target hosted
// here, an inbox index per unit and a list index per jurisdiction. Writes go
// into a Batch (one atomic, synced write per change); reads see acknowledged
// state. Thread-safe like Store.
//
// Column family "directives" (\0 ends every variable-length id):
//   d/<directive>                          -> v1::Directive
//   b/<directive>                          -> v1::Directive numbered on a node below (as it
//                                             came up: the watch, and passed on up)
//   x/<directive>                          -> v1::DirectiveExpansion (expansion cursor)
//   r/<directive> \0 <unit>                -> v1::Receipt
//   c/<directive> \0 <jurisdiction> \0 <n> -> int64, merged by addition: field n of
//                                             v1::ProgressCounts for that subtree
//   u/<unit> \0 <receipt state digit> / <directive> -> ""  (inbox, pending first)
//   f/<jurisdiction> \0 <directive>        -> ""  (issued in, or addressed into, the subtree)
//   q/<user> \0 <request id>               -> directive id [\0 draft fingerprint] (Issue
//                                             idempotency)
//   c/<directive> \0 <root> \0 6            -> int64, merged: change sequence of the counts of
//                                             this node's hosted root (sent up in CountsSync)
//   p/<directive>                          -> ""  (counts changed, not yet sent to the parent)
//   k/<directive> \0 <child root>           -> v1::ChildCounts (a child node's counts as merged)
//   m/<directive>                          -> int64, merged: count updates applied from children
//
// Counts are deltas merged by RocksDB, so a change never reads them first;
// the directive actor serialises the changes that produce the deltas.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/store.h"
#include "whistle/v1/directive.pb.h"

namespace whistle::storage {

// ---- Writes ----

void PutDirective(Batch& batch, const v1::Directive& d);
// A directive numbered on a node below, as it came up: kept apart from those
// issued here or come down ("b/", not "d/"), so reads never take it for one
// this node holds (they ask the node below), and recorded in the change log
// (the live watch above the issuer).
void PutDirectiveFromBelow(Batch& batch, const v1::Directive& d);
void PutExpansion(Batch& batch, const std::string& directive_id,
                  const v1::DirectiveExpansion& cursor);
// Lists `directive_id` under `jurisdiction` (idempotent).
void IndexDirective(Batch& batch, const std::string& jurisdiction, const std::string& directive_id);
// Remembers user + request id -> directive id and the fingerprint of the
// draft (core::DraftFingerprint; value "<directive id>\0<fingerprint>"): a
// retried Issue finds the first, one with another draft is refused.
void RecordIssueRequest(Batch& batch, const std::string& user, const std::string& request_id,
                        const std::string& directive_id, const std::string& fingerprint = "");
// Puts `after` and moves its inbox entry from `before`'s state (nullptr: a new receipt).
void PutReceipt(Batch& batch, const v1::Receipt* before, const v1::Receipt& after);
// Adds `delta` to the counts of (directive, jurisdiction); zero fields are skipped.
void AddProgress(Batch& batch, const std::string& directive_id, const std::string& jurisdiction,
                 const v1::ProgressCounts& delta);

// ---- Federation ----

// Adds 1 to the change sequence of (directive, root): every batch that
// changes the hosted root's counts does, so a CountsSync read from one
// snapshot carries counts and the sequence that produced them.
void BumpChangeSeq(Batch& batch, const std::string& directive_id, const std::string& root);
// Marks the directive's counts as changed and not yet sent up; the flusher
// clears the mark in the batch that writes the outbox entry.
void MarkCountsDirty(Batch& batch, const std::string& directive_id);
void ClearCountsDirty(Batch& batch, const std::string& directive_id);
void PutChildCounts(Batch& batch, const std::string& directive_id, const std::string& child_root,
                    const v1::ChildCounts& counts);
// Counts one CountsSync applied for the directive.
void CountUpdateReceived(Batch& batch, const std::string& directive_id);

// Directives marked by MarkCountsDirty (start-up: send what a crash held back).
StatusOr<std::vector<std::string>> DirtyCounts(const Store& store);
// NOT_FOUND before the child's first CountsSync.
StatusOr<v1::ChildCounts> GetChildCounts(const Store& store, const std::string& directive_id,
                                         const std::string& child_root);
int64_t CountUpdates(const Store& store, const std::string& directive_id);

// ---- Reads ----

// NOT_FOUND when absent.
StatusOr<v1::Directive> GetDirective(const Store& store, const std::string& directive_id);
StatusOr<v1::Directive> GetDirectiveFromBelow(const Store& store, const std::string& directive_id);
StatusOr<v1::Receipt> GetReceipt(const Store& store, const std::string& directive_id,
                                 const std::string& unit_id);
// The directive an earlier Issue with this user + request id created; NOT_FOUND if none.
StatusOr<std::string> FindIssueRequest(const Store& store, const std::string& user,
                                       const std::string& request_id);
struct IssueRequestRecord {
  std::string directive_id;
  std::string fingerprint;  // "" in records written before fingerprints were kept
};
// The same with the draft's fingerprint; NOT_FOUND if none.
StatusOr<IssueRequestRecord> FindIssueRecord(const Store& store, const std::string& user,
                                             const std::string& request_id);
// The expansion cursor; NOT_FOUND before the directive's first batch.
StatusOr<v1::DirectiveExpansion> GetExpansion(const Store& store, const std::string& directive_id);
// All zero when nothing was counted there.
StatusOr<v1::ProgressCounts> GetProgress(const Store& store, const std::string& directive_id,
                                         const std::string& jurisdiction,
                                         int64_t* change_seq = nullptr);
// Highest n among directive ids "<prefix><12 digits>" (0 if none): ids are
// numbered from the records themselves, so one is never given out twice.
StatusOr<uint64_t> LastDirectiveSeq(const Store& store, const std::string& prefix);

struct PendingExpansion {
  v1::Directive directive;
  v1::DirectiveExpansion cursor;
};
// Directives whose expansion did not finish (a crash mid-way): resume them.
StatusOr<std::vector<PendingExpansion>> IncompleteExpansions(const Store& store);
// Visits every directive record (start-up figures) until fn returns false.
Status ForEachDirective(const Store& store, const std::function<bool(const v1::Directive&)>& fn);

// Pages: `after` is the opaque resume point of the previous page ("" = start);
// `next` is "" when nothing follows.
struct IdPage {
  std::vector<std::string> ids;
  std::string next;
};
// Directives listed under `jurisdiction`, in id order.
StatusOr<IdPage> ListDirectiveIds(const Store& store, const std::string& jurisdiction,
                                  const std::string& after, size_t limit);
// Directives in the inbox of `unit`: pending first, then signed, then done; id order within.
// Its page tokens are "<receipt state digit>/<directive id>".
StatusOr<IdPage> ListInbox(const Store& store, const std::string& unit, const std::string& after,
                           size_t limit);

// OK for "" and for a token of the shape ListInbox issues; else
// INVALID_ARGUMENT naming page_token (a garbage token would silently read an
// empty page, or the whole inbox).
Status CheckInboxToken(const std::string& token);

struct ReceiptPage {
  std::vector<v1::Receipt> receipts;
  std::string next;
};
// Receipts of a directive in unit order for which `keep` is true. Reads the
// receipts in order until the page fills: O(receipts) for a sparse filter.
StatusOr<ReceiptPage> ListReceipts(const Store& store, const std::string& directive_id,
                                   const std::string& after, size_t limit,
                                   const std::function<bool(const v1::Receipt&)>& keep);

}  // namespace whistle::storage
