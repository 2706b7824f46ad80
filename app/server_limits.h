// ServerLimits: what one client, connection or stream may hold in whistled's
// gRPC server (message size, streams per connection, memory, threads, ping
// rate, idle and total connection age), applied to the ServerBuilder in one
// place, and the process's file-descriptor limit. Used once, at start-up, on
// the main thread.
#pragma once

#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>

#include <cstdint>
#include <string>

#include "core/status.h"
#include "whistle/v1/config.pb.h"

namespace whistle::app {

// The largest message the port takes. The largest valid public API request is
// about 50 KB (a report with text 4,000 B, address 1,024 B, request id 128 B and
// 20 attachments of 2,048 + 128 B; see core/case_machine.cc), but node links
// (LinkService.Connect) share the port and carry a whole case with its whole
// history in one frame, and a history has no fixed bound; gRPC 1.51 has one
// receive limit per server, not per method. So the link frame sets it, at
// gRPC's default (what federations have run with): 4 MiB. Memory is bounded by
// the resource quota, not by this (gRPC buffers a message whole before it
// checks its size).
inline constexpr int64_t kMaxLinkFrameBytes = 4 * 1024 * 1024;

struct ServerLimits {
  int64_t max_receive_bytes = kMaxLinkFrameBytes;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection.
  int max_streams_per_connection = 100;
  // Memory gRPC may use for connections and calls (buffers, messages in
  // flight); under pressure it shrinks flow-control windows, then cancels streams.
  int64_t memory_bytes = 256 * 1024 * 1024;
  // Threads of the synchronous services (one per node link stream).
  int max_threads = 256;
  // Clients may ping at most this often without data; more are strikes, and
  // after max_ping_strikes the connection is closed (GOAWAY ENHANCE_YOUR_CALM).
  int min_ping_interval_ms = 10000;
  int max_ping_strikes = 2;
  // The server pings quiet connections this often and drops a peer that does
  // not answer within keepalive_timeout_ms (frees descriptors of vanished peers).
  int keepalive_time_ms = 60000;
  int keepalive_timeout_ms = 20000;
  // A connection with no call for this long is closed (GOAWAY).
  int max_connection_idle_ms = 300000;
  // Every connection is closed after this long (GOAWAY, with up to
  // max_connection_age_grace_ms for calls in flight): the only bound gRPC gives
  // on a stream that stalls in the middle of its request message. Clients and
  // node links reconnect on their own.
  int max_connection_age_ms = 600000;
  int max_connection_age_grace_ms = 30000;
};

// The limits with the configurable ones taken from --grpc-memory-limit-mb,
// --max-connection-age-ms and --max-connection-age-grace-ms.
ServerLimits LimitsFrom(const v1::NodeConfig& config);

// Applies `limits` to `builder`; `quota` must outlive the server.
void ApplyServerLimits(const ServerLimits& limits, grpc::ResourceQuota& quota,
                       grpc::ServerBuilder& builder);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit
// (or the unchanged one, with a warning logged, when it cannot be raised).
uint64_t RaiseFileLimit();

}  // namespace whistle::app
