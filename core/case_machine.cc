// The case state machine.
//
// report (new -> REPORTED) is CheckReport's: a grid worker, staff or leader
// whose jurisdiction holds the grid; intake routes it to the owner. Every
// other command goes through Apply, which consults one table, kRules below.
// This copy of it is TransitionTable()'s output (core_test fails when they
// differ, and prints the text to paste here):
//
// command    from state(s)             who may act                  to state
// ---------  ------------------------  ---------------------------  ------------------------------
// accept     REPORTED                  authority over owner         ACCEPTED
// dispatch   ACCEPTED, DISPATCHED,     authority over owner         DISPATCHED; replaces a handler
//            IN_PROGRESS                                            that has not reported in
// keep       ACCEPTED                  authority over owner         IN_PROGRESS
// escalate   REPORTED, ACCEPTED,       authority over owner         ACCEPTED at the parent;
//            DISPATCHED, IN_PROGRESS                                pending summons dropped,
//                                                                   no-shows kept
// transfer   REPORTED, ACCEPTED,       authority over owner         REPORTED at a unit inside the
//            DISPATCHED, IN_PROGRESS                                parent's subtree (down or
//                                                                   sideways), or same state with
//                                                                   a corrected category
// whistle    REPORTED, ACCEPTED,       authority over owner         IN_PROGRESS; the owner must be
//            DISPATCHED, IN_PROGRESS                                at township level or above
// report_in  DISPATCHED, IN_PROGRESS   a summoned department        IN_PROGRESS; needs its pending
//                                                                   summons
// refuse     DISPATCHED, IN_PROGRESS   a summoned department        ACCEPTED (the owner
//                                                                   re-dispatches); only the
//                                                                   dispatched handler, not a
//                                                                   whistled one
// resolve    DISPATCHED, IN_PROGRESS   a summoned department        its summons done (it must have
//                                                                   reported in); RESOLVED once
//                                                                   all are done
// resolve    IN_PROGRESS               authority over owner         RESOLVED; closes the summons
//                                                                   that reported in (the others
//                                                                   stay pending or no-shows)
// verify     RESOLVED                  the grid worker of the       VERIFIED, or IN_PROGRESS when
//                                      case's grid, or              not fixed
//                                      staff/leader of a strict
//                                      ancestor of the owner;
//                                      never a handler
// close      VERIFIED                  authority over owner         CLOSED
// evaluate   CLOSED                    the reporter, or             EVALUATED; not after the
//                                      (staff-reported cases)       evaluate deadline
//                                      authority with on_behalf;
//                                      never a handler
// return     REPORTED, ACCEPTED        authority over owner         REPORTED at the parent
// reject     REPORTED, ACCEPTED        authority over owner         REJECTED
// supervise  any open state            a leader of a strict         unchanged
//                                      ancestor of the owner
// overdue    any state                 SystemCaller() only          needs a passed deadline; a
//                                                                   missed accept, dispatch or
//                                                                   resolve escalates (as
//                                                                   escalate; REPORTED stays
//                                                                   REPORTED) up to the policy's
//                                                                   escalate_up_to, else notifies
//                                                                   the owner's parent; otherwise
//                                                                   unchanged
//
// A department caller takes the command's "a summoned department" row when
// there is one (resolve has two rows); everyone else takes its first row.
// "Authority over owner": role STAFF or LEADER and the caller's jurisdiction
// is the owner or one of its ancestors. The order of checks: the caller is
// well formed, the command is well formed (CheckCommand, INVALID_ARGUMENT),
// the caller may act (PERMISSION_DENIED), the state fits (FAILED_
// PRECONDITION), then the command's own rules. A deadline counts as passed
// when now > deadline, so `now == deadline` is still in time.
//
// Dispatch and whistle summon a department hanging off the owner or an
// ancestor; the owner's own staff and county or city leaders may also reach
// down to departments of jurisdictions inside the owner's subtree.
// Supervision is a leader's; staff keep the daily case work.
#include "core/case_machine.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/fingerprint.h"
#include "core/text.h"

