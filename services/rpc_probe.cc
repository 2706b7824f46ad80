#include "services/rpc_probe.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <mutex>
#include <unordered_map>

#include "core/status.h"

namespace whistle::services {

std::string CodeLabel(grpc::StatusCode code) {
  if (code == grpc::StatusCode::UNKNOWN) return "UNKNOWN";
  return std::string(ToString(static_cast<Code>(code)));
}

struct RpcProbe::Impl {
  prometheus::Family<prometheus::Counter>* handled;
  prometheus::Family<prometheus::Histogram>* seconds;
  // The series of each method and code, found once: a label lookup in a
  // family builds and hashes a label map on every call.
  struct Series {
    prometheus::Counter* handled;
    prometheus::Histogram* seconds;
  };
  std::mutex mu;
  std::unordered_map<std::string, Series> series;  // by method \0 code; never erased

  Series& Find(std::string_view method, grpc::StatusCode code) {
    std::string key(method);
    key += '\0';
    key += static_cast<char>(code);
    std::lock_guard lock(mu);
    auto it = series.find(key);
    if (it != series.end()) return it->second;
    static const prometheus::Histogram::BucketBoundaries kBuckets = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    prometheus::Labels labels{{"method", std::string(method)}, {"code", CodeLabel(code)}};
    Series s{&handled->Add(labels), &seconds->Add(labels, kBuckets)};
    return series.emplace(std::move(key), s).first->second;  // stays put on rehash
  }
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

void RpcProbe::Observe(std::string_view method, grpc::StatusCode code,
                       std::chrono::steady_clock::time_point started) {
  if (!impl_) return;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Impl::Series& s = impl_->Find(method, code);
  s.handled->Increment();
  s.seconds->Observe(seconds);
}

}  // namespace whistle::services
