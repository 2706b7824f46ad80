// RpcProbe: gRPC server metrics by method and status code. Registered once;
// Observe() is thread-safe and called from whichever thread finishes a call.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace whistle::services {

class RpcProbe {
 public:
  explicit RpcProbe(prometheus::Registry* registry);  // null: records nothing
  ~RpcProbe();
  void Observe(std::string_view method, grpc::StatusCode code,
               std::chrono::steady_clock::time_point started);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "INVALID_ARGUMENT" etc., the label value of a code.
std::string CodeLabel(grpc::StatusCode code);

}  // namespace whistle::services