namespace whistle::core {
namespace {

constexpr size_t kMaxUser = 128;
constexpr size_t kMaxRequestId = 128;
constexpr size_t kMaxText = 4000;
constexpr size_t kMaxNote = 4000;
constexpr size_t kMaxAddress = 1024;
constexpr size_t kMaxUri = 2048;
constexpr size_t kMaxMediaType = 128;
constexpr int kMaxAttachments = 20;
constexpr int kMaxWhistleDepartments = 64;
constexpr size_t kMaxDeadlineName = 64;
constexpr char kSystemUser[] = "system";

using State = v1::CaseState;

std::string Name(State s) { return v1::CaseState_Name(s); }

// ---- Validation helpers ----

// Free text (notes, reasons, addresses): at most `max` bytes of valid UTF-8
// without control characters. Every string a caller sends passes here or
// CheckId before it can reach a stored record: a proto3 string that is not
// UTF-8 serialises, but never parses again.
Status CheckLength(std::string_view field, std::string_view value, size_t max) {
  return CheckText(field, value, max);
}

Status CheckRequired(std::string_view field, std::string_view value, size_t max) {
  if (value.empty()) return Status::InvalidArgument(std::string(field) + ": required");
  return CheckText(field, value, max);
}

Status CheckDepartment(std::string_view field, const std::string& id, const Context& ctx) {
  if (id.empty()) return Status::InvalidArgument(std::string(field) + ": required");
  if (ctx.topology.FindDepartment(id) == nullptr) {
    return Status::InvalidArgument(std::string(field) + ": unknown department " + Quote(id));
  }
  return Status::Ok();
}

Status ValidateAttachments(const v1::ReportCommand& r) {
  if (r.attachments_size() > kMaxAttachments) {
    return Status::InvalidArgument("report.attachments: at most " +
                                   std::to_string(kMaxAttachments) + " allowed, got " +
                                   std::to_string(r.attachments_size()));
  }
  for (int i = 0; i < r.attachments_size(); ++i) {
    std::string field = "report.attachments[" + std::to_string(i) + "]";
    Status s = CheckRequired(field + ".uri", r.attachments(i).uri(), kMaxUri);
    if (!s.ok()) return s;
    s = CheckLength(field + ".media_type", r.attachments(i).media_type(), kMaxMediaType);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ValidatePlace(const v1::Place& place, const Context& ctx) {
  if (place.grid_id().empty()) {
    return Status::InvalidArgument("report.place.grid_id: required");
  }
  const v1::Jurisdiction* grid = ctx.topology.Find(place.grid_id());
  if (grid == nullptr) {
    return Status::InvalidArgument("report.place.grid_id: unknown grid " + Quote(place.grid_id()));
  }
  if (grid->level() != v1::LEVEL_GRID) {
    return Status::InvalidArgument("report.place.grid_id: " + Quote(place.grid_id()) + " is " +
                                   v1::Level_Name(grid->level()) + ", not a grid");
  }
  Status s = CheckLength("report.place.address", place.address(), kMaxAddress);
  if (!s.ok()) return s;
  if (!(place.latitude() >= -90 && place.latitude() <= 90)) {
    return Status::InvalidArgument("report.place.latitude: must be -90..90, got " +
                                   std::to_string(place.latitude()));
  }
  if (!(place.longitude() >= -180 && place.longitude() <= 180)) {
    return Status::InvalidArgument("report.place.longitude: must be -180..180, got " +
                                   std::to_string(place.longitude()));
  }
  return Status::Ok();
}

Status ValidateWhistle(const v1::WhistleCommand& w, const Context& ctx) {
  if (w.department_ids_size() == 0) {
    return Status::InvalidArgument("command.whistle.department_ids: at least one required");
  }
  if (w.department_ids_size() > kMaxWhistleDepartments) {
    return Status::InvalidArgument("command.whistle.department_ids: at most " +
                                   std::to_string(kMaxWhistleDepartments) + " allowed");
  }
  std::unordered_set<std::string> seen;
  for (int i = 0; i < w.department_ids_size(); ++i) {
    std::string field = "command.whistle.department_ids[" + std::to_string(i) + "]";
    Status s = CheckDepartment(field, w.department_ids(i), ctx);
    if (!s.ok()) return s;
    if (!seen.insert(w.department_ids(i)).second) {
      return Status::InvalidArgument(field + ": duplicate " + Quote(w.department_ids(i)));
    }
  }
  return CheckLength("command.whistle.note", w.note(), kMaxNote);
}

Status ValidateReason(std::string_view field, std::string_view reason) {
  return CheckRequired(field, reason, kMaxNote);
}

Status ValidateTransfer(const v1::TransferCommand& t, const Context& ctx) {
  if (t.to_jurisdiction_id().empty() && t.category().empty()) {
    return Status::InvalidArgument(
        "command.transfer: set to_jurisdiction_id (hand the case down or sideways) and/or "
        "category (correct it)");
  }
  if (!t.to_jurisdiction_id().empty()) {
    if (Status s = CheckId("command.transfer.to_jurisdiction_id", t.to_jurisdiction_id(), kMaxUser);
        !s.ok()) {
      return s;
    }
    const v1::Jurisdiction* j = ctx.topology.Find(t.to_jurisdiction_id());
    if (j == nullptr) {
      return Status::InvalidArgument("command.transfer.to_jurisdiction_id: unknown jurisdiction " +
                                     Quote(t.to_jurisdiction_id()));
    }
    if (j->level() == v1::LEVEL_GRID) {
      return Status::InvalidArgument(
          "command.transfer.to_jurisdiction_id: " + Quote(t.to_jurisdiction_id()) +
          " is a grid; a case is owned by a community or above");
    }
  }
  if (!t.category().empty()) {
    if (Status s = CheckId("command.transfer.category", t.category(), kMaxUser); !s.ok()) return s;
    if (!ctx.policy.KnownCategory(t.category())) {
      return Status::InvalidArgument("command.transfer.category: unknown category " +
                                     Quote(t.category()));
    }
  }
  return ValidateReason("command.transfer.reason", t.reason());
}

// ---- Transition plumbing ----

bool IsSystem(const v1::Caller& caller) {
  return caller.user() == kSystemUser && caller.role() == v1::ROLE_UNSPECIFIED;
}

bool IsStaff(const v1::Caller& caller) {
  return caller.role() == v1::ROLE_STAFF || caller.role() == v1::ROLE_LEADER;
}

bool HasAuthority(const v1::Caller& caller, const v1::Case& c, const Context& ctx) {
  return IsStaff(caller) && ctx.topology.IsWithin(c.owner_id(), caller.jurisdiction_id());
}

Status RequireAuthority(std::string_view action, const v1::Caller& caller, const v1::Case& c,
                        const Context& ctx) {
  if (!IsStaff(caller)) {
    return Status::PermissionDenied("role " + v1::Role_Name(caller.role()) + " may not " +
                                    std::string(action) + " case " + c.id());
  }
  if (!HasAuthority(caller, c, ctx)) {
    return Status::PermissionDenied("caller jurisdiction " + Quote(caller.jurisdiction_id()) +
                                    " has no authority over owner " + Quote(c.owner_id()) +
                                    " of case " + c.id());
  }
  return Status::Ok();
}

Status WrongState(const v1::Case& c, std::string_view why) {
  return Status::FailedPrecondition("case " + c.id() + " is " + Name(c.state()) + "; " +
                                    std::string(why));
}

// Closed: done (its part finished) or refused (退单); neither is awaited any more.
bool Closed(const v1::Summons& s) { return s.done_at_ms() != 0 || s.refused_at_ms() != 0; }

// Summoned, not yet reported in, not closed (a no-show may still come late).
bool AwaitingReportIn(const v1::Summons& s) { return s.reported_in_at_ms() == 0 && !Closed(s); }

// Awaiting report-in and not yet a no-show: its deadline has not passed.
bool Pending(const v1::Summons& s) { return AwaitingReportIn(s) && !s.no_show(); }

int64_t NextDeadline(const v1::Case& c) {
  int64_t next = 0;
  auto consider = [&next](int64_t d) {
    if (d > 0 && (next == 0 || d < next)) next = d;
  };
  consider(c.deadlines().accept_by_ms());
  consider(c.deadlines().dispatch_by_ms());
  consider(c.deadlines().resolve_by_ms());
  consider(c.deadlines().verify_by_ms());
  consider(c.deadlines().evaluate_by_ms());
  for (const auto& s : c.summons()) {
    if (AwaitingReportIn(s)) consider(s.report_in_by_ms());
  }
  return next;
}

Transition Begin(const v1::Case& current, v1::TransitionKind kind, const v1::Caller& caller,
                 int64_t now_ms) {
  Transition t;
  t.next = current;
  t.entry.set_case_id(current.id());
  t.entry.set_kind(kind);
  t.entry.set_from_state(current.state());
  *t.entry.mutable_actor() = caller;
  t.entry.set_from_jurisdiction_id(current.owner_id());
  t.entry.set_at_ms(now_ms);
  return t;
}

Transition Finish(Transition t, std::string_view note, int64_t now_ms) {
  // The dispatch window exists only while the case waits, accepted, for a decision.
  if (t.next.state() != v1::CASE_STATE_ACCEPTED) t.next.mutable_deadlines()->set_dispatch_by_ms(0);
  // A standing supervision notice (督办) ends when the case changes owner, is
  // resolved, verified, closed or rejected, or leaves RESOLVED (verified or
  // found not fixed); an overdue transition raising a new one keeps it.
  const v1::CaseState from = t.entry.from_state();
  const v1::CaseState to = t.next.state();
  const bool raised =
      t.entry.kind() == v1::TRANSITION_KIND_OVERDUE && !t.entry.notice_to_id().empty();
  if (!raised && !t.next.notice_to_id().empty() &&
      (t.next.owner_id() != t.entry.from_jurisdiction_id() ||
       (to != from && (to >= v1::CASE_STATE_RESOLVED || from == v1::CASE_STATE_RESOLVED)))) {
    t.next.clear_notice_to_id();
    t.next.clear_noticed_at_ms();
    t.next.clear_notice_missed();
    t.next.clear_notices();
  }
  t.next.set_history_length(t.next.history_length() + 1);
  t.next.set_updated_at_ms(now_ms);
  t.next.set_next_deadline_ms(NextDeadline(t.next));
  t.entry.set_seq(t.next.history_length());
  t.entry.set_to_state(t.next.state());
  t.entry.set_jurisdiction_id(t.next.owner_id());
  t.entry.set_note(std::string(note));
  return t;
}

// Moves ownership one level up; the caller checked that a parent exists.
void HandOver(Transition& t, const v1::Jurisdiction& parent) {
  t.next.set_owner_id(parent.id());
  t.effects.handover_to = parent.id();
}

// The summons `dept` may report in on (a no-show too: late, it stays a no-show).
v1::Summons* PendingSummons(v1::Case& c, std::string_view dept) {
  for (auto& s : *c.mutable_summons()) {
    if (s.department_id() == dept && AwaitingReportIn(s)) return &s;
  }
  return nullptr;
}

v1::Summons* ActiveSummons(v1::Case& c, std::string_view dept) {
  for (auto& s : *c.mutable_summons()) {
    if (s.department_id() == dept && s.reported_in_at_ms() != 0 && !Closed(s)) return &s;
  }
  return nullptr;
}

// Drops the summons still waiting for a report-in whose deadline has not
// passed (escalation, transfer, re-dispatch: the new owner decides afresh);
// no-shows, reported-in, done and refused summons stay on record. Returns
// the departments dropped.
std::vector<std::string> WithdrawPending(v1::Case& c, std::string_view only_dept = {}) {
  std::vector<std::string> dropped;
  auto* all = c.mutable_summons();
  for (int i = all->size() - 1; i >= 0; --i) {
    const v1::Summons& s = all->Get(i);
    if (!Pending(s)) continue;
    if (!only_dept.empty() && s.department_id() != only_dept) continue;
    dropped.insert(dropped.begin(), s.department_id());
    all->DeleteSubrange(i, 1);
  }
  return dropped;
}

// Staff and leaders who handle the case: they may not verify or rate it.
void AddHandler(Transition& t, const v1::Caller& caller) {
  if (caller.role() != v1::ROLE_STAFF && caller.role() != v1::ROLE_LEADER) return;
  for (const auto& u : t.next.handler_users()) {
    if (u == caller.user()) return;
  }
  t.next.add_handler_users(caller.user());
}

bool IsHandler(const v1::Case& c, std::string_view user) {
  return std::find(c.handler_users().begin(), c.handler_users().end(), user) !=
         c.handler_users().end();
}

bool WasSummoned(const v1::Case& c, std::string_view dept) {
  for (const auto& s : c.summons()) {
    if (s.department_id() == dept) return true;
  }
  return false;
}

bool HasOpenSummons(const v1::Case& c, std::string_view dept) {
  for (const auto& s : c.summons()) {
    if (s.department_id() == dept && !Closed(s)) return true;
  }
  return false;
}

// Whistling downward, into the owner's subtree, is for the owner's own staff
// and for county and city leaders (with authority over the owner).
bool MaySummonDownward(const v1::Case& c, const v1::Caller& caller, const Context& ctx) {
  if (caller.role() == v1::ROLE_STAFF) return caller.jurisdiction_id() == c.owner_id();
  if (caller.role() != v1::ROLE_LEADER) return false;
  const v1::Jurisdiction* j = ctx.topology.Find(caller.jurisdiction_id());
  return j != nullptr && j->level() != v1::LEVEL_UNSPECIFIED && j->level() <= v1::LEVEL_COUNTY;
}

// A department may be summoned to a case when it hangs off the owner or an
// ancestor (a street cannot summon another street's police station), or off
// a jurisdiction inside the owner's subtree when MaySummonDownward.
bool CanSummon(const v1::Case& c, std::string_view dept, const v1::Caller& caller,
               const Context& ctx) {
  const v1::Department* d = ctx.topology.FindDepartment(dept);
  if (d == nullptr) return false;
  if (ctx.topology.IsWithin(c.owner_id(), d->jurisdiction_id())) return true;
  return ctx.topology.IsWithin(d->jurisdiction_id(), c.owner_id()) &&
         MaySummonDownward(c, caller, ctx);
}

std::string NotSummonable(const v1::Case& c) {
  return " hangs neither off owner " + Quote(c.owner_id()) +
         " or an ancestor, nor (for the owner's staff and county or city leaders) off a "
         "jurisdiction inside the owner's subtree";
}

void AddSummons(Transition& t, const std::string& dept, int64_t now_ms, const Context& ctx) {
  auto* s = t.next.add_summons();
  s->set_department_id(dept);
  s->set_summoned_at_ms(now_ms);
  s->set_report_in_by_ms(ctx.policy.ReportInBy(t.next.category(), t.next.severity(), now_ms));
  t.effects.summon.push_back(dept);
  t.entry.add_department_ids(dept);
}

void MarkResolved(Transition& t, int64_t now_ms, const Context& ctx) {
  auto* d = t.next.mutable_deadlines();
  // A resolve deadline that passed once makes it late, whatever new deadline
  // the owner got after the miss.
  bool in_time =
      !t.next.resolve_missed() && (d->resolve_by_ms() == 0 || now_ms <= d->resolve_by_ms());
  t.next.set_resolved_in_time(in_time);
  d->set_resolve_by_ms(0);
  d->set_verify_by_ms(ctx.policy.VerifyBy(t.next.category(), t.next.severity(), now_ms));
  t.next.set_state(v1::CASE_STATE_RESOLVED);
}

bool Hosted(const std::string& id, const Context& ctx) {
  return ctx.hosted_root.empty() || ctx.topology.IsWithin(id, ctx.hosted_root);
}

// The parent a case may be handed to: none at the top of the tree, and none
// above the subtree this node hosts.
StatusOr<const v1::Jurisdiction*> MovableParent(const v1::Case& c, const Context& ctx) {
  const v1::Jurisdiction* parent = ctx.topology.Parent(c.owner_id());
  if (parent == nullptr) {
    return WrongState(c, "owner " + Quote(c.owner_id()) + " is already at the top");
  }
  if (!Hosted(parent->id(), ctx)) {
    return WrongState(
        c, "parent " + Quote(parent->id()) +
               " is hosted by another node and this node has no parent link (--parent-address)");
  }
  return parent;
}

// ---- The transition table: which states, who may act ----

// A set of states, one bit per CaseState value.
using States = uint32_t;
constexpr States kAnyState = ~States{0};

constexpr States Of(std::initializer_list<State> states) {
  States set = 0;
  for (State s : states) set |= States{1} << s;
  return set;
}

constexpr States kOpenStates =
    Of({v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED, v1::CASE_STATE_DISPATCHED,
        v1::CASE_STATE_IN_PROGRESS, v1::CASE_STATE_RESOLVED, v1::CASE_STATE_VERIFIED});
constexpr States kActiveStates = Of({v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED,
                                     v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS});

bool Fits(States set, State s) {
  if (set == kAnyState) return true;
  return s >= 0 && s < 32 && ((set >> s) & 1) != 0;
}

// Who may issue a command; anyone else gets PERMISSION_DENIED.
enum class Who {
  kAuthority,           // staff/leader of the owner or an ancestor
  kSummonedDepartment,  // a department summoned to the case
  kVerifier,            // the worker of the case's grid, or staff/leader above the owner
  kEvaluator,           // the reporter as it reported, or authority rating on_behalf
  kHigherLevel,         // a leader of a strict ancestor of the owner
  kSystem,              // SystemCaller(), for deadlines
};

struct Rule {
  v1::Command::KindCase kind;
  std::string_view name;  // as messages name the command
  States from;            // states the command fits
  Who who;
  std::string_view to;  // what it leads to: documentation, the command's function decides
};

constexpr Rule kRules[] = {
    {v1::Command::kAccept, "accept", Of({v1::CASE_STATE_REPORTED}), Who::kAuthority, "ACCEPTED"},
    {v1::Command::kDispatch, "dispatch",
     Of({v1::CASE_STATE_ACCEPTED, v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}),
     Who::kAuthority, "DISPATCHED; replaces a handler that has not reported in"},
    {v1::Command::kKeep, "keep", Of({v1::CASE_STATE_ACCEPTED}), Who::kAuthority, "IN_PROGRESS"},
    {v1::Command::kEscalate, "escalate", kActiveStates, Who::kAuthority,
     "ACCEPTED at the parent; pending summons dropped, no-shows kept"},
    {v1::Command::kTransfer, "transfer", kActiveStates, Who::kAuthority,
     "REPORTED at a unit inside the parent's subtree (down or sideways), or same state with a "
     "corrected category"},
    {v1::Command::kWhistle, "whistle", kActiveStates, Who::kAuthority,
     "IN_PROGRESS; the owner must be at township level or above"},
    {v1::Command::kReportIn, "report_in",
     Of({v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}), Who::kSummonedDepartment,
     "IN_PROGRESS; needs its pending summons"},
    {v1::Command::kRefuse, "refuse", Of({v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}),
     Who::kSummonedDepartment,
     "ACCEPTED (the owner re-dispatches); only the dispatched handler, not a whistled one"},
    {v1::Command::kResolve, "resolve", Of({v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}),
     Who::kSummonedDepartment,
     "its summons done (it must have reported in); RESOLVED once all are done"},
    {v1::Command::kResolve, "resolve", Of({v1::CASE_STATE_IN_PROGRESS}), Who::kAuthority,
     "RESOLVED; closes the summons that reported in (the others stay pending or no-shows)"},
    {v1::Command::kVerify, "verify", Of({v1::CASE_STATE_RESOLVED}), Who::kVerifier,
     "VERIFIED, or IN_PROGRESS when not fixed"},
    {v1::Command::kClose, "close", Of({v1::CASE_STATE_VERIFIED}), Who::kAuthority, "CLOSED"},
    {v1::Command::kEvaluate, "evaluate", Of({v1::CASE_STATE_CLOSED}), Who::kEvaluator,
     "EVALUATED; not after the evaluate deadline"},
    {v1::Command::kReturnCase, "return", Of({v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED}),
     Who::kAuthority, "REPORTED at the parent"},
    {v1::Command::kReject, "reject", Of({v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED}),
     Who::kAuthority, "REJECTED"},
    {v1::Command::kSupervise, "supervise", kOpenStates, Who::kHigherLevel, "unchanged"},
    {v1::Command::kOverdue, "overdue", kAnyState, Who::kSystem,
     "needs a passed deadline; a missed accept, dispatch or resolve escalates (as escalate; "
     "REPORTED stays REPORTED) up to the policy's escalate_up_to, else notifies the owner's "
     "parent; otherwise unchanged"},
};

std::string_view Describe(Who who) {
  switch (who) {
    case Who::kAuthority:
      return "authority over owner";
    case Who::kSummonedDepartment:
      return "a summoned department";
    case Who::kVerifier:
      return "the grid worker of the case's grid, or staff/leader of a strict ancestor of the "
             "owner; never a handler";
    case Who::kEvaluator:
      return "the reporter, or (staff-reported cases) authority with on_behalf; never a "
             "handler";
    case Who::kHigherLevel:
      return "a leader of a strict ancestor of the owner";
    case Who::kSystem:
      return "SystemCaller() only";
  }
  return "";
}

std::string Describe(States from) {
  if (from == kAnyState) return "any state";
  if (from == kOpenStates) return "any open state";
  std::string out;
  for (int s = 0; s < 32; ++s) {
    if (((from >> s) & 1) == 0) continue;
    if (!out.empty()) out += ", ";
    out += Name(static_cast<State>(s)).substr(std::string_view("CASE_STATE_").size());
  }
  return out;
}

// The row of `kind` for `caller`: a department takes the command's
// kSummonedDepartment row when there is one, everyone else the first row.
const Rule* RuleFor(v1::Command::KindCase kind, const v1::Caller& caller) {
  const Rule* first = nullptr;
  for (const Rule& rule : kRules) {
    if (rule.kind != kind) continue;
    if (first == nullptr) first = &rule;
    if ((rule.who == Who::kSummonedDepartment) == (caller.role() == v1::ROLE_DEPARTMENT)) {
      return &rule;
    }
  }
  return first;
}

// PERMISSION_DENIED unless `caller` is who `rule` names.
Status CheckWho(const Rule& rule, const v1::Caller& caller, const v1::Case& c, const Context& ctx,
                const v1::Command* command) {
  switch (rule.who) {
    case Who::kAuthority:
      return RequireAuthority(rule.name, caller, c, ctx);
    case Who::kSummonedDepartment:
      if (caller.role() != v1::ROLE_DEPARTMENT) {
        return Status::PermissionDenied("role " + v1::Role_Name(caller.role()) + " may not " +
                                        std::string(rule.name) +
                                        "; only a summoned department can");
      }
      if (!WasSummoned(c, caller.department_id())) {
        return Status::PermissionDenied("department " + Quote(caller.department_id()) +
                                        " was not summoned to case " + c.id());
      }
      return Status::Ok();
    case Who::kVerifier:
      if (IsHandler(c, caller.user())) {
        return Status::PermissionDenied(
            "anti-gaming: user " + Quote(caller.user()) + " handled case " + c.id() +
            " (accepted, dispatched, kept, whistled, transferred or resolved it) and may not " +
            std::string(rule.name) + " it");
      }
      if (caller.role() == v1::ROLE_GRID_WORKER &&
          caller.jurisdiction_id() == c.place().grid_id()) {
        return Status::Ok();
      }
      if (IsStaff(caller) && caller.jurisdiction_id() != c.owner_id() &&
          ctx.topology.IsWithin(c.owner_id(), caller.jurisdiction_id())) {
        return Status::Ok();
      }
      return Status::PermissionDenied(
          "anti-gaming: case " + c.id() + " is verified by the grid worker of grid " +
          Quote(c.place().grid_id()) + " or by staff/leader of a level above owner " +
          Quote(c.owner_id()) + ", not by " + v1::Role_Name(caller.role()) + " of " +
          Quote(caller.role() == v1::ROLE_DEPARTMENT ? caller.department_id()
                                                     : caller.jurisdiction_id()));
    case Who::kEvaluator: {
      if (IsHandler(c, caller.user())) {
        return Status::PermissionDenied(
            "anti-gaming: user " + Quote(caller.user()) + " handled case " + c.id() +
            " (accepted, dispatched, kept, whistled, transferred or resolved it) and may not " +
            std::string(rule.name) + " it");
      }
      // The reporter as it reported: the same user in another role (a staff
      // token of the grid worker who reported) acts by that role's rights only.
      bool on_behalf =
          command != nullptr && command->has_evaluate() && command->evaluate().on_behalf();
      if (caller.user() == c.reporter() && caller.role() == c.reporter_role()) {
        // The grid worker who reported gives the resident's own answer: a
        // rating it marks on_behalf would be counted as the resident's own.
        if (on_behalf && c.reporter_role() == v1::ROLE_GRID_WORKER) {
          return Status::PermissionDenied(
              "anti-gaming: command.evaluate.on_behalf: grid worker " + Quote(caller.user()) +
              " reported case " + c.id() +
              " and rates it with the resident's own answer, never on their behalf; send it "
              "without on_behalf");
        }
        return Status::Ok();
      }
      if (c.reporter_role() == v1::ROLE_GRID_WORKER) {
        // The grid worker asks the resident; a rating by anyone else would
        // take the resident's place (and end the window before they answer).
        return Status::PermissionDenied(
            "anti-gaming: case " + c.id() + " was reported by grid worker " + Quote(c.reporter()) +
            ", who rates it for the resident; a rating on the resident's behalf is for cases "
            "staff took in (hotline or desk)");
      }
      if (Status s = RequireAuthority(rule.name, caller, c, ctx); !s.ok()) return s;
      if (!on_behalf) {
        return Status::PermissionDenied(
            "anti-gaming: only the reporter rates case " + c.id() +
            "; staff rating for a resident who cannot must set on_behalf (whistlectl evaluate "
            "--on-behalf), which is recorded and reported apart");
      }
      return Status::Ok();
    }
    case Who::kHigherLevel:
      // Supervision (督办) is a leader's: staff keep the daily case work.
      if (caller.role() != v1::ROLE_LEADER) {
        return Status::PermissionDenied("role " + v1::Role_Name(caller.role()) + " may not " +
                                        std::string(rule.name) + "; only a leader of a level " +
                                        "above the owner supervises");
      }
      if (caller.jurisdiction_id() != c.owner_id() &&
          ctx.topology.IsWithin(c.owner_id(), caller.jurisdiction_id())) {
        return Status::Ok();
      }
      return Status::PermissionDenied("caller jurisdiction " + Quote(caller.jurisdiction_id()) +
                                      " (" + v1::Role_Name(caller.role()) +
                                      ") is not above owner " + Quote(c.owner_id()) +
                                      "; only a higher level supervises");
    case Who::kSystem:
      if (IsSystem(caller)) return Status::Ok();
      return Status::PermissionDenied(std::string(rule.name) +
                                      " is recorded by the node itself, not by " +
                                      Quote(caller.user()));
  }
  return Status::Internal("unknown who-rule of " + std::string(rule.name));
}

// FAILED_PRECONDITION naming the state unless the case is in one `rule` fits.
Status CheckFrom(const Rule& rule, const v1::Case& c) {
  if (Fits(rule.from, c.state())) return Status::Ok();
  if (rule.from == kOpenStates) {
    return WrongState(c, std::string(rule.name) + " needs an open case");
  }
  std::string needs;
  for (int s = 0; s < 32; ++s) {
    if (((rule.from >> s) & 1) == 0) continue;
    if (!needs.empty()) needs += " or ";
    needs += Name(static_cast<State>(s));
  }
  return WrongState(c, std::string(rule.name) + " needs " + needs);
}

// Word-wraps `text` to lines of at most `width` (longer words stay whole).
std::vector<std::string> Wrap(std::string_view text, size_t width) {
  std::vector<std::string> lines(1);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (!lines.back().empty() && lines.back().size() + 1 + word.size() > width) {
      lines.emplace_back();
    }
    if (!lines.back().empty()) lines.back() += ' ';
    lines.back() += word;
  }
  return lines;
}

// ---- One function per command (after the table's checks) ----

using Result = StatusOr<Transition>;

// The policy's deadline for `step` of case `c`, from `now`.
int64_t AcceptBy(const v1::Case& c, int64_t now, const Context& ctx) {
  return ctx.policy.AcceptBy(c.category(), c.severity(), now);
}
int64_t DispatchBy(const v1::Case& c, int64_t now, const Context& ctx) {
  return ctx.policy.DispatchBy(c.category(), c.severity(), now);
}
int64_t ResolveBy(const v1::Case& c, int64_t now, const Context& ctx) {
  return ctx.policy.ResolveBy(c.category(), c.severity(), now);
}

// Accepting (or taking over by escalation or whistle) is in time when no
// accept deadline of the case ever passed and the current one has not.
bool AcceptInTime(const v1::Case& c, int64_t now) {
  int64_t by = c.deadlines().accept_by_ms();
  return !c.accept_missed() && (by == 0 || now <= by);
}

Result Accept(const v1::Case& c, const v1::AcceptCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_ACCEPT, caller, now);
  auto* d = t.next.mutable_deadlines();
  t.next.set_accepted_in_time(AcceptInTime(c, now));
  d->set_accept_by_ms(0);
  d->set_dispatch_by_ms(DispatchBy(c, now, ctx));
  d->set_resolve_by_ms(ResolveBy(c, now, ctx));
  t.next.set_state(v1::CASE_STATE_ACCEPTED);
  AddHandler(t, caller);
  return Finish(std::move(t), cmd.note(), now);
}

Result Dispatch(const v1::Case& c, const v1::DispatchCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  if (!CanSummon(c, cmd.department_id(), caller, ctx)) {
    return Status::InvalidArgument("command.dispatch.department_id: " + Quote(cmd.department_id()) +
                                   NotSummonable(c));
  }
  if (HasOpenSummons(c, cmd.department_id())) {
    return WrongState(c, "department " + Quote(cmd.department_id()) + " is already summoned");
  }
  Transition t = Begin(c, v1::TRANSITION_KIND_DISPATCH, caller, now);
  if (c.state() == v1::CASE_STATE_DISPATCHED && !c.handler_department_id().empty()) {
    // Re-dispatch: the handler that has not reported in is replaced (a
    // no-show stays on record as one).
    WithdrawPending(t.next, c.handler_department_id());
  }
  t.next.set_handler_department_id(cmd.department_id());
  AddSummons(t, cmd.department_id(), now, ctx);
  t.next.set_state(v1::CASE_STATE_DISPATCHED);
  AddHandler(t, caller);
  return Finish(std::move(t), cmd.note(), now);
}

Result Keep(const v1::Case& c, const v1::KeepCommand& cmd, const v1::Caller& caller, int64_t now,
            const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_KEEP, caller, now);
  t.next.set_state(v1::CASE_STATE_IN_PROGRESS);
  AddHandler(t, caller);
  return Finish(std::move(t), cmd.note(), now);
}

// Hands the case to `parent` as ACCEPTED with fresh dispatch and resolve
// deadlines: the parent decides afresh. Pending summons are withdrawn (listed
// in the entry); no-shows, reported-in and done summons stay on record.
void MoveUpAccepted(Transition& t, const v1::Jurisdiction& parent, int64_t now,
                    const Context& ctx) {
  auto* d = t.next.mutable_deadlines();
  d->set_accept_by_ms(0);
  d->set_dispatch_by_ms(DispatchBy(t.next, now, ctx));
  d->set_resolve_by_ms(ResolveBy(t.next, now, ctx));
  HandOver(t, parent);
  t.next.set_state(v1::CASE_STATE_ACCEPTED);
  t.next.set_escalations(t.next.escalations() + 1);
  for (auto& dept : WithdrawPending(t.next)) t.entry.add_department_ids(std::move(dept));
  t.next.clear_handler_department_id();
}

Result Escalate(const v1::Case& c, const v1::EscalateCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  auto parent = MovableParent(c, ctx);
  if (!parent.ok()) return parent.status();
  Transition t = Begin(c, v1::TRANSITION_KIND_ESCALATE, caller, now);
  if (c.state() == v1::CASE_STATE_REPORTED) {
    // The parent takes the case over directly: that counts as the acceptance.
    t.next.set_accepted_in_time(AcceptInTime(c, now));
  }
  MoveUpAccepted(t, **parent, now, ctx);
  return Finish(std::move(t), cmd.reason(), now);
}

Result Whistle(const v1::Case& c, const v1::WhistleCommand& cmd, const v1::Caller& caller,
               int64_t now, const Context& ctx) {
  const v1::Jurisdiction* owner = ctx.topology.Find(c.owner_id());
  if (owner == nullptr || owner->level() > v1::LEVEL_TOWNSHIP) {
    return WrongState(c, "owner " + Quote(c.owner_id()) + " is " +
                             v1::Level_Name(owner ? owner->level() : v1::LEVEL_UNSPECIFIED) +
                             "; whistle needs LEVEL_TOWNSHIP or higher");
  }
  for (int i = 0; i < cmd.department_ids_size(); ++i) {
    if (!CanSummon(c, cmd.department_ids(i), caller, ctx)) {
      return Status::InvalidArgument("command.whistle.department_ids[" + std::to_string(i) +
                                     "]: " + Quote(cmd.department_ids(i)) + NotSummonable(c));
    }
  }
  Transition t = Begin(c, v1::TRANSITION_KIND_WHISTLE, caller, now);
  auto* d = t.next.mutable_deadlines();
  if (c.state() == v1::CASE_STATE_REPORTED) {
    // Whistling is the strongest form of acceptance.
    t.next.set_accepted_in_time(AcceptInTime(c, now));
    d->set_accept_by_ms(0);
    d->set_resolve_by_ms(ResolveBy(c, now, ctx));
  }
  for (const auto& dept : cmd.department_ids()) {
    if (!HasOpenSummons(c, dept)) AddSummons(t, dept, now, ctx);
  }
  t.next.set_state(v1::CASE_STATE_IN_PROGRESS);
  AddHandler(t, caller);
  return Finish(std::move(t), cmd.note(), now);
}

Result ReportIn(const v1::Case& c, const v1::ReportInCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  const std::string& dept = caller.department_id();
  Transition t = Begin(c, v1::TRANSITION_KIND_REPORT_IN, caller, now);
  v1::Summons* summons = PendingSummons(t.next, dept);
  if (summons == nullptr) {
    return WrongState(c, "department " + Quote(dept) + " has no pending summons");
  }
  summons->set_reported_in_at_ms(now);
  t.entry.add_department_ids(dept);
  if (c.state() == v1::CASE_STATE_DISPATCHED) t.next.set_state(v1::CASE_STATE_IN_PROGRESS);
  return Finish(std::move(t), cmd.note(), now);
}

Result ResolveByDepartment(const v1::Case& c, const v1::ResolveCommand& cmd,
                           const v1::Caller& caller, int64_t now, const Context& ctx) {
  const std::string& dept = caller.department_id();
  Transition t = Begin(c, v1::TRANSITION_KIND_RESOLVE, caller, now);
  v1::Summons* summons = ActiveSummons(t.next, dept);
  if (summons == nullptr) {
    return WrongState(
        c, "department " + Quote(dept) + " has not reported in or has already finished its part");
  }
  summons->set_done_at_ms(now);
  t.entry.add_department_ids(dept);
  bool all_done = std::all_of(t.next.summons().begin(), t.next.summons().end(),
                              [](const v1::Summons& s) { return Closed(s); });
  if (all_done) MarkResolved(t, now, ctx);
  return Finish(std::move(t), cmd.note(), now);
}

Result Resolve(const v1::Case& c, const v1::ResolveCommand& cmd, const v1::Caller& caller,
               int64_t now, const Context& ctx) {
  // The same split as the table's two resolve rows.
  if (caller.role() == v1::ROLE_DEPARTMENT) return ResolveByDepartment(c, cmd, caller, now, ctx);
  Transition t = Begin(c, v1::TRANSITION_KIND_RESOLVE, caller, now);
  // The owner closes the joint handling: a department that reported in is
  // done now; one that never came is not: it stays pending (and becomes a
  // no-show when its report-in deadline passes) or stays a no-show.
  for (auto& s : *t.next.mutable_summons()) {
    if (s.reported_in_at_ms() != 0 && !Closed(s)) s.set_done_at_ms(now);
  }
  MarkResolved(t, now, ctx);
  AddHandler(t, caller);
  return Finish(std::move(t), cmd.note(), now);
}

Result Verify(const v1::Case& c, const v1::VerifyCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_VERIFY, caller, now);
  auto* d = t.next.mutable_deadlines();
  d->set_verify_by_ms(0);
  if (cmd.fixed()) {
    t.next.set_state(v1::CASE_STATE_VERIFIED);
  } else {
    t.next.set_state(v1::CASE_STATE_IN_PROGRESS);
    t.next.set_reopened(c.reopened() + 1);
    d->set_resolve_by_ms(ResolveBy(c, now, ctx));
  }
  return Finish(std::move(t), cmd.note(), now);
}

