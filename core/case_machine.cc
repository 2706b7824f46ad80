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
// dispatch   ACCEPTED, IN_PROGRESS     authority over owner         DISPATCHED
// keep       ACCEPTED                  authority over owner         IN_PROGRESS
// escalate   REPORTED, ACCEPTED,       authority over owner         ACCEPTED at the parent
//            DISPATCHED, IN_PROGRESS
// whistle    REPORTED, ACCEPTED,       authority over owner         IN_PROGRESS; the owner must be
//            DISPATCHED, IN_PROGRESS                                at township level or above
// report_in  DISPATCHED, IN_PROGRESS   a summoned department        IN_PROGRESS; needs its pending
//                                                                   summons
// resolve    DISPATCHED, IN_PROGRESS   a summoned department        its summons done (it must have
//                                                                   reported in); RESOLVED once
//                                                                   all are done
// resolve    IN_PROGRESS               authority over owner         RESOLVED; closes every open
//                                                                   summons
// verify     RESOLVED                  the grid worker of the       VERIFIED, or IN_PROGRESS when
//                                      case's grid, or authority    not fixed
// close      VERIFIED                  authority over owner         CLOSED
// evaluate   CLOSED                    the reporter, or authority   EVALUATED
// return     REPORTED, ACCEPTED        authority over owner         REPORTED at the parent
// reject     REPORTED, ACCEPTED        authority over owner         REJECTED
// supervise  any open state            a leader of a strict         unchanged
//                                      ancestor of the owner
// overdue    any state                 SystemCaller() only          unchanged; needs a passed
//                                                                   deadline; a missed accept,
//                                                                   dispatch or resolve escalates
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

// A summons the owner closed before the department came is no longer awaited.
bool AwaitingReportIn(const v1::Summons& s) {
  return s.reported_in_at_ms() == 0 && s.done_at_ms() == 0;
}

