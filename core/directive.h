// The directive state machine: pure functions over directives and receipts,
// beside the case machine and in its style (rules as a table, errors naming
// the field). A directive is issued once, at the issuer's node; every node
// expands it to the units it hosts and keeps one receipt per unit; counts
// over receipts roll up the tree (ProgressCounts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/case_machine.h"
#include "core/status.h"
#include "core/topology.h"
#include "whistle/v1/directive.pb.h"

namespace whistle::core {

// A draft that passed CheckIssue: the issuer is a leader and every target
// lies inside the issuer's subtree. Only CheckIssue makes one.
class CheckedDraft {
 public:
  const v1::DirectiveDraft& get() const { return draft_; }
  const v1::Caller& issuer() const { return issuer_; }
  int64_t unit_count() const { return unit_count_; }

 private:
  friend StatusOr<CheckedDraft> CheckIssue(const CheckedCaller& issuer, v1::DirectiveDraft draft,
                                           const Context& ctx, int64_t now_ms);
  CheckedDraft(v1::Caller issuer, v1::DirectiveDraft draft, int64_t units)
      : issuer_(std::move(issuer)), draft_(std::move(draft)), unit_count_(units) {}
  v1::Caller issuer_;
  v1::DirectiveDraft draft_;
  int64_t unit_count_;
};

StatusOr<CheckedDraft> CheckIssue(const CheckedCaller& issuer, v1::DirectiveDraft draft,
                                  const Context& ctx, int64_t now_ms);

// The draft's content as a short string ("v1:<16 hex>"), kept with an Issue's
// request id: a retry with the same draft gets the first directive, the same
// request id with another draft is refused (IssueRequestReused).
std::string DraftFingerprint(const v1::DirectiveDraft& draft);
// ALREADY_EXISTS naming request_id and the directive it was used for.
Status IssueRequestReused(std::string_view user, std::string_view request_id,
                          std::string_view directive_id);

// The directive as issued, under the id the node gave it.
v1::Directive NewDirective(const CheckedDraft& draft, std::string id, int64_t now_ms);

// Target units lying inside `within` ("" = all), sorted and unique.
std::vector<std::string> ExpandTargets(const v1::Targets& targets, const Topology& topology,
                                       std::string_view within = {});

// The jurisdiction a unit sits in: itself, or a department's jurisdiction.
std::string UnitJurisdiction(std::string_view unit_id, const Topology& topology);

// Whether `caller` may amend or cancel `d`: PERMISSION_DENIED unless a leader
// at the issuer's jurisdiction or above; FAILED_PRECONDITION once cancelled.
Status CheckCanChange(const v1::Directive& d, const v1::Caller& caller, const Topology& topology);

// Amend (deadline, text) and cancel: by a leader at the issuer's jurisdiction
// or above, while the directive is active. Each bumps `version`.
StatusOr<v1::Directive> ApplyAmend(const v1::Directive& d, const v1::Caller& caller,
                                   const v1::AmendDirective& amend, const Topology& topology,
                                   int64_t now_ms);
StatusOr<v1::Directive> ApplyCancel(const v1::Directive& d, const v1::Caller& caller,
                                    const v1::CancelDirective& cancel, const Topology& topology,
                                    int64_t now_ms);

// ---- Receipts ----

enum class ReceiptAction { kSign, kComplete };

struct ReceiptTransition {
  v1::Receipt next;
  v1::ProgressCounts delta;  // what the change adds to every enclosing subtree's counts
};

v1::Receipt NewReceipt(const std::string& directive_id, const std::string& unit_id,
                       const Topology& topology);

// Sign (PENDING -> SIGNED) or complete (PENDING or SIGNED -> DONE; completing
// unsigned signs too), by the unit itself; late when after the deadline.
StatusOr<ReceiptTransition> ApplySign(const v1::Directive& d, const v1::Receipt& r,
                                      const v1::Caller& caller, const v1::SignReceipt& sign,
                                      const Topology& topology, int64_t now_ms);
StatusOr<ReceiptTransition> ApplyComplete(const v1::Directive& d, const v1::Receipt& r,
                                          const v1::Caller& caller,
                                          const v1::CompleteReceipt& complete,
                                          const Topology& topology, int64_t now_ms);

// True when `caller` acts for `unit_id`: the department itself, or a grid
// worker, staff or leader of exactly that jurisdiction.
bool ActsFor(const v1::Caller& caller, std::string_view unit_id, const Topology& topology);

// One receipt's contribution to its subtree's counts.
v1::ProgressCounts CountsOf(const v1::Receipt& r);
void AddCounts(v1::ProgressCounts* into, const v1::ProgressCounts& delta);
// Targets not done once the deadline has passed (0 before it or when cancelled).
int64_t Overdue(const v1::Directive& d, const v1::ProgressCounts& counts, int64_t now_ms);

}  // namespace whistle::core
