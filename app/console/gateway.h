// Gateway: whistle-console's HTTP server (civetweb). Routes every request:
//   POST /api/rpc/<Service>/<Method>  RpcBridge (allowed unary methods only)
//   GET  /api/watch                   WatchStreams (server-sent events)
//   GET  /api/links                   NodeService.GetLinks, after one authenticated call
//   GET  /healthz, /readyz            the process; the node's health
//   GET  anything else                StaticFiles (--assets)
// Every /api/ request needs `Authorization: Bearer <token>`; the token is the only
// thing passed on to the node, which decides. Keeps no state of its own.
// Requests run on civetweb's worker threads (one per connection; a watch stream
// holds its thread), so the pool is sized for --max-watch-streams plus the rest.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "app/console/json_rpc.h"
#include "app/console/options.h"
#include "app/console/static_files.h"
#include "app/console/watch_stream.h"
#include "core/status.h"

struct mg_context;
struct mg_connection;

namespace whistle::console {

// The request body limit of POST /api/rpc (413 beyond).
inline constexpr size_t kMaxBody = 1 << 20;
// The longest bearer token passed on (401 beyond).
inline constexpr size_t kMaxToken = 8192;

// The channel to --node: plaintext, or TLS from the --tls-* files (INVALID_ARGUMENT
// naming the flag when a file cannot be read). Reconnects within ~2 s of the node
// coming back.
StatusOr<std::shared_ptr<grpc::Channel>> DialNode(const Options& options);

class Gateway {
 public:
  Gateway(const Options& options, std::shared_ptr<grpc::Channel> channel);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Listens on --listen. INVALID_ARGUMENT naming --listen (or --assets) when it cannot.
  Status Start();
  // The port listened on (after Start).
  int port() const { return port_; }
  // Ends open watch streams, lets in-flight requests finish, stops listening.
  void Stop();

 private:
  static int OnRequest(mg_connection* conn);
  static int OnLog(const mg_connection* conn, const char* message);
  int Handle(mg_connection* conn);
  int HandleApi(mg_connection* conn, const std::string& path, const std::string& method);
  int HandleRpc(mg_connection* conn, const std::string& service, const std::string& rpc,
                const std::string& token);
  // One authenticated call (GetJurisdiction of the caller's own) for answers the node
  // gives anyone: 0 when the node accepts the token, else the error status sent.
  int CheckCaller(mg_connection* conn, const std::string& token);
  int HandleWatch(mg_connection* conn, const std::string& token);
  int HandleLinks(mg_connection* conn, const std::string& token);
  int HandleStatic(mg_connection* conn, const std::string& path, bool head);

  Options options_;
  RpcBridge bridge_;
  WatchStreams watches_;
  StaticFiles files_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
};

// Checks the Authorization header value: "Bearer " and 1..8192 bytes of printable
// ASCII without spaces. Returns the token, or UNAUTHENTICATED saying what is wrong
// (never quoting the value).
StatusOr<std::string> BearerToken(const char* header_value);

}  // namespace whistle::console
