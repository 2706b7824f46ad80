#include "tests/e2e/whistled_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "services/token.h"
#include "whistle/v1/admin.grpc.pb.h"

#ifndef WHISTLED_PATH
#error "WHISTLED_PATH must name the whistled binary"
#endif
#ifndef WHISTLE_TEST_KEYS_DIR
#error "WHISTLE_TEST_KEYS_DIR must name tests/e2e/testdata"
#endif

namespace whistle::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "whistle-test-XXXXXX").string();
  path_ = mkdtemp(tmpl.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

namespace {

pid_t Spawn(const std::vector<std::string>& args, const std::string& log_path) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

WhistledProcess::WhistledProcess(std::string data_dir, std::vector<std::string> extra_flags)
    : WhistledProcess(std::move(data_dir), std::move(extra_flags), Ports{}) {}

WhistledProcess::WhistledProcess(std::string data_dir, std::vector<std::string> extra_flags,
                                 Ports ports)
    : data_dir_(std::move(data_dir)), extra_flags_(std::move(extra_flags)) {
  log_path_ = data_dir_ + ".log";
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = ports.grpc > 0 ? ports.grpc : FreePort();
    metrics_port_ = ports.metrics > 0 ? ports.metrics : FreePort();
    if (StartOnce()) return;
    // A port raced away, or start-up failed: try again (on new ports where free to).
    if (ports.grpc > 0 && ports.metrics > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

bool WhistledProcess::StartOnce() {
  std::vector<std::string> args = {WHISTLED_PATH,
                                   "--listen",
                                   address(),
                                   "--metrics-listen",
                                   metrics_address(),
                                   "--data-dir",
                                   data_dir_,
                                   "--timer-interval-ms",
                                   "200"};
  // Tests hand over fresh mkdtemp dirs; a test of the empty-dir refusal passes
  // --init-data-dir=false (later flags win).
  args.push_back("--init-data-dir=true");
  // Test clients check thousands of cases as one user as fast as they can; the
  // per-caller rate limit (default 1000/s) is tested on its own
  // (resources_test passes --rate-limit-per-user; later flags win).
  args.push_back("--rate-limit-per-user=0");
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  // Signed identities: the test issuer's keys, unless the test brings its own
  // or runs the node in development header mode.
  auto has = [&](const std::string& flag) {
    return std::any_of(extra_flags_.begin(), extra_flags_.end(), [&](const std::string& f) {
      return f == flag || f.rfind(flag + "=", 0) == 0;
    });
  };
  if (!has("--dev-header-identity") && !has("--jwks-file")) {
    args.push_back("--jwks-file");
    args.push_back(TestJwksFile());
  }
  pid_ = Spawn(args, log_path_);
  if (WaitServing(30000)) return true;
  Kill();
  return false;
}

bool WhistledProcess::Restart() {
  if (pid_ > 0) Terminate();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (StartOnce()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return false;
}

std::string WhistledProcess::LogTail(int lines) const {
  std::ifstream in(log_path_);
  std::vector<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(std::move(line));
    if (static_cast<int>(tail.size()) > lines) tail.erase(tail.begin());
  }
  std::string out;
  for (const auto& line : tail) out += line + "\n";
  return out;
}

WhistledProcess::~WhistledProcess() {
  if (pid_ > 0) Kill();
}

int WhistledProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -WTERMSIG(status);
}

int WhistledProcess::Kill() { return Stop(SIGKILL); }
int WhistledProcess::Terminate() { return Stop(SIGTERM); }

int WhistledProcess::ExitCode(int timeout_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

void WhistledProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int WhistledProcess::HealthStatus() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest; the answer's
  // field 1 is the status (1 SERVING, 2 NOT_SERVING).
  grpc::Slice empty_slice("", 0);
  grpc::ByteBuffer req(&empty_slice, 1);
  grpc::ByteBuffer resp;
  grpc::GenericStub stub(channel());
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   status = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : -1;
}

bool WhistledProcess::WaitServing(int timeout_ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (HealthStatus() == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::shared_ptr<grpc::Channel> WhistledProcess::channel() {
  grpc::ChannelArguments args;
  // A connection of its own, not one shared with earlier channels to this address: after
  // a Restart on the same port a shared one may still be backing off from the outage.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<v1::CaseService::Stub> WhistledProcess::cases() {
  return v1::CaseService::NewStub(channel());
}

std::unique_ptr<v1::TopologyService::Stub> WhistledProcess::topology() {
  return v1::TopologyService::NewStub(channel());
}

std::vector<std::string> WhistledProcess::TestClockFlags(int64_t start_ms) {
  return {"--test-clock-start-ms=" + std::to_string(start_ms)};
}

void WhistledProcess::SetTestClockStart(int64_t start_ms) {
  const std::string flag = "--test-clock-start-ms";
  extra_flags_.erase(std::remove_if(extra_flags_.begin(), extra_flags_.end(),
                                    [&](const std::string& f) { return f.rfind(flag, 0) == 0; }),
                     extra_flags_.end());
  extra_flags_.push_back(flag + "=" + std::to_string(start_ms));
}

int64_t WhistledProcess::AdvanceClock(int64_t delta_ms) {
  v1::AdvanceClockRequest req;
  req.set_delta_ms(delta_ms);
  v1::ClockResponse resp;
  grpc::ClientContext ctx;
  Identity::Admin().Apply(ctx);
  grpc::Status s = v1::AdminService::NewStub(channel())->AdvanceClock(&ctx, req, &resp);
  if (s.ok()) return resp.now_ms();
  ADD_FAILURE() << "AdvanceClock(" << delta_ms << "): " << s.error_code() << " "
                << s.error_message();
  return -1;
}

int64_t WhistledProcess::SetClock(int64_t now_ms) {
  v1::SetClockRequest req;
  req.set_now_ms(now_ms);
  v1::ClockResponse resp;
  grpc::ClientContext ctx;
  Identity::Admin().Apply(ctx);
  grpc::Status s = v1::AdminService::NewStub(channel())->SetClock(&ctx, req, &resp);
  if (s.ok()) return resp.now_ms();
  ADD_FAILURE() << "SetClock(" << now_ms << "): " << s.error_code() << " " << s.error_message();
  return -1;
}

std::string TestJwksFile() { return std::string(WHISTLE_TEST_KEYS_DIR) + "/jwks.json"; }
std::string TestIssuerKeyFile() { return std::string(WHISTLE_TEST_KEYS_DIR) + "/issuer.pem"; }

std::string MintTestToken(const std::string& user, const std::string& role,
                          const std::string& jurisdiction, const std::string& department) {
  // One token per identity, minted once per process (an hour is longer than any test).
  static std::mutex mu;
  static std::map<std::string, std::string> cache;
  static const std::string pem = [] {
    std::ifstream in(TestIssuerKeyFile());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }();
  auto parsed = services::ParseRoleName("role", role);
  if (!parsed.ok()) return "";
  const std::string key = user + '\n' + role + '\n' + jurisdiction + '\n' + department;
  std::lock_guard lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  services::Claims claims;
  claims.user = user;
  claims.role = *parsed;
  claims.jurisdiction = jurisdiction;
  claims.department = department;
  auto token = services::MintToken(pem, kTestKid, claims,
                                   std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count(),
                                   3600);
  if (!token.ok()) return "";
  cache.emplace(key, *token);
  return *token;
}

void Identity::Apply(grpc::ClientContext& ctx) const {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  // A token signed by the test issuer. Without a user and a known role there is
  // nothing to sign: no authorization is sent (the node says UNAUTHENTICATED).
  if (user.empty() || role.empty()) return;
  std::string token = MintTestToken(user, role, jurisdiction, department);
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
}

void Identity::ApplyHeaders(grpc::ClientContext& ctx) const {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!user.empty()) ctx.AddMetadata("x-whistle-user", user);
  if (!role.empty()) ctx.AddMetadata("x-whistle-role", role);
  if (!jurisdiction.empty()) ctx.AddMetadata("x-whistle-jurisdiction", jurisdiction);
  if (!department.empty()) ctx.AddMetadata("x-whistle-department", department);
}

std::pair<int, std::string> RunWhistled(const std::vector<std::string>& flags) {
  TempDir dir;
  std::string log = dir.path() + "/out.log";
  std::vector<std::string> args = {WHISTLED_PATH};
  args.insert(args.end(), flags.begin(), flags.end());
  pid_t pid = Spawn(args, log);
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

}  // namespace whistle::testing