int64_t NextDeadline(const v1::Case& c) {
  int64_t next = 0;
  auto consider = [&next](int64_t d) {
    if (d > 0 && (next == 0 || d < next)) next = d;
  };
  consider(c.deadlines().accept_by_ms());
  consider(c.deadlines().dispatch_by_ms());
  consider(c.deadlines().resolve_by_ms());
  consider(c.deadlines().verify_by_ms());
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

v1::Summons* PendingSummons(v1::Case& c, std::string_view dept) {
  for (auto& s : *c.mutable_summons()) {
    if (s.department_id() == dept && s.reported_in_at_ms() == 0 && s.done_at_ms() == 0) {
      return &s;
    }
  }
  return nullptr;
}

v1::Summons* ActiveSummons(v1::Case& c, std::string_view dept) {
  for (auto& s : *c.mutable_summons()) {
    if (s.department_id() == dept && s.reported_in_at_ms() != 0 && s.done_at_ms() == 0) {
      return &s;
    }
  }
  return nullptr;
}

bool WasSummoned(const v1::Case& c, std::string_view dept) {
  for (const auto& s : c.summons()) {
    if (s.department_id() == dept) return true;
  }
  return false;
}

bool HasOpenSummons(const v1::Case& c, std::string_view dept) {
  for (const auto& s : c.summons()) {
    if (s.department_id() == dept && s.done_at_ms() == 0) return true;
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
  s->set_report_in_by_ms(ctx.policy.ReportInBy(t.next.severity(), now_ms));
  t.effects.summon.push_back(dept);
  t.entry.add_department_ids(dept);
}

void MarkResolved(Transition& t, int64_t now_ms, const Context& ctx) {
  auto* d = t.next.mutable_deadlines();
  // A cleared resolve_by under a policy with a limit means the overdue
  // check already fired: late.
  bool in_time = d->resolve_by_ms() != 0 ? now_ms <= d->resolve_by_ms()
                                         : ctx.policy.ResolveBy(t.next.severity(), now_ms) == 0;
  t.next.set_resolved_in_time(in_time);
  d->set_resolve_by_ms(0);
  d->set_verify_by_ms(ctx.policy.VerifyBy(now_ms));
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
  kAuthority,              // staff/leader of the owner or an ancestor
  kSummonedDepartment,     // a department summoned to the case
  kGridWorkerOrAuthority,  // the worker of the case's grid, or authority
  kReporterOrAuthority,    // the user who reported the case, or authority
  kHigherLevel,            // a leader of a strict ancestor of the owner
  kSystem,                 // SystemCaller(), for deadlines
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
    {v1::Command::kDispatch, "dispatch", Of({v1::CASE_STATE_ACCEPTED, v1::CASE_STATE_IN_PROGRESS}),
     Who::kAuthority, "DISPATCHED"},
    {v1::Command::kKeep, "keep", Of({v1::CASE_STATE_ACCEPTED}), Who::kAuthority, "IN_PROGRESS"},
    {v1::Command::kEscalate, "escalate", kActiveStates, Who::kAuthority, "ACCEPTED at the parent"},
    {v1::Command::kWhistle, "whistle", kActiveStates, Who::kAuthority,
     "IN_PROGRESS; the owner must be at township level or above"},
    {v1::Command::kReportIn, "report_in",
     Of({v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}), Who::kSummonedDepartment,
     "IN_PROGRESS; needs its pending summons"},
    {v1::Command::kResolve, "resolve", Of({v1::CASE_STATE_DISPATCHED, v1::CASE_STATE_IN_PROGRESS}),
     Who::kSummonedDepartment,
     "its summons done (it must have reported in); RESOLVED once all are done"},
    {v1::Command::kResolve, "resolve", Of({v1::CASE_STATE_IN_PROGRESS}), Who::kAuthority,
     "RESOLVED; closes every open summons"},
    {v1::Command::kVerify, "verify", Of({v1::CASE_STATE_RESOLVED}), Who::kGridWorkerOrAuthority,
     "VERIFIED, or IN_PROGRESS when not fixed"},
    {v1::Command::kClose, "close", Of({v1::CASE_STATE_VERIFIED}), Who::kAuthority, "CLOSED"},
    {v1::Command::kEvaluate, "evaluate", Of({v1::CASE_STATE_CLOSED}), Who::kReporterOrAuthority,
     "EVALUATED"},
    {v1::Command::kReturnCase, "return", Of({v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED}),
     Who::kAuthority, "REPORTED at the parent"},
    {v1::Command::kReject, "reject", Of({v1::CASE_STATE_REPORTED, v1::CASE_STATE_ACCEPTED}),
     Who::kAuthority, "REJECTED"},
    {v1::Command::kSupervise, "supervise", kOpenStates, Who::kHigherLevel, "unchanged"},
    {v1::Command::kOverdue, "overdue", kAnyState, Who::kSystem,
     "unchanged; needs a passed deadline; a missed accept, dispatch or resolve escalates"},
};

std::string_view Describe(Who who) {
  switch (who) {
    case Who::kAuthority:
      return "authority over owner";
    case Who::kSummonedDepartment:
      return "a summoned department";
    case Who::kGridWorkerOrAuthority:
      return "the grid worker of the case's grid, or authority";
    case Who::kReporterOrAuthority:
      return "the reporter, or authority";
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
Status CheckWho(const Rule& rule, const v1::Caller& caller, const v1::Case& c, const Context& ctx) {
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
    case Who::kGridWorkerOrAuthority:
      if (caller.role() == v1::ROLE_GRID_WORKER &&
          caller.jurisdiction_id() == c.place().grid_id()) {
        return Status::Ok();
      }
      return RequireAuthority(rule.name, caller, c, ctx);
    case Who::kReporterOrAuthority:
      // The reporter as it reported: the same user in another role (a staff
      // token of the grid worker who reported) acts by that role's rights only.
      if (caller.user() == c.reporter() && caller.role() == c.reporter_role()) return Status::Ok();
      return RequireAuthority(rule.name, caller, c, ctx);
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

Result Accept(const v1::Case& c, const v1::AcceptCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_ACCEPT, caller, now);
  auto* d = t.next.mutable_deadlines();
  t.next.set_accepted_in_time(d->accept_by_ms() == 0 || now <= d->accept_by_ms());
  d->set_accept_by_ms(0);
  d->set_dispatch_by_ms(ctx.policy.DispatchBy(now));
  d->set_resolve_by_ms(ctx.policy.ResolveBy(c.severity(), now));
  t.next.set_state(v1::CASE_STATE_ACCEPTED);
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
  t.next.set_handler_department_id(cmd.department_id());
  AddSummons(t, cmd.department_id(), now, ctx);
  t.next.set_state(v1::CASE_STATE_DISPATCHED);
  return Finish(std::move(t), cmd.note(), now);
}

Result Keep(const v1::Case& c, const v1::KeepCommand& cmd, const v1::Caller& caller, int64_t now,
            const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_KEEP, caller, now);
  t.next.set_state(v1::CASE_STATE_IN_PROGRESS);
  return Finish(std::move(t), cmd.note(), now);
}

Result Escalate(const v1::Case& c, const v1::EscalateCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  auto parent = MovableParent(c, ctx);
  if (!parent.ok()) return parent.status();
  Transition t = Begin(c, v1::TRANSITION_KIND_ESCALATE, caller, now);
  auto* d = t.next.mutable_deadlines();
  if (c.state() == v1::CASE_STATE_REPORTED) {
    // The parent takes the case over directly: that counts as the acceptance.
    t.next.set_accepted_in_time(d->accept_by_ms() == 0 || now <= d->accept_by_ms());
  }
  d->set_accept_by_ms(0);
  d->set_dispatch_by_ms(ctx.policy.DispatchBy(now));  // the parent decides afresh
  d->set_resolve_by_ms(ctx.policy.ResolveBy(c.severity(), now));
  HandOver(t, **parent);
  t.next.set_state(v1::CASE_STATE_ACCEPTED);
  t.next.set_escalations(c.escalations() + 1);
  t.next.clear_summons();
  t.next.clear_handler_department_id();
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
    t.next.set_accepted_in_time(d->accept_by_ms() == 0 || now <= d->accept_by_ms());
    d->set_accept_by_ms(0);
    d->set_resolve_by_ms(ctx.policy.ResolveBy(c.severity(), now));
  }
  for (const auto& dept : cmd.department_ids()) {
    if (!HasOpenSummons(c, dept)) AddSummons(t, dept, now, ctx);
  }
  t.next.set_state(v1::CASE_STATE_IN_PROGRESS);
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
                              [](const v1::Summons& s) { return s.done_at_ms() != 0; });
  if (all_done) MarkResolved(t, now, ctx);
  return Finish(std::move(t), cmd.note(), now);
}

Result Resolve(const v1::Case& c, const v1::ResolveCommand& cmd, const v1::Caller& caller,
               int64_t now, const Context& ctx) {
  // The same split as the table's two resolve rows.
  if (caller.role() == v1::ROLE_DEPARTMENT) return ResolveByDepartment(c, cmd, caller, now, ctx);
  Transition t = Begin(c, v1::TRANSITION_KIND_RESOLVE, caller, now);
  // The owner closes the joint handling: whoever has not finished is done now.
  for (auto& s : *t.next.mutable_summons()) {
    if (s.done_at_ms() == 0) s.set_done_at_ms(now);
  }
  MarkResolved(t, now, ctx);
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
    d->set_resolve_by_ms(ctx.policy.ResolveBy(c.severity(), now));
  }
  return Finish(std::move(t), cmd.note(), now);
}