Result Close(const v1::Case& c, const v1::CloseCommand& cmd, const v1::Caller& caller, int64_t now,
             const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_CLOSE, caller, now);
  t.next.set_state(v1::CASE_STATE_CLOSED);
  t.next.set_closed_at_ms(now);
  t.next.mutable_deadlines()->set_evaluate_by_ms(
      ctx.policy.EvaluateBy(c.category(), c.severity(), now));
  return Finish(std::move(t), cmd.note(), now);
}

Result Evaluate(const v1::Case& c, const v1::EvaluateCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  int64_t by = c.deadlines().evaluate_by_ms();
  if (c.evaluation_expired() || (by != 0 && now > by)) {
    // Once it fired, evaluate_by_ms is cleared: say when only while it is known.
    return WrongState(c, std::string("its evaluation window closed") +
                             (by == 0 ? "" : " at " + std::to_string(by)) +
                             " (evaluation_expired); it counts as not evaluated");
  }
  Transition t = Begin(c, v1::TRANSITION_KIND_EVALUATE, caller, now);
  t.next.set_state(v1::CASE_STATE_EVALUATED);
  t.next.set_satisfaction(cmd.score());
  t.next.mutable_deadlines()->set_evaluate_by_ms(0);
  t.entry.set_score(cmd.score());
  // Only a grid worker reporting rates as the resident's own voice (it asks
  // them); staff who took a case in, and anyone else CheckWho let through,
  // rate on the resident's behalf: recorded and reported apart.
  const bool grid_reporter = caller.user() == c.reporter() && caller.role() == c.reporter_role() &&
                             c.reporter_role() == v1::ROLE_GRID_WORKER;
  t.next.set_evaluated_on_behalf(!grid_reporter);
  t.entry.set_on_behalf(!grid_reporter);
  return Finish(std::move(t), cmd.comment(), now);
}

