#include "app/metrics_exposer.h"

#include <CivetServer.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace whistle::app {

namespace {

std::atomic<bool> g_registered{false};

// civetweb calls this first for every request: hold it until /metrics exists
// (microseconds after the server started), then let civetweb route it (0).
int HoldUntilRegistered(mg_connection* /*connection*/) {
  while (!g_registered.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
  return 0;
}

}  // namespace

StatusOr<std::unique_ptr<prometheus::Exposer>> StartExposer(
    const std::string& address,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  static CivetCallbacks callbacks;  // civetweb copies it; static for good measure
  callbacks.begin_request = HoldUntilRegistered;
  std::unique_ptr<prometheus::Exposer> exposer;
  try {  // prometheus-cpp reports a busy port by throwing
    exposer = std::make_unique<prometheus::Exposer>(address, 2, &callbacks);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("--metrics-listen: " + std::string(e.what()));
  }
  for (const auto& c : collectables) exposer->RegisterCollectable(c);
  g_registered = true;
  return exposer;
}

}  // namespace whistle::app
