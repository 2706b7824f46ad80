// StartExposer: the Prometheus /metrics endpoint, answering 200 from the first
// request it can receive. prometheus-cpp's Exposer listens as soon as it is
// constructed but registers /metrics only with the first collectable, so a
// request in between got 404; here requests wait (begin_request) until the
// collectables are registered. Called once at start-up.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace whistle::app {

// Listens on `address` and serves `collectables` at /metrics. INVALID_ARGUMENT
// naming --metrics-listen when it cannot listen.
StatusOr<std::unique_ptr<prometheus::Exposer>> StartExposer(
    const std::string& address,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

}  // namespace whistle::app