Result Return(const v1::Case& c, const v1::ReturnCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  auto parent = MovableParent(c, ctx);
  if (!parent.ok()) return parent.status();
  Transition t = Begin(c, v1::TRANSITION_KIND_RETURN, caller, now);
  HandOver(t, **parent);
  t.next.set_state(v1::CASE_STATE_REPORTED);
  t.next.set_returns(c.returns() + 1);
  auto* d = t.next.mutable_deadlines();
  d->set_accept_by_ms(AcceptBy(c, now, ctx));
  d->set_resolve_by_ms(0);
  return Finish(std::move(t), cmd.reason(), now);
}

Result Reject(const v1::Case& c, const v1::RejectCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_REJECT, caller, now);
  t.next.set_state(v1::CASE_STATE_REJECTED);
  t.next.clear_deadlines();
  return Finish(std::move(t), cmd.reason(), now);
}

Result Supervise(const v1::Case& c, const v1::SuperviseCommand& cmd, const v1::Caller& caller,
                 int64_t now, const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_SUPERVISE, caller, now);
  t.next.set_supervisions(c.supervisions() + 1);
  return Finish(std::move(t), cmd.note(), now);
}

// 分流/下派 and re-categorisation.
Result Transfer(const v1::Case& c, const v1::TransferCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  const std::string& to = cmd.to_jurisdiction_id();
  if (!to.empty() && to == c.owner_id()) {
    return Status::InvalidArgument("command.transfer.to_jurisdiction_id: " + Quote(to) +
                                   " already owns case " + c.id());
  }
  if (!cmd.category().empty() && cmd.category() == c.category()) {
    return Status::InvalidArgument("command.transfer.category: case " + c.id() + " is already " +
                                   Quote(c.category()));
  }
  if (!to.empty()) {
    if (ctx.topology.IsWithin(c.owner_id(), to)) {
      return Status::InvalidArgument("command.transfer.to_jurisdiction_id: " + Quote(to) +
                                     " is above owner " + Quote(c.owner_id()) +
                                     "; a transfer goes down or sideways (escalate or return "
                                     "goes up)");
    }
    const v1::Jurisdiction* parent = ctx.topology.Parent(c.owner_id());
    const std::string scope = parent != nullptr ? parent->id() : c.owner_id();
    if (!ctx.topology.IsWithin(to, scope)) {
      return Status::InvalidArgument("command.transfer.to_jurisdiction_id: " + Quote(to) +
                                     " is outside the subtree of " + Quote(scope) +
                                     " (the owner's parent); a transfer goes down into the "
                                     "owner's subtree or sideways");
    }
    if (!Hosted(to, ctx)) {
      return WrongState(c, Quote(to) +
                               " is hosted by another node this node has no link to "
                               "(--parent-address)");
    }
  }
  Transition t = Begin(c, v1::TRANSITION_KIND_TRANSFER, caller, now);
  if (!cmd.category().empty()) {
    t.entry.set_from_category(c.category());
    t.entry.set_category(cmd.category());
    if (c.original_category().empty()) t.next.set_original_category(c.category());
    t.next.set_category(cmd.category());
  }
  if (!to.empty()) {
    t.next.set_owner_id(to);
    t.effects.handover_to = to;
    // The receiver triages afresh: REPORTED with its own accept window.
    t.next.set_state(v1::CASE_STATE_REPORTED);
    auto* d = t.next.mutable_deadlines();
    d->Clear();
    d->set_accept_by_ms(AcceptBy(t.next, now, ctx));
    for (auto& dept : WithdrawPending(t.next)) t.entry.add_department_ids(std::move(dept));
    t.next.clear_handler_department_id();
  }
  AddHandler(t, caller);
  return Finish(std::move(t), cmd.reason(), now);
}

