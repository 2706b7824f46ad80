// Messages between the node facade and its actors. Payloads are protobuf
// types so the same exchange can cross a process boundary; the reply callback
// and a request's checked form are the process-local parts.
#pragma once

#include <caf/all.hpp>
#include <functional>
#include <string>
#include <variant>

#include "core/case_machine.h"
#include "core/status.h"
#include "whistle/v1/case.pb.h"
#include "whistle/v1/common.pb.h"

namespace whistle::actors {

using CaseReply = std::function<void(StatusOr<v1::Case>)>;

// A command for one case (or a new report), with the caller and the reply.
struct CaseRequest {
  // What the jurisdiction actor applies: the report or command as checked
  // where it entered this node (core::CheckReport / CheckCommand). Empty only
  // for the timer's overdue, which takes the system caller's own path.
  std::variant<std::monostate, core::CheckedReport, core::CheckedCommand> checked;
  // A command as received, for routing and for forwarding over a node link
  // (the peer checks it again); left empty for reports, which travel as
  // ForwardRequest.report instead (Node::SubmitReport).
  v1::Caller caller;
  // For a report: the id reserved for its case where it entered the node
  // (Node::Report), or empty to take the next one.
  std::string case_id;
  // For a report: core::ReportFingerprint, recorded with user + request id.
  std::string report_fingerprint;
  v1::Command command;
  CaseReply reply;
  int hops = 0;  // forwards so far (ownership moved while the request travelled)
};

// Ownership of an open case moves to the receiving jurisdiction.
struct Handover {
  v1::Case value;
};

// A department is summoned (whistle) or dispatched to a case.
struct SummonNotice {
  std::string case_id;
  std::string department_id;
  int64_t report_in_by_ms = 0;
};

// The batch of a transition is durable; the actor may forget in-flight state.
struct Committed {
  std::string case_id;
  std::string request_key;  // user + request id of a report without a reservation, else empty
};

using case_atom = caf::atom_constant<caf::atom("case")>;
using handover_atom = caf::atom_constant<caf::atom("handover")>;
using summon_atom = caf::atom_constant<caf::atom("summon")>;
using committed_atom = caf::atom_constant<caf::atom("committed")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using fired_atom = caf::atom_constant<caf::atom("fired")>;

}  // namespace whistle::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::CaseRequest)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::Handover)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::SummonNotice)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(whistle::actors::Committed)
