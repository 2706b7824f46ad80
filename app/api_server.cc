#include "app/api_server.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <malloc.h>
#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "core/log.h"

namespace whistle::app {

namespace {

// Set by the gRPC log hook; read and cleared by the guard.
std::atomic<bool> g_listener_failed{false};

constexpr auto kGuardTick = std::chrono::milliseconds(200);
constexpr int kTrimEveryTicks = 25;         // malloc_trim every 5 s
constexpr uint64_t kSpareDescriptors = 64;  // free before the listener is rebuilt
constexpr int kMaxWaitTicks = 50;           // ... or after 10 s, whatever holds them
constexpr auto kRebuildGrace = std::chrono::seconds(1);

// Why `listen` cannot be bound, asked of the kernel directly (gRPC only logs it).
std::string BindError(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return gai_strerror(rc);
  }
  std::string error = "gRPC could not start a server there";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as gRPC does
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = std::strerror(errno);
      if (errno == EADDRINUSE) error += " (another process is listening on this port)";
      close(fd);
      break;
    }
    close(fd);
  }
  freeaddrinfo(found);
  return error;
}

// gRPC 1.51 answers a request body that does not parse as the method's
// message with UNIMPLEMENTED and no message (the callback handler's fallback,
// server_callback_handlers.h); nothing of ours runs. For our own methods -- whose
// handlers never answer UNIMPLEMENTED -- that status is turned into what it
// means: INVALID_ARGUMENT, naming the problem. Unknown methods keep UNIMPLEMENTED.
class BodyErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BodyErrorInterceptor(const char* method) : ours_(IsOurs(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (ours_ && methods->QueryInterceptionHookPoint(
                     grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            "request body: not a valid protobuf message of this method's request type"));
      }
    }
    methods->Proceed();
  }

 private:
  // A method of ours that exists: "/whistle.v1.CaseService/Report" is
  // whistle.v1.CaseService.Report in the generated descriptor pool.
  static bool IsOurs(const char* method) {
    if (method == nullptr) return false;
    std::string name(method);
    if (name.rfind("/whistle.v1.", 0) != 0) return false;
    name = name.substr(1);
    auto slash = name.find('/');
    if (slash == std::string::npos) return false;
    name[slash] = '.';
    return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name) != nullptr;
  }
  bool ours_;
};

class BodyErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new BodyErrorInterceptor(info->method());
  }
};

}  // namespace

uint64_t FileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

uint64_t OpenFiles() {
  std::error_code ec;
  uint64_t n = 0;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return UINT64_MAX;  // no descriptor left even to look
  for (std::filesystem::directory_iterator end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

void ApiServer::ListenerFailed() { g_listener_failed = true; }

ApiServer::ApiServer(ApiServerOptions options) : options_(std::move(options)) {}

std::unique_ptr<grpc::Server> ApiServer::Build() {
  grpc::ServerBuilder builder;
  ApplyServerLimits(options_.limits, quota_, builder);
  int bound_port = 0;
  builder.AddListeningPort(options_.listen, options_.credentials, &bound_port);
  for (grpc::Service* service : options_.services) builder.RegisterService(service);
  // The link and node services are synchronous (one thread per link stream): poll
  // briefly so a shutdown does not wait out a long completion-queue timeout.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 100);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BodyErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) return nullptr;
  return server;
}

StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(ApiServerOptions options) {
  std::unique_ptr<ApiServer> api(new ApiServer(std::move(options)));
  api->server_ = api->Build();
  if (!api->server_) {
    return Status::InvalidArgument("--listen (WHISTLE_LISTEN): cannot listen on " +
                                   api->options_.listen + ": " + BindError(api->options_.listen));
  }
  g_listener_failed = false;
  api->guard_ = std::thread([a = api.get()] { a->Guard(); });
  return api;
}

ApiServer::~ApiServer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (guard_.joinable()) guard_.join();
}

void ApiServer::SetServing(bool serving) {
  std::lock_guard lock(mu_);
  serving_ = serving;
  if (server_) server_->GetHealthCheckService()->SetServingStatus(serving);
}

void ApiServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  std::unique_ptr<grpc::Server> server;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    server = std::move(server_);
  }
  cv_.notify_all();
  if (guard_.joinable()) guard_.join();
  if (server) server->Shutdown(deadline);
}

void ApiServer::Guard() {
  int ticks = 0;
  int failed_ticks = 0;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, kGuardTick, [&] { return stopping_; });
    if (stopping_) break;
    if (++ticks % kTrimEveryTicks == 0) malloc_trim(0);
    if (!g_listener_failed.load()) {
      failed_ticks = 0;
      continue;
    }
    // Out of descriptors: wait until enough are free (clients hang up, idle
    // connections time out), then bind anew. Past kMaxWaitTicks rebuild anyway:
    // shutting the old server down closes its connections, which frees them.
    const uint64_t open = OpenFiles();  // UINT64_MAX: not even one to look with
    const bool short_of_files = open == UINT64_MAX || open + kSpareDescriptors > FileLimit();
    if (short_of_files && ++failed_ticks < kMaxWaitTicks) continue;
    failed_ticks = 0;
    g_listener_failed = false;
    lock.unlock();
    bool ok = Rebuild();
    lock.lock();
    if (!ok) g_listener_failed = true;  // try again on the next tick
  }
}

bool ApiServer::Rebuild() {
  uint64_t open = OpenFiles();
  Log(LogLevel::kWarn, "gRPC listener stopped accepting (out of file descriptors): restarting it",
      {{"listen", options_.listen},
       {"open_files", open == UINT64_MAX ? "all" : std::to_string(open)},
       {"file_limit", std::to_string(FileLimit())}});
  std::unique_ptr<grpc::Server> old;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return true;
    old = std::move(server_);
  }
  // Connections of the old server close; clients and node links reconnect.
  if (old) old->Shutdown(std::chrono::system_clock::now() + kRebuildGrace);
  old.reset();
  std::unique_ptr<grpc::Server> fresh = Build();
  std::lock_guard lock(mu_);
  if (!fresh) {
    Log(LogLevel::kError, "gRPC listener could not be restarted; retrying",
        {{"listen", options_.listen}, {"error", BindError(options_.listen)}});
    return false;
  }
  fresh->GetHealthCheckService()->SetServingStatus(serving_);
  if (stopping_) {
    fresh->Shutdown(std::chrono::system_clock::now());
    return true;
  }
  server_ = std::move(fresh);
  rebuilds_++;
  Log(LogLevel::kInfo, "gRPC listener restarted", {{"listen", options_.listen}});
  return true;
}

}  // namespace whistle::app
