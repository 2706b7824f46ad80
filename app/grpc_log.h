// gRPC's own log lines (gpr_log) routed into whistled's JSON log, with gRPC's
// verbosity following --log-level. Process-wide; set once at start-up.
#pragma once

#include "core/log.h"

namespace whistle::app {

// Routes gpr_log through whistle::Log and sets gRPC's verbosity from `level`
// (debug -> everything gRPC logs; info, warn and error -> gRPC's errors only).
// `on_listener_failure`, when set, is called (on a gRPC thread; keep it short)
// each time gRPC reports that accepting a connection failed: in gRPC 1.51 the
// listener then stops accepting for good (see ApiServer).
void RouteGrpcLogs(LogLevel level, void (*on_listener_failure)() = nullptr);

}  // namespace whistle::app
