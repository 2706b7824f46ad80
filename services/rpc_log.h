// RpcLog: the log line of a finished unary call. A failed call always gets one
// line (info for a caller's mistake, warn for a server fault), a successful
// one only at --log-level debug. Fields: method, code, message (our own, cut
// to 256 bytes), case_id and user (caller input, quoted short), latency_ms.
// Never a token or request body. Failed-call lines are capped at
// kMaxFailureLinesPerSecond; the count of lines left out rides on the next one.
// Thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <string>

namespace whistle::services {

inline constexpr int kMaxFailureLinesPerSecond = 200;

struct RpcRecord {
  const char* method = "";
  const grpc::Status* status = nullptr;
  std::string_view user;     // "" before the caller is known
  std::string_view case_id;  // "" when the call names no case
  std::chrono::steady_clock::time_point started;
};

void LogRpc(const RpcRecord& record);

// True for codes that mean the server (not the caller) failed.
bool IsServerFault(grpc::StatusCode code);

}  // namespace whistle::services
