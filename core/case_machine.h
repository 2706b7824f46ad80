// The case state machine: pure functions (case, command, caller, now) ->
// new case + history entry + effects. No I/O, no threads: the jurisdiction
// actor carries the effects out and persists the result in one batch.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/policy.h"
#include "core/status.h"
#include "core/topology.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/common.pb.h"

namespace whistle::core {

struct Context {
  const Topology& topology;
  const Policy& policy;
  // Root of the subtree this node hosts ("" = the whole topology). Cases do not
  // move above it until node links exist.
  std::string_view hosted_root = {};
};

// What the actor must do besides persisting the new case and entry.
struct Effects {
  std::string handover_to;            // new owner jurisdiction ("" = unchanged)
  std::vector<std::string> summon;    // departments to notify of a whistle/dispatch
  std::vector<std::string> no_shows;  // departments that just missed report-in
};

struct Transition {
  v1::Case next;
  v1::HistoryEntry entry;
  Effects effects;
};

// ---- Checked input ----
//
// A report or a caller's command reaches the state machine only as a Checked*
// value, and only the Check* functions below make one (the constructors are
// private; the node's own deadlines take ApplyOverdue). The node checks a
// request once, where it comes in (the gRPC services; a command a peer node
// forwards), and passes the checked value down to the actor, which trusts it.
// Errors name the field: "report.place.grid_id: unknown grid \"x\"".

// A well-formed caller: user and role set, jurisdiction or department known
// and consistent with the role.
class CheckedCaller {
 public:
  const v1::Caller& get() const { return caller_; }

 private:
  friend StatusOr<CheckedCaller> CheckCaller(v1::Caller caller, const Context& ctx);
  friend class CheckedReport;
  friend class CheckedCommand;
  explicit CheckedCaller(v1::Caller caller) : caller_(std::move(caller)) {}
  v1::Caller caller_;
};

// A report that is well formed, that its caller may make (departments do not
// report; the caller's jurisdiction holds the grid), and where intake routes it.
class CheckedReport {
 public:
  const v1::Caller& caller() const { return caller_; }
  const v1::ReportCommand& report() const { return report_; }
  // The owner intake routes it to (RouteReport).
  const std::string& owner() const { return owner_; }

 private:
  friend StatusOr<CheckedReport> CheckReport(CheckedCaller caller, v1::ReportCommand report,
                                             const Context& ctx);
  CheckedReport(CheckedCaller caller, v1::ReportCommand report, std::string owner)
      : caller_(std::move(caller.caller_)), report_(std::move(report)), owner_(std::move(owner)) {}
  v1::Caller caller_;
  v1::ReportCommand report_;
  std::string owner_;
};

// A well-formed non-report command (kind set, ids known, score in 1..5, ...)
// from a well-formed caller. Who may act and whether the state fits are
// Apply's questions: they need the case.
class CheckedCommand {
 public:
  const v1::Caller& caller() const { return caller_; }
  const v1::Command& command() const { return command_; }

 private:
  friend StatusOr<CheckedCommand> CheckCommand(CheckedCaller caller, v1::Command command,
                                               const Context& ctx);
  CheckedCommand(CheckedCaller caller, v1::Command command)
      : caller_(std::move(caller.caller_)), command_(std::move(command)) {}
  v1::Caller caller_;
  v1::Command command_;
};

// INVALID_ARGUMENT naming the caller field. The system caller is not a
// caller from outside and never passes: deadlines take ApplyOverdue.
StatusOr<CheckedCaller> CheckCaller(v1::Caller caller, const Context& ctx);
// INVALID_ARGUMENT naming the report field, then PERMISSION_DENIED when the
// caller may not report there.
StatusOr<CheckedReport> CheckReport(CheckedCaller caller, v1::ReportCommand report,
                                    const Context& ctx);
// INVALID_ARGUMENT naming the command field.
StatusOr<CheckedCommand> CheckCommand(CheckedCaller caller, v1::Command command,
                                      const Context& ctx);
// The same from a raw caller (bytes from a peer node, tests): CheckCaller first.
StatusOr<CheckedReport> CheckReport(v1::Caller caller, v1::ReportCommand report,
                                    const Context& ctx);
StatusOr<CheckedCommand> CheckCommand(v1::Caller caller, v1::Command command, const Context& ctx);

// What a retry of a report must repeat to be answered with the first
// report's case (idempotency per user and request id): a digest of every
// field of the report ("v1:" + 16 hex digits). Stable across builds and
// restarts: it is stored with the case.
std::string ReportFingerprint(const v1::ReportCommand& report);

// Where intake routes a report: the ancestor-or-self of the grid at the
// level the graded-response policy names. CheckReport calls it.
StatusOr<std::string> RouteReport(const v1::ReportCommand& report, const Context& ctx);

// ---- Transitions ----

// Creates case `case_id` from a checked report, owned where it was routed.
StatusOr<Transition> Report(const CheckedReport& report, const std::string& case_id, int64_t now_ms,
                            const Context& ctx);

// Applies a checked command to an existing case. The transition table at the
// top of case_machine.cc (TransitionTable()) says who may act, PERMISSION_DENIED
// otherwise, and from which states, FAILED_PRECONDITION naming the current
// state otherwise; then the command's own rules.
StatusOr<Transition> Apply(const v1::Case& current, const CheckedCommand& command, int64_t now_ms,
                           const Context& ctx);

// Records the deadlines of `current` that passed by `now_ms`, as SystemCaller():
// the node's own path, for its deadline timer (there is no caller to check).
// FAILED_PRECONDITION when nothing is overdue; INVALID_ARGUMENT when the
// deadline name is longer than 64 bytes.
StatusOr<Transition> ApplyOverdue(const v1::Case& current, const v1::OverdueCommand& overdue,
                                  int64_t now_ms, const Context& ctx);

// The transition table Apply consults, one line per rule: command, states it
// fits, who may act, what it leads to. The comment at the top of
// case_machine.cc is this text (core_test keeps them equal).
std::string TransitionTable();

// Open = not closed, evaluated or rejected.
bool IsOpen(v1::CaseState state);
// Terminal for memory purposes: nothing but evaluation can follow.
bool IsSettled(v1::CaseState state);

// The system identity the node uses for deadline transitions.
v1::Caller SystemCaller();
bool IsSystemCaller(const v1::Caller& caller);

}  // namespace whistle::core