// 退单: the dispatched department refuses; the owner re-dispatches.
Result Refuse(const v1::Case& c, const v1::RefuseCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  const std::string& dept = caller.department_id();
  if (dept != c.handler_department_id()) {
    return WrongState(c, "department " + Quote(dept) +
                             " is not its dispatched handler; a whistle (吹哨) summons cannot be "
                             "refused");
  }
  Transition t = Begin(c, v1::TRANSITION_KIND_REFUSE, caller, now);
  v1::Summons* summons = nullptr;
  for (auto& s : *t.next.mutable_summons()) {
    if (s.department_id() == dept && !Closed(s)) summons = &s;
  }
  if (summons == nullptr) {
    return WrongState(c, "department " + Quote(dept) + " has no open dispatch to refuse");
  }
  summons->set_refused_at_ms(now);
  summons->set_refuse_reason(cmd.reason());
  summons->set_report_in_by_ms(0);
  t.entry.add_department_ids(dept);
  t.next.clear_handler_department_id();
  t.next.set_state(v1::CASE_STATE_ACCEPTED);
  t.next.mutable_deadlines()->set_dispatch_by_ms(DispatchBy(c, now, ctx));
  t.next.set_returns(c.returns() + 1);
  return Finish(std::move(t), cmd.reason(), now);
}

