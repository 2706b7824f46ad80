#include "app/server_limits.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace whistle::app {

ServerLimits LimitsFrom(const v1::NodeConfig& config) {
  ServerLimits limits;
  limits.memory_bytes = int64_t{config.grpc_memory_limit_mb()} * 1024 * 1024;
  limits.max_connection_age_ms = config.max_connection_age_ms();
  limits.max_connection_age_grace_ms = config.max_connection_age_grace_ms();
  return limits;
}

void ApplyServerLimits(const ServerLimits& limits, grpc::ResourceQuota& quota,
                       grpc::ServerBuilder& builder) {
  quota.Resize(static_cast<size_t>(limits.memory_bytes));
  quota.SetMaxThreads(limits.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.max_receive_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_streams_per_connection);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             limits.min_ping_interval_ms);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, limits.max_ping_strikes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, limits.keepalive_time_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, limits.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, limits.max_connection_idle_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, limits.max_connection_age_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             limits.max_connection_age_grace_ms);
  // A second process must not bind the same port and take half the clients
  // (gRPC sets SO_REUSEPORT by default).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

uint64_t RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
    Log(LogLevel::kWarn, "cannot raise the open-file limit",
        {{"soft", std::to_string(limit.rlim_cur)},
         {"hard", std::to_string(limit.rlim_max)},
         {"error", std::strerror(errno)}});
  }
  return limit.rlim_cur;
}

}  // namespace whistle::app
