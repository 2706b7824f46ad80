// WatchStreams: GET /api/watch as server-sent events. Each stream is one
// WatchService.Watch call to the node, run on the civetweb worker thread that
// took the request: changes are written as they arrive (one SSE event each),
// ": ping" when idle, and the gRPC call is cancelled as soon as a write to the
// browser fails or the gateway stops. At most `max_streams` at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

struct mg_connection;

namespace whistle::console {

class WatchStreams {
 public:
  WatchStreams(std::shared_ptr<grpc::Channel> channel, int max_streams, int keepalive_ms);

  struct Request {
    std::string token;            // the caller's bearer token (checked by the gateway)
    std::string jurisdiction_id;  // "" = the caller's own
    std::string from_token;       // "" = from now on
  };
  // Serves one stream on `conn` until it ends; returns the HTTP status sent (for the log).
  // Refusals that come at once (token, permission, bad resume token) are answered with
  // their HTTP status and a JSON error; later errors as one `event: error`.
  int Serve(mg_connection* conn, const Request& request);

  // Ends every open stream (each returns within ~200 ms) and refuses new ones.
  void Shutdown() { stopping_ = true; }
  int open() const { return open_.load(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  int max_streams_;
  int keepalive_ms_;
  std::atomic<int> open_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace whistle::console