// A missed accept, dispatch or resolve moves the case one level up while the
// owner is below the policy's escalate_up_to and the parent is reachable.
const v1::Jurisdiction* AutoEscalationTarget(const v1::Case& c, const Context& ctx) {
  const v1::Jurisdiction* owner = ctx.topology.Find(c.owner_id());
  if (owner == nullptr) return nullptr;
  v1::Level up_to = ctx.policy.EscalateUpTo(c.category(), c.severity());
  if (owner->level() <= up_to) return nullptr;  // at or above the limit: supervision instead
  const v1::Jurisdiction* parent = ctx.topology.Parent(c.owner_id());
  if (parent == nullptr || !Hosted(parent->id(), ctx)) return nullptr;
  return parent;
}

// Deadlines passed. Each is recorded (HistoryEntry.deadlines_missed) and
// counted. A missed accept, dispatch or resolve escalates one level while
// the policy allows (escalate_up_to), the parent getting a deadline for its
// next step; otherwise the owner keeps the case, the owner's parent gets a
// supervision notice (督办: notice_to_id, supervisions + 1) and the owner a
// new deadline of the same length, so a case left alone is noticed again
// each period. A missed verify gets the same notice and a new deadline. A
// missed report-in makes the department a no-show (no notice). A missed
// evaluate closes the window: evaluation_expired, nothing more to wait for.
Result Overdue(const v1::Case& c, const v1::OverdueCommand& cmd, const v1::Caller& caller,
               int64_t now, const Context& ctx) {
  auto passed = [now](int64_t deadline) { return deadline != 0 && now > deadline; };
  Transition t = Begin(c, v1::TRANSITION_KIND_OVERDUE, caller, now);
  auto* d = t.next.mutable_deadlines();
  std::string what;
  auto missed = [&](std::string_view name, std::string_view detail) {
    if (!what.empty()) what += ", ";
    what += detail.empty() ? name : detail;
    bool listed = false;
    for (const auto& m : t.entry.deadlines_missed()) listed = listed || m == name;
    if (!listed) t.entry.add_deadlines_missed(std::string(name));
  };
  bool accept = passed(d->accept_by_ms());
  bool dispatch = passed(d->dispatch_by_ms());
  bool resolve = passed(d->resolve_by_ms());
  bool verify = passed(d->verify_by_ms());
  if (accept) {
    missed("accept", "");
    t.next.set_accept_missed(true);
    d->set_accept_by_ms(0);
  }
  if (dispatch) {
    missed("dispatch", "");
    d->set_dispatch_by_ms(0);
  }
  for (auto& s : *t.next.mutable_summons()) {
    if (AwaitingReportIn(s) && passed(s.report_in_by_ms())) {
      missed("report_in", "report_in:" + s.department_id());
      s.set_no_show(true);
      s.set_report_in_by_ms(0);
      t.effects.no_shows.push_back(s.department_id());
      t.entry.add_department_ids(s.department_id());
    }
  }
  if (resolve) {
    missed("resolve", "");
    t.next.set_resolve_missed(true);
    d->set_resolve_by_ms(0);
  }
  if (verify) {
    missed("verify", "");
    d->set_verify_by_ms(0);
  }
  if (passed(d->evaluate_by_ms())) {
    missed("evaluate", "");
    d->set_evaluate_by_ms(0);
    t.next.set_evaluation_expired(true);
  }
  if (what.empty()) return WrongState(c, "nothing overdue at " + std::to_string(now));
  int counted = (accept ? 1 : 0) + (dispatch ? 1 : 0) + (resolve ? 1 : 0) + (verify ? 1 : 0);
  t.next.set_overdue_count(c.overdue_count() + counted);

  bool notice = verify;
  if (accept || dispatch || resolve) {
    const v1::Jurisdiction* up = AutoEscalationTarget(t.next, ctx);
    if (up != nullptr && c.state() == v1::CASE_STATE_REPORTED) {
      // Still unaccepted: the parent gets it to accept, with its own window.
      HandOver(t, *up);
      t.next.set_escalations(t.next.escalations() + 1);
      d->set_accept_by_ms(AcceptBy(t.next, now, ctx));
    } else if (up != nullptr) {
      MoveUpAccepted(t, *up, now, ctx);
    } else {
      notice = true;
      if (accept) d->set_accept_by_ms(AcceptBy(t.next, now, ctx));
      if (dispatch) d->set_dispatch_by_ms(DispatchBy(t.next, now, ctx));
      if (resolve) d->set_resolve_by_ms(ResolveBy(t.next, now, ctx));
    }
  }
  if (verify) {
    d->set_verify_by_ms(ctx.policy.VerifyBy(c.category(), c.severity(), now));
  }
  if (notice) {
    const v1::Jurisdiction* parent = ctx.topology.Parent(t.next.owner_id());
    if (parent != nullptr) {
      t.entry.set_notice_to_id(parent->id());
      t.next.set_supervisions(c.supervisions() + 1);
      // The standing notice the parent lists (InboxService.SupervisionNotices).
      const bool again = c.notice_to_id() == parent->id();
      t.next.set_notices(again ? c.notices() + 1 : 1);
      t.next.set_notice_to_id(parent->id());
      t.next.set_noticed_at_ms(now);
      *t.next.mutable_notice_missed() = t.entry.deadlines_missed();
    }
  }
  if (!cmd.deadline().empty()) what = cmd.deadline() + ": " + what;
  return Finish(std::move(t), what, now);
}

