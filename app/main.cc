// whistled: config -> metrics -> storage -> actor system -> gRPC server.
// Runs until SIGTERM/SIGINT, then drains: health NOT_SERVING, in-flight calls
// finish (each answered only once durable), the store flushes, exit 0.
// SIGHUP reloads the issuer keys (--jwks-file) and never stops the node.
#include <absl/synchronization/mutex.h>
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
#include "app/api_server.h"
#include "app/build_info.h"
#include "app/collectors.h"
#include "app/flags.h"
#include "app/grpc_log.h"
#include "app/metrics_exposer.h"
#include "app/server_limits.h"
#include "core/clock.h"
#include "core/log.h"
#include "link/link_service.h"
#include "services/admin_service.h"
#include "services/assessment_service.h"
#include "services/case_service.h"
#include "services/directive_service.h"
#include "services/inbox_service.h"
#include "services/watch_service.h"
#include "storage/store.h"

namespace whistle::app {

namespace {

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

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Credentials {
  std::shared_ptr<grpc::ServerCredentials> server;
  std::shared_ptr<grpc::ChannelCredentials> channel;
  bool tls = false;
};

// TLS from the three PEM files, or plaintext (logged once) without them.
StatusOr<Credentials> LoadCredentials(const v1::NodeConfig& config) {
  Credentials out;
  if (config.tls_cert_file().empty()) {
    out.server = grpc::InsecureServerCredentials();
    out.channel = grpc::InsecureChannelCredentials();
    Log(LogLevel::kWarn, "plaintext: the gRPC port and node links are not encrypted",
        {{"hint", "set --tls-cert-file, --tls-key-file and --tls-ca-file"}});
    return out;
  }
  auto cert = ReadFile("--tls-cert-file", config.tls_cert_file());
  if (!cert.ok()) return cert.status();
  auto key = ReadFile("--tls-key-file", config.tls_key_file());
  if (!key.ok()) return key.status();
  auto ca = ReadFile("--tls-ca-file", config.tls_ca_file());
  if (!ca.ok()) return ca.status();
  grpc::SslServerCredentialsOptions server(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  server.pem_root_certs = *ca;
  server.pem_key_cert_pairs.push_back({*key, *cert});
  out.server = grpc::SslServerCredentials(server);
  grpc::SslCredentialsOptions channel;
  channel.pem_root_certs = *ca;
  channel.pem_private_key = *key;
  channel.pem_cert_chain = *cert;
  out.channel = grpc::SslCredentials(channel);
  out.tls = true;
  return out;
}

// The manual clock of --test-clock-start-ms, or null (the system clock).
std::shared_ptr<core::ManualClock> StartTestClock(const v1::NodeConfig& config) {
  if (config.test_clock_start_ms() == 0) return nullptr;
  Log(LogLevel::kWarn,
      "TEST CLOCK: --test-clock-start-ms: business time (deadlines, history stamps) is a manual "
      "clock that moves only by AdminService.SetClock/AdvanceClock; never run a real node so",
      {{"start_ms", std::to_string(config.test_clock_start_ms())},
       {"hint", "remove --test-clock-start-ms"}});
  return std::make_shared<core::ManualClock>(config.test_clock_start_ms(), core::kTestClockMaxMs);
}

int Fail(const Status& status) {
  Log(LogLevel::kError, "start-up failed", {{"error", status.ToString()}});
  return 2;
}

// Blocks until SIGTERM or SIGINT (blocked in every thread, taken here); each
// SIGHUP meanwhile reloads the issuer keys (a bad file keeps the old ones).
int WaitForSignal(const sigset_t& signals, services::Authenticator& auth,
                  const v1::NodeConfig& config) {
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig != SIGHUP) return sig;
    if (config.jwks_file().empty()) {
      Log(LogLevel::kInfo, "SIGHUP ignored: nothing to reload (no --jwks-file)");
      continue;
    }
    (void)auth.Reload(config.jwks_file());  // logged and counted either way
  }
}

// The authenticator: issuer keys from --jwks-file, or (development only)
// header identity. Refuses to start with neither.
StatusOr<std::unique_ptr<services::Authenticator>> LoadAuthenticator(
    const v1::NodeConfig& config, prometheus::Registry* registry) {
  std::shared_ptr<const services::KeySet> keys;
  if (!config.jwks_file().empty()) {
    auto loaded = services::LoadKeySet(config.jwks_file());
    if (!loaded.ok()) return loaded.status();
    keys = std::move(loaded).value();
  } else if (!config.dev_header_identity()) {
    return Status::InvalidArgument(
        "--jwks-file (WHISTLE_JWKS_FILE): required: the issuer keys callers' tokens are "
        "verified with (whistlectl token keygen makes a pair); for development without tokens, "
        "--dev-header-identity");
  }
  if (config.dev_header_identity()) {
    Log(LogLevel::kWarn,
        "DEVELOPMENT MODE: --dev-header-identity: callers are NOT authenticated; identity comes "
        "from plain x-whistle-* headers and anyone can act as anyone",
        {{"hint", "remove --dev-header-identity and pass --jwks-file"}});
  } else {
    Log(LogLevel::kInfo, "issuer keys loaded",
        {{"jwks_file", config.jwks_file()}, {"keys", std::to_string(keys->size())}});
  }
  return std::make_unique<services::Authenticator>(std::move(keys), config.dev_header_identity(),
                                                   registry);
}

int Run(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // SIGHUP reloads (issuer keys); its default action would terminate the node.
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts
  // Debian's Abseil is built with Mutex deadlock detection on (a debug aid):
  // every gRPC lock then walks a lock graph, ~3% of a node's CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--version") {
      std::printf("whistled %s (revision %s)\n", kBuildVersion, kBuildRevision);
      return 0;
    }
  }
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
  RouteGrpcLogs(level, &ApiServer::ListenerFailed);
  uint64_t file_limit = RaiseFileLimit();
  Log(LogLevel::kInfo, "starting",
      {{"version", kBuildVersion},
       {"revision", kBuildRevision},
       {"node_id", config->node_id()},
       {"hosted_jurisdiction", config->hosted_jurisdiction()},
       {"child_jurisdictions", config->child_jurisdictions()},
       {"parent", config->parent_address()},
       {"file_limit", std::to_string(file_limit)}});

  auto topology = LoadTopology(*config);
  if (!topology.ok()) return Fail(topology.status());
  auto policy = LoadPolicy(*config);
  if (!policy.ok()) return Fail(policy.status());

  auto registry = std::make_shared<prometheus::Registry>();
  auto auth = LoadAuthenticator(*config, registry.get());
  if (!auth.ok()) return Fail(auth.status());
  auto& ready = prometheus::BuildGauge()
                    .Name("whistle_node_ready")
                    .Help("1 when the node is serving, 0 while starting or draining.")
                    .Register(*registry)
                    .Add({});
  prometheus::BuildGauge()
      .Name("whistle_build_info")
      .Help("Constant 1, labelled with the version and git revision whistled was built from.")
      .Register(*registry)
      .Add({{"version", kBuildVersion}, {"revision", kBuildRevision}})
      .Set(1);
  // /metrics answers from the moment it listens (ready 0) while the store opens,
  // which can take long: the registry is there before the first request can be.
  auto process_collector = std::make_shared<ProcessCollector>();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!config->metrics_listen().empty()) {
    auto started = StartExposer(config->metrics_listen(), {registry, process_collector});
    if (!started.ok()) return Fail(started.status());
    exposer = std::move(started).value();
  }
  prometheus::BuildGauge()
      .Name("whistle_node_info")
      .Help("Constant 1, labelled with the node's identity.")
      .Register(*registry)
      .Add({{"node_id", config->node_id()},
            {"version", kBuildVersion},
            {"hosted_jurisdiction", config->hosted_jurisdiction().empty()
                                        ? (*topology)->root().id()
                                        : config->hosted_jurisdiction()}})
      .Set(1);

  std::shared_ptr<core::ManualClock> test_clock = StartTestClock(*config);
  storage::Options store_options;
  store_options.clock = test_clock.get();
  store_options.path = config->data_dir();
  store_options.node_id = config->node_id();
  store_options.init = config->init_data_dir();
  store_options.accept_data_loss = config->accept_data_loss();
  store_options.change_log_max_entries = static_cast<uint64_t>(config->change_log_max_entries());
  store_options.change_log_max_age_ms = int64_t{config->change_log_max_age_s()} * 1000;
  auto store = storage::Store::Open(store_options);
  if (!store.ok()) return Fail(store.status());
  actors::NodeOptions node_options;
  node_options.node_id = config->node_id();
  node_options.hosted_jurisdiction = config->hosted_jurisdiction();
  node_options.max_inflight_writes = config->max_inflight_writes();
  node_options.timer_interval_ms = config->timer_interval_ms();
  node_options.clock = test_clock;
  node_options.child_roots = SplitList(config->child_jurisdictions());
  node_options.has_parent = !config->parent_address().empty();
  auto credentials = LoadCredentials(*config);
  if (!credentials.ok()) return Fail(credentials.status());
  auto node = actors::Node::Start(node_options, *topology, *policy, std::move(store).value(),
                                  registry.get());
  if (!node.ok()) return Fail(node.status());

  auto storage_collector = std::make_shared<StorageCollector>(**node);
  if (exposer) exposer->RegisterCollectable(storage_collector);

  link::LinkOptions link_options;
  link_options.node_id = config->node_id();
  link_options.parent_address = config->parent_address();
  link_options.keepalive_ms = config->link_keepalive_ms();
  link_options.tls = credentials->tls;
  link_options.channel_credentials = credentials->channel;
  link_options.topology_fingerprint = link::Fingerprint((*topology)->config());
  link_options.policy_fingerprint = link::Fingerprint((*policy)->config());
  auto links =
      std::make_unique<link::LinkManager>(link_options, **node, (*node)->store(), registry.get());
  (*node)->store().SetOutboxListener(
      [l = links.get()](const std::string& peer, uint64_t seq) { l->OutboxWritten(peer, seq); });
  (*node)->SetLinkHub(links.get());
  link::LinkServiceImpl link_service(*links);
  link::NodeServiceImpl node_service(*links);

  services::RpcProbe rpc_probe(registry.get());
  services::RateLimiter rate_limiter(
      {.per_second = static_cast<double>(config->rate_limit_per_user()),
       .burst = static_cast<double>(config->rate_limit_burst())},
      registry.get());
  services::CaseService case_service(**node, rpc_probe, **auth, &rate_limiter);
  services::TopologyService topology_service(**node, rpc_probe, **auth, &rate_limiter);
  services::AdminService admin_service(**node, rpc_probe, **auth, test_clock.get());
  services::DirectiveService directive_service(**node, rpc_probe, **auth, &rate_limiter);
  services::InboxService inbox_service(**node, rpc_probe, **auth, &rate_limiter);
  services::AssessmentService assessment_service(**node, rpc_probe, **auth, &rate_limiter);
  services::WatchOptions watch_options;
  watch_options.max_lag = static_cast<uint64_t>(config->watch_max_lag());
  services::WatchService watch_service(**node, rpc_probe, **auth, &rate_limiter, registry.get(),
                                       watch_options);
  // Set before serving; the node (and its store) is reset below while
  // watch_service is still alive.
  (*node)->store().SetChangeListener([w = &watch_service](uint64_t seq) { w->OnCommitted(seq); });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ApiServerOptions api_options;
  api_options.listen = config->listen();
  api_options.credentials = credentials->server;
  api_options.limits = LimitsFrom(*config);
  api_options.services = {&case_service,     &link_service,  &node_service,
                          &topology_service, &admin_service, &directive_service,
                          &inbox_service,    &watch_service, &assessment_service};
  auto server = ApiServer::Start(std::move(api_options));
  if (!server.ok()) return Fail(server.status());
  (*server)->SetServing(true);
  links->Start();
  ready.Set(1);
  Log(LogLevel::kInfo, "serving",
      {{"version", kBuildVersion},
       {"revision", kBuildRevision},
       {"node_id", config->node_id()},
       {"listen", config->listen()},
       {"metrics", config->metrics_listen()},
       {"data_dir", config->data_dir()},
       {"jurisdictions", std::to_string((*topology)->jurisdiction_count())},
       {"hosted", (*node)->placement().hosted_root()},
       {"parent", config->parent_address()},
       {"children", config->child_jurisdictions()}});

  int sig = WaitForSignal(signals, **auth, *config);
  Log(LogLevel::kInfo, "draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  ready.Set(0);
  (*server)->SetServing(false);
  std::this_thread::sleep_for(std::chrono::milliseconds(config->drain_delay_ms()));
  links->Stop();  // ends link streams, so the server's shutdown does not wait on them
  Log(LogLevel::kInfo, "draining: node links closed; waiting for calls in flight",
      {{"grace_ms", std::to_string(config->shutdown_grace_ms())}});
  (*server)->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(config->shutdown_grace_ms()));
  Log(LogLevel::kInfo, "draining: calls finished; closing the store");
  node->reset();  // actors stop, the commit queue drains, RocksDB closes
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace

}  // namespace whistle::app

int main(int argc, char** argv) { return whistle::app::Run(argc, argv); }
