#include "core/directive.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/fingerprint.h"
#include "core/text.h"

namespace whistle::core {

namespace {

constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxText = 4000;
constexpr size_t kMaxNote = 4000;
constexpr size_t kMaxUri = 2048;
constexpr size_t kMaxMediaType = 128;
constexpr size_t kMaxId = 128;
constexpr int kMaxAttachments = 20;
constexpr int kMaxListed = 1000;
// A deadline at most this far ahead (five years, one leap day included): a
// later one is a typo (seconds for milliseconds, a digit too many).
constexpr int64_t kMaxDeadlineAheadMs = int64_t{1826} * 24 * 3600 * 1000;

using RS = v1::ReceiptState;

// Which receipt states an action starts from, and where it leads.
struct ReceiptRule {
  ReceiptAction action;
  const char* name;
  uint32_t from;  // bit per RS value
  RS to;
};

constexpr uint32_t Bit(RS s) { return 1u << static_cast<int>(s); }

// clang-format off
constexpr ReceiptRule kReceiptRules[] = {
  // action                   name        from                                              to
  {ReceiptAction::kSign,     "sign",     Bit(v1::RECEIPT_STATE_PENDING),                   v1::RECEIPT_STATE_SIGNED},
  {ReceiptAction::kComplete, "complete", Bit(v1::RECEIPT_STATE_PENDING) |
                                         Bit(v1::RECEIPT_STATE_SIGNED),                    v1::RECEIPT_STATE_DONE},
};
// clang-format on

const ReceiptRule& RuleFor(ReceiptAction action) {
  for (const auto& rule : kReceiptRules) {
    if (rule.action == action) return rule;
  }
  return kReceiptRules[0];
}

Status CheckAttachments(std::string_view prefix,
                        const google::protobuf::RepeatedPtrField<v1::Attachment>& list) {
  if (list.size() > kMaxAttachments) {
    return Status::InvalidArgument(std::string(prefix) + ": at most " +
                                   std::to_string(kMaxAttachments) + " allowed, got " +
                                   std::to_string(list.size()));
  }
  for (int i = 0; i < list.size(); ++i) {
    std::string field = std::string(prefix) + "[" + std::to_string(i) + "]";
    if (list[i].uri().empty()) return Status::InvalidArgument(field + ".uri: required");
    if (Status s = CheckText(field + ".uri", list[i].uri(), kMaxUri); !s.ok()) return s;
    if (Status s = CheckText(field + ".media_type", list[i].media_type(), kMaxMediaType); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

Status OutsideIssuer(std::string_view field, std::string_view id, const v1::Caller& issuer) {
  return Status::PermissionDenied(std::string(field) + ": " + Quote(id) +
                                  " is outside the issuer's jurisdiction " +
                                  Quote(issuer.jurisdiction_id()));
}

Status CheckLevelTargets(const v1::LevelTargets& t, const v1::Caller& issuer,
                         const Topology& topology) {
  const char* field = "draft.targets.level.subtree_id";
  if (Status s = CheckId(field, t.subtree_id(), kMaxId); !s.ok()) return s;
  const v1::Jurisdiction* root = topology.Find(t.subtree_id());
  if (root == nullptr) {
    return Status::InvalidArgument(std::string(field) + ": unknown jurisdiction " +
                                   Quote(t.subtree_id()));
  }
  if (!topology.IsWithin(root->id(), issuer.jurisdiction_id())) {
    return OutsideIssuer(field, root->id(), issuer);
  }
  if (!v1::Level_IsValid(t.level()) || t.level() == v1::LEVEL_UNSPECIFIED) {
    return Status::InvalidArgument("draft.targets.level.level: required");
  }
  if (t.level() <= root->level()) {
    return Status::InvalidArgument("draft.targets.level.level: must be below the subtree's level " +
                                   v1::Level_Name(root->level()));
  }
  return Status::Ok();
}

Status CheckListed(std::string_view field,
                   const google::protobuf::RepeatedPtrField<std::string>& ids,
                   const v1::Caller& issuer, const Topology& topology, bool departments) {
  if (ids.empty()) return Status::InvalidArgument(std::string(field) + ": at least one required");
  if (ids.size() > kMaxListed) {
    return Status::InvalidArgument(std::string(field) + ": at most " + std::to_string(kMaxListed) +
                                   " allowed, got " + std::to_string(ids.size()));
  }
  std::set<std::string_view> seen;
  for (int i = 0; i < ids.size(); ++i) {
    std::string item = std::string(field) + "[" + std::to_string(i) + "]";
    if (Status s = CheckId(item, ids[i], kMaxId); !s.ok()) return s;
    if (!seen.insert(ids[i]).second) {
      return Status::InvalidArgument(item + ": " + Quote(ids[i]) + " listed twice");
    }
    bool known =
        departments ? topology.FindDepartment(ids[i]) != nullptr : topology.Find(ids[i]) != nullptr;
    if (!known) {
      return Status::InvalidArgument(
          item + ": unknown " + (departments ? "department " : "jurisdiction ") + Quote(ids[i]));
    }
    if (!topology.IsWithin(UnitJurisdiction(ids[i], topology), issuer.jurisdiction_id())) {
      return OutsideIssuer(item, ids[i], issuer);
    }
  }
  return Status::Ok();
}

Status CheckTargets(const v1::Targets& t, const v1::Caller& issuer, const Topology& topology) {
  switch (t.kind_case()) {
    case v1::Targets::kLevel:
      return CheckLevelTargets(t.level(), issuer, topology);
    case v1::Targets::kJurisdictions:
      return CheckListed("draft.targets.jurisdictions.ids", t.jurisdictions().ids(), issuer,
                         topology, false);
    case v1::Targets::kDepartments:
      return CheckListed("draft.targets.departments.ids", t.departments().ids(), issuer, topology,
                         true);
    case v1::Targets::KIND_NOT_SET:
      break;
  }
  return Status::InvalidArgument("draft.targets: required (level, jurisdictions or departments)");
}

bool IsLeaderAtOrAbove(const v1::Caller& caller, std::string_view jurisdiction,
                       const Topology& topology) {
  return caller.role() == v1::ROLE_LEADER &&
         topology.IsWithin(jurisdiction, caller.jurisdiction_id());
}

// A deadline after `now_ms` and at most kMaxDeadlineAheadMs after it.
Status CheckDeadline(std::string_view field, int64_t deadline_ms, int64_t now_ms) {
  if (deadline_ms <= now_ms) {
    return Status::InvalidArgument(std::string(field) + ": must be in the future");
  }
  if (deadline_ms - now_ms > kMaxDeadlineAheadMs) {
    return Status::InvalidArgument(std::string(field) + ": at most 5 years (" +
                                   std::to_string(kMaxDeadlineAheadMs / (24 * 3600 * 1000)) +
                                   " days) ahead, got " + std::to_string(deadline_ms));
  }
  return Status::Ok();
}

StatusOr<ReceiptTransition> ApplyReceipt(const v1::Directive& d, const v1::Receipt& r,
                                         const v1::Caller& caller, ReceiptAction action,
                                         const Topology& topology) {
  const ReceiptRule& rule = RuleFor(action);
  if (!ActsFor(caller, r.unit_id(), topology)) {
    return Status::PermissionDenied(std::string(rule.name) + ": the caller does not act for unit " +
                                    r.unit_id());
  }
  if (d.state() != v1::DIRECTIVE_STATE_ACTIVE) {
    return Status::FailedPrecondition("directive " + d.id() + " is cancelled");
  }
  if ((rule.from & Bit(r.state())) == 0) {
    return Status::FailedPrecondition(
        std::string(rule.name) + ": unit " + r.unit_id() + " has already " +
        (r.state() == v1::RECEIPT_STATE_DONE ? "reported done" : "signed"));
  }
  ReceiptTransition t;
  t.next = r;
  t.next.set_state(rule.to);
  return t;
}

void Stamp(v1::Receipt* r, const v1::Directive& d, const v1::Caller& caller, int64_t now_ms,
           bool done) {
  bool late = now_ms > d.draft().deadline_unix_ms();
  if (r->signed_at_unix_ms() == 0) {
    r->set_signed_at_unix_ms(now_ms);
    r->set_signed_by(caller.user());
    r->set_signed_late(late);
  }
  if (done) {
    r->set_done_at_unix_ms(now_ms);
    r->set_done_by(caller.user());
    r->set_done_late(late);
  }
}

v1::ProgressCounts Minus(v1::ProgressCounts a, const v1::ProgressCounts& b) {
  a.set_total(a.total() - b.total());
  a.set_signed_(a.signed_() - b.signed_());
  a.set_done(a.done() - b.done());
  a.set_signed_late(a.signed_late() - b.signed_late());
  a.set_done_late(a.done_late() - b.done_late());
  return a;
}

}  // namespace

Status CheckCanChange(const v1::Directive& d, const v1::Caller& caller, const Topology& topology) {
  if (!IsLeaderAtOrAbove(caller, d.issuer_jurisdiction_id(), topology)) {
    return Status::PermissionDenied("directive " + d.id() +
                                    ": only a leader of the issuing jurisdiction or above may "
                                    "change it");
  }
  if (d.state() != v1::DIRECTIVE_STATE_ACTIVE) {
    return Status::FailedPrecondition("directive " + d.id() + " is cancelled");
  }
  return Status::Ok();
}

StatusOr<CheckedDraft> CheckIssue(const CheckedCaller& issuer, v1::DirectiveDraft draft,
                                  const Context& ctx, int64_t now_ms) {
  const v1::Caller& caller = issuer.get();
  if (caller.role() != v1::ROLE_LEADER) {
    return Status::PermissionDenied("issue: only leaders issue directives");
  }
  if (draft.title().empty()) return Status::InvalidArgument("draft.title: required");
  if (Status s = CheckText("draft.title", draft.title(), kMaxTitle); !s.ok()) return s;
  if (Status s = CheckText("draft.text", draft.text(), kMaxText); !s.ok()) return s;
  if (Status s = CheckAttachments("draft.attachments", draft.attachments()); !s.ok()) return s;
  if (Status s = CheckDeadline("draft.deadline_unix_ms", draft.deadline_unix_ms(), now_ms);
      !s.ok()) {
    return s;
  }
  if (Status s = CheckTargets(draft.targets(), caller, ctx.topology); !s.ok()) return s;
  auto units = static_cast<int64_t>(ExpandTargets(draft.targets(), ctx.topology).size());
  if (units == 0) return Status::InvalidArgument("draft.targets: no unit matches");
  return CheckedDraft(caller, std::move(draft), units);
}

std::string DraftFingerprint(const v1::DirectiveDraft& draft) {
  Fingerprint f;
  f.Text(draft.title());
  f.Text(draft.text());
  f.Number(static_cast<uint64_t>(draft.attachments_size()));
  for (const auto& a : draft.attachments()) {
    f.Text(a.uri());
    f.Text(a.media_type());
  }
  f.Number(static_cast<uint64_t>(draft.deadline_unix_ms()));
  const v1::Targets& t = draft.targets();
  f.Number(static_cast<uint64_t>(t.kind_case()));
  if (t.has_level()) {
    f.Text(t.level().subtree_id());
    f.Number(static_cast<uint64_t>(t.level().level()));
  }
  const auto* ids = t.has_jurisdictions() ? &t.jurisdictions().ids()
                    : t.has_departments() ? &t.departments().ids()
                                          : nullptr;
  if (ids != nullptr) {
    f.Number(static_cast<uint64_t>(ids->size()));
    for (const auto& id : *ids) f.Text(id);
  }
  return f.Digest();
}

Status IssueRequestReused(std::string_view user, std::string_view request_id,
                          std::string_view directive_id) {
  return Status::AlreadyExists("request_id: " + Quote(request_id) + " of user " + Quote(user) +
                               " was already used for directive " + std::string(directive_id) +
                               " with a different draft; a new directive needs a new request id");
}

v1::Directive NewDirective(const CheckedDraft& draft, std::string id, int64_t now_ms) {
  v1::Directive d;
  d.set_id(std::move(id));
  *d.mutable_draft() = draft.get();
  d.set_issuer_user(draft.issuer().user());
  d.set_issuer_jurisdiction_id(draft.issuer().jurisdiction_id());
  d.set_issued_at_unix_ms(now_ms);
  d.set_updated_at_unix_ms(now_ms);
  d.set_state(v1::DIRECTIVE_STATE_ACTIVE);
  d.set_version(1);
  return d;
}

std::string UnitJurisdiction(std::string_view unit_id, const Topology& topology) {
  if (const v1::Department* dept = topology.FindDepartment(unit_id)) return dept->jurisdiction_id();
  return std::string(unit_id);
}

std::vector<std::string> ExpandTargets(const v1::Targets& targets, const Topology& topology,
                                       std::string_view within) {
  std::vector<std::string> out;
  auto keep = [&](std::string_view unit) {
    return within.empty() || topology.IsWithin(UnitJurisdiction(unit, topology), within);
  };
  if (targets.has_level()) {
    for (const auto* j : topology.Subtree(targets.level().subtree_id())) {
      if (j->level() == targets.level().level() && keep(j->id())) out.push_back(j->id());
    }
  }
  const auto* listed = targets.has_jurisdictions() ? &targets.jurisdictions().ids()
                       : targets.has_departments() ? &targets.departments().ids()
                                                   : nullptr;
  if (listed != nullptr) {
    for (const auto& id : *listed) {
      if (keep(id)) out.push_back(id);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

StatusOr<v1::Directive> ApplyAmend(const v1::Directive& d, const v1::Caller& caller,
                                   const v1::AmendDirective& amend, const Topology& topology,
                                   int64_t now_ms) {
  if (Status s = CheckCanChange(d, caller, topology); !s.ok()) return s;
  if (amend.deadline_unix_ms() == 0 && amend.text().empty()) {
    return Status::InvalidArgument("amend: set deadline_unix_ms or text");
  }
  if (amend.deadline_unix_ms() != 0) {
    if (Status s = CheckDeadline("amend.deadline_unix_ms", amend.deadline_unix_ms(), now_ms);
        !s.ok()) {
      return s;
    }
  }
  if (Status s = CheckText("amend.text", amend.text(), kMaxText); !s.ok()) return s;
  v1::Directive next = d;
  if (amend.deadline_unix_ms() != 0)
    next.mutable_draft()->set_deadline_unix_ms(amend.deadline_unix_ms());
  if (!amend.text().empty()) next.mutable_draft()->set_text(amend.text());
  next.set_version(d.version() + 1);
  next.set_updated_at_unix_ms(now_ms);
  return next;
}

StatusOr<v1::Directive> ApplyCancel(const v1::Directive& d, const v1::Caller& caller,
                                    const v1::CancelDirective& cancel, const Topology& topology,
                                    int64_t now_ms) {
  if (Status s = CheckCanChange(d, caller, topology); !s.ok()) return s;
  if (cancel.reason().empty()) return Status::InvalidArgument("cancel.reason: required");
  if (Status s = CheckText("cancel.reason", cancel.reason(), kMaxNote); !s.ok()) return s;
  v1::Directive next = d;
  next.set_state(v1::DIRECTIVE_STATE_CANCELLED);
  next.set_cancel_reason(cancel.reason());
  next.set_version(d.version() + 1);
  next.set_updated_at_unix_ms(now_ms);
  return next;
}

v1::Receipt NewReceipt(const std::string& directive_id, const std::string& unit_id,
                       const Topology& topology) {
  v1::Receipt r;
  r.set_directive_id(directive_id);
  r.set_unit_id(unit_id);
  r.set_jurisdiction_id(UnitJurisdiction(unit_id, topology));
  r.set_state(v1::RECEIPT_STATE_PENDING);
  return r;
}

bool ActsFor(const v1::Caller& caller, std::string_view unit_id, const Topology& topology) {
  if (topology.FindDepartment(unit_id) != nullptr) {
    return caller.role() == v1::ROLE_DEPARTMENT && caller.department_id() == unit_id;
  }
  bool member = caller.role() == v1::ROLE_GRID_WORKER || caller.role() == v1::ROLE_STAFF ||
                caller.role() == v1::ROLE_LEADER;
  return member && caller.jurisdiction_id() == unit_id;
}

StatusOr<ReceiptTransition> ApplySign(const v1::Directive& d, const v1::Receipt& r,
                                      const v1::Caller& caller, const v1::SignReceipt& sign,
                                      const Topology& topology, int64_t now_ms) {
  if (Status s = CheckText("sign.note", sign.note(), kMaxNote); !s.ok()) return s;
  auto t = ApplyReceipt(d, r, caller, ReceiptAction::kSign, topology);
  if (!t.ok()) return t;
  Stamp(&t->next, d, caller, now_ms, false);
  if (!sign.note().empty()) t->next.set_note(sign.note());
  t->delta = Minus(CountsOf(t->next), CountsOf(r));
  return t;
}

StatusOr<ReceiptTransition> ApplyComplete(const v1::Directive& d, const v1::Receipt& r,
                                          const v1::Caller& caller,
                                          const v1::CompleteReceipt& complete,
                                          const Topology& topology, int64_t now_ms) {
  if (Status s = CheckText("complete.note", complete.note(), kMaxNote); !s.ok()) return s;
  if (Status s = CheckAttachments("complete.attachments", complete.attachments()); !s.ok()) {
    return s;
  }
  auto t = ApplyReceipt(d, r, caller, ReceiptAction::kComplete, topology);
  if (!t.ok()) return t;
  Stamp(&t->next, d, caller, now_ms, true);
  if (!complete.note().empty()) t->next.set_note(complete.note());
  *t->next.mutable_attachments() = complete.attachments();
  t->delta = Minus(CountsOf(t->next), CountsOf(r));
  return t;
}

v1::ProgressCounts CountsOf(const v1::Receipt& r) {
  v1::ProgressCounts c;
  c.set_total(1);
  c.set_signed_(r.state() == v1::RECEIPT_STATE_SIGNED || r.state() == v1::RECEIPT_STATE_DONE);
  c.set_done(r.state() == v1::RECEIPT_STATE_DONE);
  c.set_signed_late(r.signed_late());
  c.set_done_late(r.done_late());
  return c;
}

void AddCounts(v1::ProgressCounts* into, const v1::ProgressCounts& delta) {
  into->set_total(into->total() + delta.total());
  into->set_signed_(into->signed_() + delta.signed_());
  into->set_done(into->done() + delta.done());
  into->set_signed_late(into->signed_late() + delta.signed_late());
  into->set_done_late(into->done_late() + delta.done_late());
}

int64_t Overdue(const v1::Directive& d, const v1::ProgressCounts& counts, int64_t now_ms) {
  if (d.state() != v1::DIRECTIVE_STATE_ACTIVE || now_ms <= d.draft().deadline_unix_ms()) return 0;
  return counts.total() - counts.done();
}

}  // namespace whistle::core
