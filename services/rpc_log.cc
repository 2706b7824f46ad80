#include "services/rpc_log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "core/log.h"
#include "core/text.h"
#include "services/rpc_probe.h"

namespace whistle::services {

namespace {

constexpr size_t kMaxMessage = 256;

// A one-second window counting failure lines; the excess is counted, not logged.
std::mutex g_mu;
std::chrono::steady_clock::time_point g_window;
int g_in_window = 0;
uint64_t g_dropped = 0;

// True when this failure line may be written; *dropped gets the lines left out before it.
bool TakeLine(std::chrono::steady_clock::time_point now, uint64_t* dropped) {
  std::lock_guard lock(g_mu);
  if (now - g_window >= std::chrono::seconds(1)) {
    g_window = now;
    g_in_window = 0;
  }
  if (g_in_window >= kMaxFailureLinesPerSecond) {
    ++g_dropped;
    return false;
  }
  ++g_in_window;
  *dropped = g_dropped;
  g_dropped = 0;
  return true;
}

}  // namespace

bool IsServerFault(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return true;
    default:
      return false;
  }
}

void LogRpc(const RpcRecord& r) {
  const bool ok = r.status->ok();
  auto now = std::chrono::steady_clock::now();
  uint64_t dropped = 0;
  // Successful calls only at debug, uncapped (debug is for looking closely).
  if (ok && !LogEnabled(LogLevel::kDebug)) return;
  const LogLevel level = ok                                      ? LogLevel::kDebug
                         : IsServerFault(r.status->error_code()) ? LogLevel::kWarn
                                                                 : LogLevel::kInfo;
  if (!ok && !TakeLine(now, &dropped)) return;
  char latency[32];
  std::snprintf(latency, sizeof(latency), "%.3f",
                std::chrono::duration<double, std::milli>(now - r.started).count());
  std::string message = r.status->error_message();
  if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage) + "...";
  Log(level, ok ? "rpc" : "rpc failed",
      {{"method", r.method},
       {"code", CodeLabel(r.status->error_code())},
       {"message", message},
       {"case_id", r.case_id.empty() ? "" : core::Quote(r.case_id)},
       {"user", r.user.empty() ? "" : core::Quote(r.user)},
       {"latency_ms", latency},
       {"failures_not_logged", std::to_string(dropped)}});
}

}  // namespace whistle::services
