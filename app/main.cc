// whistled: config -> metrics -> storage -> actor system -> gRPC server.
// Runs until SIGTERM/SIGINT, then drains: health NOT_SERVING, in-flight calls
// finish (each answered only once durable), the store flushes, exit 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "actors/node.h"
#include "app/collectors.h"
#include "app/flags.h"
#include "app/log.h"
#include "services/case_service.h"
#include "storage/store.h"

namespace whistle::app {

namespace {

constexpr char kVersion[] = "0.1.0";

StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(flag + ": cannot read \"" + path + "\"");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

StatusOr<std::shared_ptr<const core::Topology>> LoadTopology(const v1::NodeConfig& config) {
  v1::Topology topology;
  if (config.topology_file().empty()) {
    topology = core::ShizuishanTopology();
  } else {
    auto text = ReadFile("--topology-file", config.topology_file());
    if (!text.ok()) return text.status();
    auto parsed = core::ParseTopology(*text, config.topology_file());
    if (!parsed.ok()) return parsed.status();
    topology = std::move(parsed).value();
  }
  auto built = core::Topology::Build(std::move(topology));
  if (!built.ok()) return built.status();
  if (!config.hosted_jurisdiction().empty() &&
      (*built)->Find(config.hosted_jurisdiction()) == nullptr) {
    return Status::InvalidArgument("--hosted-jurisdiction: unknown jurisdiction \"" +
                                   config.hosted_jurisdiction() + "\"");
  }
  return built;
}

StatusOr<std::shared_ptr<const core::Policy>> LoadPolicy(const v1::NodeConfig& config) {
  v1::Policy policy;
  if (config.policy_file().empty()) {
    policy = core::DefaultPolicy();
  } else {
    auto text = ReadFile("--policy-file", config.policy_file());
    if (!text.ok()) return text.status();
    auto parsed = core::ParsePolicy(*text, config.policy_file());
    if (!parsed.ok()) return parsed.status();
    policy = std::move(parsed).value();
  }
  return core::Policy::Build(std::move(policy));
}

int Fail(const Status& status) {
  Log(LogLevel::kError, "start-up failed", {{"error", status.ToString()}});
  return 2;
}

// Blocks until SIGTERM or SIGINT (blocked in every thread, taken here).
int WaitForSignal(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

int Run(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts

  bool help = false;
  auto config = ParseFlags(argc, argv, &help);
  if (!config.ok()) return Fail(config.status());
  if (help) {
    std::fputs(HelpText().c_str(), stdout);
    return 0;
  }
  if (Status s = ValidateConfig(*config); !s.ok()) return Fail(s);
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(config->log_level(), &level);
  SetLogLevel(level);

  auto topology = LoadTopology(*config);
  if (!topology.ok()) return Fail(topology.status());
  auto policy = LoadPolicy(*config);
  if (!policy.ok()) return Fail(policy.status());

  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!config->metrics_listen().empty()) {
    try {  // prometheus-cpp reports a busy port by throwing
      exposer = std::make_unique<prometheus::Exposer>(config->metrics_listen());
    } catch (const std::exception& e) {
      return Fail(Status::InvalidArgument("--metrics-listen: " + std::string(e.what())));
    }
  }
  auto& ready = prometheus::BuildGauge()
                    .Name("whistle_node_ready")
                    .Help("1 when the node is serving, 0 while starting or draining.")
                    .Register(*registry)
                    .Add({});
  prometheus::BuildGauge()
      .Name("whistle_node_info")
      .Help("Constant 1, labelled with the node's identity.")
      .Register(*registry)
      .Add({{"node_id", config->node_id()},
            {"version", kVersion},
            {"hosted_jurisdiction", config->hosted_jurisdiction().empty()
                                        ? (*topology)->root().id()
                                        : config->hosted_jurisdiction()}})
      .Set(1);

  storage::Options store_options;
  store_options.path = config->data_dir();
  auto store = storage::Store::Open(store_options);
  if (!store.ok()) return Fail(store.status());
  actors::NodeOptions node_options;
  node_options.node_id = config->node_id();
  node_options.hosted_jurisdiction = config->hosted_jurisdiction();
  node_options.max_inflight_writes = config->max_inflight_writes();
  node_options.timer_interval_ms = config->timer_interval_ms();
  auto node = actors::Node::Start(node_options, *topology, *policy, std::move(store).value(),
                                  registry.get());
  if (!node.ok()) return Fail(node.status());

  auto process_collector = std::make_shared<ProcessCollector>();
  auto storage_collector = std::make_shared<StorageCollector>(**node);
  if (exposer) {
    exposer->RegisterCollectable(registry);
    exposer->RegisterCollectable(process_collector);
    exposer->RegisterCollectable(storage_collector);
  }

  services::RpcProbe rpc_probe(registry.get());
  services::CaseService case_service(**node, rpc_probe);
  services::TopologyService topology_service(**node, rpc_probe);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(config->listen(), grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(&case_service);
  builder.RegisterService(&topology_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    return Fail(Status::InvalidArgument("--listen: cannot listen on " + config->listen()));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  ready.Set(1);
  Log(LogLevel::kInfo, "serving",
      {{"listen", config->listen()},
       {"metrics", config->metrics_listen()},
       {"data_dir", config->data_dir()},
       {"jurisdictions", std::to_string((*topology)->jurisdiction_count())}});

  int sig = WaitForSignal(signals);
  Log(LogLevel::kInfo, "draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  ready.Set(0);
  server->GetHealthCheckService()->SetServingStatus(false);
  std::this_thread::sleep_for(std::chrono::milliseconds(config->drain_delay_ms()));
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(config->shutdown_grace_ms()));
  node->reset();  // actors stop, the commit queue drains, RocksDB closes
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace

}  // namespace whistle::app

int main(int argc, char** argv) { return whistle::app::Run(argc, argv); }