Result Close(const v1::Case& c, const v1::CloseCommand& cmd, const v1::Caller& caller, int64_t now,
             const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_CLOSE, caller, now);
  t.next.set_state(v1::CASE_STATE_CLOSED);
  t.next.set_closed_at_ms(now);
  t.next.mutable_deadlines()->set_evaluate_by_ms(ctx.policy.EvaluateBy(now));
  return Finish(std::move(t), cmd.note(), now);
}

Result Evaluate(const v1::Case& c, const v1::EvaluateCommand& cmd, const v1::Caller& caller,
                int64_t now, const Context& ctx) {
  Transition t = Begin(c, v1::TRANSITION_KIND_EVALUATE, caller, now);
  t.next.set_state(v1::CASE_STATE_EVALUATED);
  t.next.set_satisfaction(cmd.score());
  t.next.mutable_deadlines()->set_evaluate_by_ms(0);
  t.entry.set_score(cmd.score());
  return Finish(std::move(t), cmd.comment(), now);
}

Result Return(const v1::Case& c, const v1::ReturnCommand& cmd, const v1::Caller& caller,
              int64_t now, const Context& ctx) {
  auto parent = MovableParent(c, ctx);
  if (!parent.ok()) return parent.status();
  Transition t = Begin(c, v1::TRANSITION_KIND_RETURN, caller, now);
  HandOver(t, **parent);
  t.next.set_state(v1::CASE_STATE_REPORTED);
  auto* d = t.next.mutable_deadlines();
  d->set_accept_by_ms(ctx.policy.AcceptBy(c.severity(), now));
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

// Moves the case one level up after a missed deadline, when there is a level.
void AutoEscalate(Transition& t, const Context& ctx) {
  const v1::Jurisdiction* parent = ctx.topology.Parent(t.next.owner_id());
  if (parent == nullptr || !Hosted(parent->id(), ctx)) return;  // counted, stays here
  HandOver(t, *parent);
  t.next.set_escalations(t.next.escalations() + 1);
}

Result Overdue(const v1::Case& c, const v1::OverdueCommand& cmd, const v1::Caller& caller,
               int64_t now, const Context& ctx) {
  auto passed = [now](int64_t deadline) { return deadline != 0 && now > deadline; };
  Transition t = Begin(c, v1::TRANSITION_KIND_OVERDUE, caller, now);
  auto* d = t.next.mutable_deadlines();
  std::string what;
  auto note = [&what](std::string_view s) {
    if (!what.empty()) what += ", ";
    what += s;
  };
  if (passed(d->accept_by_ms())) {
    note("accept");
    t.next.set_overdue_count(t.next.overdue_count() + 1);
    d->set_accept_by_ms(0);
    AutoEscalate(t, ctx);
    // The parent gets a fresh acceptance window (it stays REPORTED there).
    if (!t.effects.handover_to.empty()) d->set_accept_by_ms(ctx.policy.AcceptBy(c.severity(), now));
  }
  if (passed(d->dispatch_by_ms())) {
    note("dispatch");
    t.next.set_overdue_count(t.next.overdue_count() + 1);
    d->set_dispatch_by_ms(0);
    AutoEscalate(t, ctx);
    if (!t.effects.handover_to.empty()) d->set_dispatch_by_ms(ctx.policy.DispatchBy(now));
  }
  for (auto& s : *t.next.mutable_summons()) {
    if (AwaitingReportIn(s) && passed(s.report_in_by_ms())) {
      note("report_in:" + s.department_id());
      s.set_no_show(true);
      s.set_report_in_by_ms(0);
      t.effects.no_shows.push_back(s.department_id());
      t.entry.add_department_ids(s.department_id());
    }
  }
  if (passed(d->resolve_by_ms())) {
    note("resolve");
    t.next.set_overdue_count(t.next.overdue_count() + 1);
    d->set_resolve_by_ms(0);
    AutoEscalate(t, ctx);
  }
  if (passed(d->verify_by_ms())) {
    note("verify");
    t.next.set_overdue_count(t.next.overdue_count() + 1);
    d->set_verify_by_ms(0);
  }
  if (what.empty()) return WrongState(c, "nothing overdue at " + std::to_string(now));
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
  // FNV-1a over length-prefixed fields: distinct reports have distinct encodings
  // (the 64-bit digest of two may still collide, in theory).
  uint64_t h = 14695981039346656037ull;
  auto bytes = [&h](std::string_view b) {
    for (unsigned char ch : b) {
      h ^= ch;
      h *= 1099511628211ull;
    }
  };
  auto number = [&bytes](uint64_t v) {
    char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<char>(v >> (8 * i));
    bytes(std::string_view(le, 8));
  };
  auto text = [&](std::string_view t) {
    number(t.size());
    bytes(t);
  };
  auto real = [&number](double d) {
    uint64_t bits = 0;
    static_assert(sizeof bits == sizeof d);
    std::memcpy(&bits, &d, sizeof bits);
    number(bits);
  };
  text(report.request_id());
  text(report.category());
  number(static_cast<uint64_t>(report.severity()));
  text(report.place().grid_id());
  text(report.place().address());
  real(report.place().latitude());
  real(report.place().longitude());
  text(report.text());
  number(static_cast<uint64_t>(report.attachments_size()));
  for (const auto& a : report.attachments()) {
    text(a.uri());
    text(a.media_type());
  }
  char hex[20];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("v1:") + hex;
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
  c.mutable_deadlines()->set_accept_by_ms(ctx.policy.AcceptBy(report.severity(), now_ms));

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
  if (Status s = CheckWho(*rule, caller, current, ctx); !s.ok()) return s;
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
  if (Status s = CheckWho(*rule, system, current, ctx); !s.ok()) return s;
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
