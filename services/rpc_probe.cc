#include "services/rpc_probe.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <mutex>
#include <string_view>
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
  // family builds and hashes a label map on every call. Looked up by the
  // method's string_view, so a call allocates nothing here.
  struct Series {
    prometheus::Counter* handled = nullptr;
    prometheus::Histogram* seconds = nullptr;
  };
  static constexpr int kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED
  struct MethodHash {
    using is_transparent = void;
    size_t operator()(std::string_view m) const { return std::hash<std::string_view>{}(m); }
  };
  std::mutex mu;
  // By method, then by code; never erased (nodes, and so the series, stay put).
  std::unordered_map<std::string, std::array<Series, kCodes>, MethodHash, std::equal_to<>> series;

  Series& Find(std::string_view method, grpc::StatusCode code) {
    const int c = code >= 0 && code < kCodes ? code : grpc::StatusCode::UNKNOWN;
    std::lock_guard lock(mu);
    auto it = series.find(method);
    if (it == series.end()) it = series.try_emplace(std::string(method)).first;
    Series& s = it->second[c];
    if (s.handled == nullptr) {
      static const prometheus::Histogram::BucketBoundaries kBuckets = {
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
      const auto as_code = static_cast<grpc::StatusCode>(c);
      prometheus::Labels labels{{"method", std::string(method)}, {"code", CodeLabel(as_code)}};
      s = Series{&handled->Add(labels), &seconds->Add(labels, kBuckets)};
    }
    return s;
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
