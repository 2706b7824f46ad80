#include "services/rpc_probe.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "core/status.h"

namespace whistle::services {

std::string CodeLabel(grpc::StatusCode code) {
  if (code == grpc::StatusCode::UNKNOWN) return "UNKNOWN";
  return std::string(ToString(static_cast<Code>(code)));
}

struct RpcProbe::Impl {
  prometheus::Family<prometheus::Counter>* handled;
  prometheus::Family<prometheus::Histogram>* seconds;
};

RpcProbe::RpcProbe(prometheus::Registry* registry) {
  if (registry == nullptr) return;
  impl_ = std::make_unique<Impl>();
  impl_->handled = &prometheus::BuildCounter()
                        .Name("whistle_grpc_server_handled_total")
                        .Help("gRPC calls completed, by full method name and status code.")
                        .Register(*registry);
  impl_->seconds = &prometheus::BuildHistogram()
                        .Name("whistle_grpc_server_handling_seconds")
                        .Help(
                            "Time from receiving a gRPC call to its answer (durable for "
                            "writes), by method and status code.")
                        .Register(*registry);
}

RpcProbe::~RpcProbe() = default;

void RpcProbe::Observe(const std::string& method, grpc::StatusCode code,
                       std::chrono::steady_clock::time_point started) {
  if (!impl_) return;
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  prometheus::Labels labels{{"method", method}, {"code", CodeLabel(code)}};
  impl_->handled->Add(labels).Increment();
  impl_->seconds->Add(labels, kBuckets).Observe(seconds);
}

}  // namespace whistle::services
