// The case state machine: pure functions (case, command, caller, now) ->
// new case + history entry + effects. No I/O, no threads: the jurisdiction
// actor carries the effects out and persists the result in one batch.
#pragma once

#include <cstdint>
#include <string>
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

// Field-level validation of a report; the error names the field, e.g.
// "report.place.grid_id: unknown grid \"x\"". Does not check permissions.
Status ValidateReport(const v1::ReportCommand& report, const Context& ctx);
// Field-level validation of any non-report command (command.kind set, ids
// known, score in 1..5, ...). Does not look at the case.
Status ValidateCommand(const v1::Command& command, const Context& ctx);
// Caller well formed: role set, user set, jurisdiction/department known and
// consistent with the role.
Status ValidateCaller(const v1::Caller& caller, const Context& ctx);

// Where intake routes a report: the ancestor-or-self of the grid at the
// level the graded-response policy names.
StatusOr<std::string> RouteReport(const v1::ReportCommand& report, const Context& ctx);

// Creates case `case_id` from a validated report. PERMISSION_DENIED when the
// caller's jurisdiction does not contain the place.
StatusOr<Transition> Report(const v1::ReportCommand& report, const v1::Caller& caller,
                            const std::string& case_id, int64_t now_ms, const Context& ctx);

// Applies a command to an existing case. FAILED_PRECONDITION names the
// current state when the command does not fit it; PERMISSION_DENIED when the
// caller may not act on this case.
StatusOr<Transition> Apply(const v1::Case& current, const v1::Command& command,
                           const v1::Caller& caller, int64_t now_ms, const Context& ctx);

// Open = not closed, evaluated or rejected.
bool IsOpen(v1::CaseState state);
// Terminal for memory purposes: nothing but evaluation can follow.
bool IsSettled(v1::CaseState state);

// The system identity the node uses for deadline transitions.
v1::Caller SystemCaller();

}  // namespace whistle::core
