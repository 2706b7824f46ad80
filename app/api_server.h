// ApiServer: whistled's gRPC server on --listen (public API, node links,
// health, reflection) with the bounds of ServerLimits. It owns the
// grpc::Server and one guard thread that
//   - rebuilds the server when gRPC's listener has died: in gRPC 1.51 one
//     failed accept() (EMFILE: out of file descriptors) stops the listener for
//     good, so the node would never accept a connection again. Once
//     descriptors are free the guard shuts the old server down (its
//     connections close; clients and node links reconnect) and binds anew;
//   - hands freed heap back to the system (malloc_trim) every few seconds, so
//     memory a burst of large or stalled requests took does not stay resident.
// Methods are thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/server_limits.h"
#include "core/status.h"

namespace whistle::app {

struct ApiServerOptions {
  std::string listen;  // host:port
  std::shared_ptr<grpc::ServerCredentials> credentials;
  ServerLimits limits;
  std::vector<grpc::Service*> services;  // outlive the ApiServer
};

class ApiServer {
 public:
  // Binds and starts. INVALID_ARGUMENT naming --listen when the address cannot
  // be bound (another process on the port says so).
  static StatusOr<std::unique_ptr<ApiServer>> Start(ApiServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Health service status (kept across a rebuild).
  void SetServing(bool serving);
  // Stops accepting and waits for calls in flight until `deadline`; final.
  void Shutdown(std::chrono::system_clock::time_point deadline);
  // How often the listener was rebuilt after it died.
  int rebuilds() const { return rebuilds_.load(); }

  // Called from the gRPC log hook when an accept() failed (any thread).
  static void ListenerFailed();

 private:
  explicit ApiServer(ApiServerOptions options);
  // Builds and starts a server on options_.listen; null when it cannot bind.
  std::unique_ptr<grpc::Server> Build();
  void Guard();
  bool Rebuild();

  ApiServerOptions options_;
  grpc::ResourceQuota quota_{"whistled"};
  std::mutex mu_;  // server_, serving_, stopping_
  std::condition_variable cv_;
  std::unique_ptr<grpc::Server> server_;
  bool serving_ = false;
  bool stopping_ = false;
  std::atomic<int> rebuilds_{0};
  std::thread guard_;
};

// The open-file limit and how many descriptors the process holds now.
uint64_t FileLimit();
uint64_t OpenFiles();

}  // namespace whistle::app