// ---- Field validation (the Check* functions run it once, at the edge) ----

Status ValidateReport(const v1::ReportCommand& report, const Context& ctx) {
  if (Status s = CheckId("report.request_id", report.request_id(), kMaxRequestId); !s.ok()) {
    return s;
  }
  if (report.category().empty()) return Status::InvalidArgument("report.category: required");
  if (!ctx.policy.KnownCategory(report.category())) {
    return Status::InvalidArgument("report.category: unknown category " + Quote(report.category()));
  }
  if (report.severity() < v1::SEVERITY_GENERAL || report.severity() > v1::SEVERITY_EXTRAORDINARY) {
    return Status::InvalidArgument("report.severity: required (GENERAL..EXTRAORDINARY)");
  }
  if (Status s = ValidatePlace(report.place(), ctx); !s.ok()) return s;
  if (Status s = CheckRequired("report.text", report.text(), kMaxText); !s.ok()) return s;
  return ValidateAttachments(report);
}

Status ValidateCommand(const v1::Command& command, const Context& ctx) {
  switch (command.kind_case()) {
    case v1::Command::KIND_NOT_SET:
      return Status::InvalidArgument("command: no action set");
    case v1::Command::kReport:
      return Status::InvalidArgument("command.report: new cases go through Report, not Act");
    case v1::Command::kAccept:
      return CheckLength("command.accept.note", command.accept().note(), kMaxNote);
    case v1::Command::kDispatch:
      if (Status s = CheckDepartment("command.dispatch.department_id",
                                     command.dispatch().department_id(), ctx);
          !s.ok()) {
        return s;
      }
      return CheckLength("command.dispatch.note", command.dispatch().note(), kMaxNote);
    case v1::Command::kKeep:
      return CheckLength("command.keep.note", command.keep().note(), kMaxNote);
    case v1::Command::kEscalate:
      return ValidateReason("command.escalate.reason", command.escalate().reason());
    case v1::Command::kWhistle:
      return ValidateWhistle(command.whistle(), ctx);
    case v1::Command::kReportIn:
      return CheckLength("command.report_in.note", command.report_in().note(), kMaxNote);
    case v1::Command::kResolve:
      return CheckLength("command.resolve.note", command.resolve().note(), kMaxNote);
    case v1::Command::kVerify:
      return CheckLength("command.verify.note", command.verify().note(), kMaxNote);
    case v1::Command::kClose:
      return CheckLength("command.close.note", command.close().note(), kMaxNote);
    case v1::Command::kEvaluate: {
      int score = command.evaluate().score();
      if (score < 1 || score > 5) {
        return Status::InvalidArgument("command.evaluate.score: must be 1..5, got " +
                                       std::to_string(score));
      }
      return CheckLength("command.evaluate.comment", command.evaluate().comment(), kMaxNote);
    }
    case v1::Command::kReturnCase:
      return ValidateReason("command.return_case.reason", command.return_case().reason());
    case v1::Command::kReject:
      return ValidateReason("command.reject.reason", command.reject().reason());
    case v1::Command::kSupervise:
      return CheckLength("command.supervise.note", command.supervise().note(), kMaxNote);
    case v1::Command::kOverdue:
      return CheckLength("command.overdue.deadline", command.overdue().deadline(),
                         kMaxDeadlineName);
    case v1::Command::kTransfer:
      return ValidateTransfer(command.transfer(), ctx);
    case v1::Command::kRefuse:
      return ValidateReason("command.refuse.reason", command.refuse().reason());
  }
  return Status::InvalidArgument("command: unknown action");
}

