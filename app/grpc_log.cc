#include "app/grpc_log.h"

#include <grpc/support/log.h>

#include <atomic>
#include <cstring>
#include <string>
#include <string_view>

namespace whistle::app {

namespace {

constexpr size_t kMaxMessage = 2048;  // gRPC quotes peers' bytes in some messages

std::atomic<void (*)()> g_on_listener_failure{nullptr};

void ToJson(gpr_log_func_args* args) {
  std::string_view message = args->message != nullptr ? args->message : "";
  if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage);
  std::string_view file = args->file != nullptr ? args->file : "";
  if (auto slash = file.rfind('/'); slash != std::string_view::npos) file = file.substr(slash + 1);
  LogLevel level = LogLevel::kDebug;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = LogLevel::kInfo;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = LogLevel::kError;
  Log(level, message,
      {{"component", "grpc"}, {"source", std::string(file) + ":" + std::to_string(args->line)}});
  // tcp_server_posix.cc: "Failed accept4: Too many open files" and the like.
  if (message.rfind("Failed accept4", 0) == 0) {
    if (auto hook = g_on_listener_failure.load()) hook();
  }
}

}  // namespace

void RouteGrpcLogs(LogLevel level, void (*on_listener_failure)()) {
  g_on_listener_failure = on_listener_failure;
  gpr_set_log_function(ToJson);
  switch (level) {
    case LogLevel::kDebug:
      gpr_set_log_verbosity(GPR_LOG_SEVERITY_DEBUG);
      break;
    case LogLevel::kInfo:  // gRPC's INFO lines are start-up chatter: debug only
    case LogLevel::kWarn:
    case LogLevel::kError:
      gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
      break;
  }
}

}  // namespace whistle::app