Status ValidateCaller(const v1::Caller& caller, const Context& ctx) {
  if (Status s = CheckId("caller.user", caller.user(), kMaxUser); !s.ok()) return s;
  if (caller.role() < v1::ROLE_GRID_WORKER || caller.role() > v1::ROLE_LEADER) {
    return Status::InvalidArgument("caller.role: required");
  }
  // The caller is stored in history entries: the id a role does not use is
  // checked too, or it could carry bytes no stored record may hold.
  if (caller.role() == v1::ROLE_DEPARTMENT) {
    if (!caller.jurisdiction_id().empty()) {
      if (Status s = CheckId("caller.jurisdiction_id", caller.jurisdiction_id(), kMaxUser);
          !s.ok()) {
        return s;
      }
    }
    return CheckDepartment("caller.department_id", caller.department_id(), ctx);
  }
  if (!caller.department_id().empty()) {
    if (Status s = CheckId("caller.department_id", caller.department_id(), kMaxUser); !s.ok()) {
      return s;
    }
  }
  if (caller.jurisdiction_id().empty()) {
    return Status::InvalidArgument("caller.jurisdiction_id: required for role " +
                                   v1::Role_Name(caller.role()));
  }
  const v1::Jurisdiction* j = ctx.topology.Find(caller.jurisdiction_id());
  if (j == nullptr) {
    return Status::InvalidArgument("caller.jurisdiction_id: unknown jurisdiction " +
                                   Quote(caller.jurisdiction_id()));
  }
  if (caller.role() == v1::ROLE_GRID_WORKER && j->level() != v1::LEVEL_GRID) {
    return Status::InvalidArgument("caller.jurisdiction_id: a grid worker belongs to a grid; " +
                                   Quote(j->id()) + " is " + v1::Level_Name(j->level()));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<CheckedCaller> CheckCaller(v1::Caller caller, const Context& ctx) {
  if (Status s = ValidateCaller(caller, ctx); !s.ok()) return s;
  caller.DiscardUnknownFields();
  return CheckedCaller(std::move(caller));
}

StatusOr<CheckedReport> CheckReport(CheckedCaller caller, v1::ReportCommand report,
                                    const Context& ctx) {
  if (Status s = ValidateReport(report, ctx); !s.ok()) return s;
  // Fields this build does not know are not checked, so they are not kept.
  report.DiscardUnknownFields();
  const v1::Caller& who = caller.get();
  if (who.role() == v1::ROLE_DEPARTMENT) {
    return Status::PermissionDenied("departments do not report cases; department " +
                                    Quote(who.department_id()));
  }
  if (!ctx.topology.IsWithin(report.place().grid_id(), who.jurisdiction_id())) {
    return Status::PermissionDenied("caller jurisdiction " + Quote(who.jurisdiction_id()) +
                                    " does not contain grid " + Quote(report.place().grid_id()));
  }
  StatusOr<std::string> owner = RouteReport(report, ctx);
  if (!owner.ok()) return owner.status();
  return CheckedReport(std::move(caller), std::move(report), std::move(owner).value());
}

StatusOr<CheckedCommand> CheckCommand(CheckedCaller caller, v1::Command command,
                                      const Context& ctx) {
  if (Status s = ValidateCommand(command, ctx); !s.ok()) return s;
  command.DiscardUnknownFields();
  return CheckedCommand(std::move(caller), std::move(command));
}

StatusOr<CheckedReport> CheckReport(v1::Caller caller, v1::ReportCommand report,
                                    const Context& ctx) {
  StatusOr<CheckedCaller> checked = CheckCaller(std::move(caller), ctx);
  if (!checked.ok()) return checked.status();
  return CheckReport(std::move(checked).value(), std::move(report), ctx);
}

StatusOr<CheckedCommand> CheckCommand(v1::Caller caller, v1::Command command, const Context& ctx) {
  StatusOr<CheckedCaller> checked = CheckCaller(std::move(caller), ctx);
  if (!checked.ok()) return checked.status();
  return CheckCommand(std::move(checked).value(), std::move(command), ctx);
}

std::string ReportFingerprint(const v1::ReportCommand& report) {
  Fingerprint f;
  f.Text(report.request_id());
  f.Text(report.category());
  f.Number(static_cast<uint64_t>(report.severity()));
  f.Text(report.place().grid_id());
  f.Text(report.place().address());
  f.Real(report.place().latitude());
  f.Real(report.place().longitude());
  f.Text(report.text());
  f.Number(static_cast<uint64_t>(report.attachments_size()));
  for (const auto& a : report.attachments()) {
    f.Text(a.uri());
    f.Text(a.media_type());
  }
  return f.Digest();
}

StatusOr<std::string> RouteReport(const v1::ReportCommand& report, const Context& ctx) {
  const v1::Jurisdiction* grid = ctx.topology.Find(report.place().grid_id());
  if (grid == nullptr) {
    return Status::InvalidArgument("report.place.grid_id: unknown grid " +
                                   Quote(report.place().grid_id()));
  }
  v1::Level level = ctx.policy.OwnerLevel(report.category(), report.severity());
  const v1::Jurisdiction* owner = ctx.topology.AncestorAt(grid->id(), level);
  // A topology rooted below the policy's level: the root is as high as it goes.
  if (owner == nullptr) owner = &ctx.topology.root();
  return owner->id();
}

StatusOr<Transition> Report(const CheckedReport& checked, const std::string& case_id,
                            int64_t now_ms, const Context& ctx) {
  if (case_id.empty()) return Status::InvalidArgument("case_id: required");
  const v1::ReportCommand& report = checked.report();
  const v1::Caller& caller = checked.caller();
  Transition t;
  v1::Case& c = t.next;
  c.set_id(case_id);
  c.set_category(report.category());
  c.set_severity(report.severity());
  *c.mutable_place() = report.place();
  c.set_text(report.text());
  *c.mutable_attachments() = report.attachments();
  c.set_reporter(caller.user());
  c.set_reporter_role(caller.role());
  c.set_request_id(report.request_id());
  c.set_state(v1::CASE_STATE_REPORTED);
  c.set_owner_id(checked.owner());
  c.set_routed_to_id(checked.owner());
  c.set_created_at_ms(now_ms);
  c.mutable_deadlines()->set_accept_by_ms(
      ctx.policy.AcceptBy(report.category(), report.severity(), now_ms));

  t.entry.set_case_id(case_id);
  t.entry.set_kind(v1::TRANSITION_KIND_REPORT);
  t.entry.set_from_state(v1::CASE_STATE_UNSPECIFIED);
  *t.entry.mutable_actor() = caller;
  // No owner before intake: the grid where the problem was found stands in.
  t.entry.set_from_jurisdiction_id(report.place().grid_id());
  t.entry.set_at_ms(now_ms);
  return Finish(std::move(t), "", now_ms);
}

StatusOr<Transition> Apply(const v1::Case& current, const CheckedCommand& checked, int64_t now_ms,
                           const Context& ctx) {
  const v1::Command& command = checked.command();
  const v1::Caller& caller = checked.caller();
  const Rule* rule = RuleFor(command.kind_case(), caller);
  if (rule == nullptr) return Status::InvalidArgument("command: no action set");  // CheckCommand
  if (Status s = CheckWho(*rule, caller, current, ctx, &command); !s.ok()) return s;
  if (Status s = CheckFrom(*rule, current); !s.ok()) return s;
  const v1::Case& c = current;
  const int64_t now = now_ms;
  switch (command.kind_case()) {
    case v1::Command::kAccept:
      return Accept(c, command.accept(), caller, now, ctx);
    case v1::Command::kDispatch:
      return Dispatch(c, command.dispatch(), caller, now, ctx);
    case v1::Command::kKeep:
      return Keep(c, command.keep(), caller, now, ctx);
    case v1::Command::kEscalate:
      return Escalate(c, command.escalate(), caller, now, ctx);
    case v1::Command::kWhistle:
      return Whistle(c, command.whistle(), caller, now, ctx);
    case v1::Command::kReportIn:
      return ReportIn(c, command.report_in(), caller, now, ctx);
    case v1::Command::kResolve:
      return Resolve(c, command.resolve(), caller, now, ctx);
    case v1::Command::kVerify:
      return Verify(c, command.verify(), caller, now, ctx);
    case v1::Command::kClose:
      return Close(c, command.close(), caller, now, ctx);
    case v1::Command::kEvaluate:
      return Evaluate(c, command.evaluate(), caller, now, ctx);
    case v1::Command::kReturnCase:
      return Return(c, command.return_case(), caller, now, ctx);
    case v1::Command::kReject:
      return Reject(c, command.reject(), caller, now, ctx);
    case v1::Command::kSupervise:
      return Supervise(c, command.supervise(), caller, now, ctx);
    case v1::Command::kOverdue:
      return Overdue(c, command.overdue(), caller, now, ctx);
    case v1::Command::kTransfer:
      return Transfer(c, command.transfer(), caller, now, ctx);
    case v1::Command::kRefuse:
      return Refuse(c, command.refuse(), caller, now, ctx);
    case v1::Command::kReport:
    case v1::Command::KIND_NOT_SET:
      break;  // CheckCommand refused these; RuleFor has no row for them
  }
  return Status::InvalidArgument("command: no action set");
}

StatusOr<Transition> ApplyOverdue(const v1::Case& current, const v1::OverdueCommand& overdue,
                                  int64_t now_ms, const Context& ctx) {
  if (Status s = CheckLength("command.overdue.deadline", overdue.deadline(), kMaxDeadlineName);
      !s.ok()) {
    return s;
  }
  const v1::Caller system = SystemCaller();
  const Rule* rule = RuleFor(v1::Command::kOverdue, system);
  if (Status s = CheckWho(*rule, system, current, ctx, nullptr); !s.ok()) return s;
  if (Status s = CheckFrom(*rule, current); !s.ok()) return s;
  return Overdue(current, overdue, system, now_ms, ctx);
}

std::string TransitionTable() {
  constexpr size_t kWidths[] = {9, 24, 27, 30};
  std::string out;
  // One table row: the cells side by side, each wrapped to its column.
  auto row = [&out, &kWidths](const std::vector<std::string>(&cells)[4]) {
    size_t lines = 0;
    for (const auto& cell : cells) lines = std::max(lines, cell.size());
    for (size_t l = 0; l < lines; ++l) {
      std::string line;
      for (size_t i = 0; i < std::size(kWidths); ++i) {
        std::string text = l < cells[i].size() ? cells[i][l] : "";
        if (i > 0) line += "  ";
        line += text + std::string(kWidths[i] - std::min(kWidths[i], text.size()), ' ');
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out += line + '\n';
    }
  };
  row({{"command"}, {"from state(s)"}, {"who may act"}, {"to state"}});
  row({{std::string(kWidths[0], '-')},
       {std::string(kWidths[1], '-')},
       {std::string(kWidths[2], '-')},
       {std::string(kWidths[3], '-')}});
  for (const Rule& rule : kRules) {
    row({{std::string(rule.name)},
         Wrap(Describe(rule.from), kWidths[1]),
         Wrap(Describe(rule.who), kWidths[2]),
         Wrap(rule.to, kWidths[3])});
  }
  return out;
}

bool IsOpen(v1::CaseState state) {
  return state >= v1::CASE_STATE_REPORTED && state <= v1::CASE_STATE_VERIFIED;
}

bool IsSettled(v1::CaseState state) {
  return state == v1::CASE_STATE_CLOSED || state == v1::CASE_STATE_EVALUATED ||
         state == v1::CASE_STATE_REJECTED;
}

v1::Caller SystemCaller() {
  v1::Caller caller;
  caller.set_user(kSystemUser);
  caller.set_role(v1::ROLE_UNSPECIFIED);
  return caller;
}

bool IsSystemCaller(const v1::Caller& caller) { return IsSystem(caller); }

}  // namespace whistle::core
