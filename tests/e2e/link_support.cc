#include "tests/e2e/link_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/policy.h"
#include "core/topology.h"
#include "link/link_manager.h"
#include "tests/e2e/certs.h"
#include "tests/e2e/scenario.h"

#ifndef WHISTLED_PATH
#error "WHISTLED_PATH must name the whistled binary"
#endif

namespace whistle::testing {

const Identity kCityLeader{"leader.szs", "leader", "szs", ""};

v1::ReportCommand ExtraordinaryReport(const std::string& request_id) {
  auto r = NeighbourDispute(DawukouIds(), request_id);
  r.set_severity(v1::SEVERITY_EXTRAORDINARY);
  return r;
}

std::string TopologyFingerprint(const v1::Topology& topology) {
  auto built = core::Topology::Build(topology);
  return built.ok() ? link::Fingerprint((*built)->config()) : "bad topology";
}

std::string PolicyFingerprint(const v1::Policy& policy) {
  auto built = core::Policy::Build(policy);
  return built.ok() ? link::Fingerprint((*built)->config()) : "bad policy";
}

const std::string& DefaultTopologyFingerprint() {
  static const std::string fp = TopologyFingerprint(core::ShizuishanTopology());
  return fp;
}

const std::string& DefaultPolicyFingerprint() {
  static const std::string fp = PolicyFingerprint(core::DefaultPolicy());
  return fp;
}

v1::LinkHello ValidHello(const std::string& node_id, const std::string& hosted_root) {
  v1::LinkHello h;
  h.set_protocol(v1::LINK_PROTOCOL_V1);
  h.set_node_id(node_id);
  h.set_hosted_root(hosted_root);
  h.set_topology_fingerprint(DefaultTopologyFingerprint());
  h.set_policy_fingerprint(DefaultPolicyFingerprint());
  return h;
}

v1::LinkFrame HelloFrame(const v1::LinkHello& hello) {
  v1::LinkFrame f;
  *f.mutable_hello() = hello;
  return f;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

grpc::Status GetLinks(const std::shared_ptr<grpc::Channel>& channel, v1::GetLinksResponse* out,
                      bool wait_for_ready) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ctx.set_wait_for_ready(wait_for_ready);
  return v1::NodeService::NewStub(channel)->GetLinks(&ctx, v1::GetLinksRequest(), out);
}

namespace {

void Prepare(grpc::ClientContext& ctx, const Identity& who) {
  who.Apply(ctx);  // identity metadata, 10 s deadline
  ctx.set_wait_for_ready(true);
}

}  // namespace

grpc::Status GetCase(const std::shared_ptr<grpc::Channel>& channel, const Identity& who,
                     const std::string& case_id, v1::Case* out) {
  grpc::ClientContext ctx;
  Prepare(ctx, who);
  v1::GetCaseRequest req;
  req.set_case_id(case_id);
  return v1::CaseService::NewStub(channel)->Get(&ctx, req, out);
}

grpc::Status ReportCase(const std::shared_ptr<grpc::Channel>& channel, const Identity& who,
                        const v1::ReportCommand& report, v1::Case* out) {
  grpc::ClientContext ctx;
  Prepare(ctx, who);
  v1::ReportCaseRequest req;
  *req.mutable_report() = report;
  return v1::CaseService::NewStub(channel)->Report(&ctx, req, out);
}

grpc::Status ActOnCase(const std::shared_ptr<grpc::Channel>& channel, const Identity& who,
                       const std::string& case_id, const v1::Command& command, v1::Case* out) {
  grpc::ClientContext ctx;
  Prepare(ctx, who);
  v1::CaseActionRequest req;
  req.set_case_id(case_id);
  *req.mutable_command() = command;
  return v1::CaseService::NewStub(channel)->Act(&ctx, req, out);
}

int64_t CountedCases(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  Prepare(ctx, kCityLeader);
  v1::CountCasesRequest req;
  req.set_jurisdiction_id("szs");
  v1::CountCasesResponse resp;
  if (!v1::CaseService::NewStub(channel)->Count(&ctx, req, &resp).ok()) return -1;
  int64_t total = 0;
  for (const auto& row : resp.counts()) total += row.count();
  return total;
}

bool Alive(int pid) {
  if (pid <= 0) return false;
  std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  // pid (comm) state ...: the state follows the last ')'.
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

v1::LinkStatus LinkTo(const v1::GetLinksResponse& links, const std::string& peer) {
  for (const auto& l : links.links()) {
    if (l.peer() == peer) return l;
  }
  return {};
}

v1::LinkStatus LinkOf(const std::shared_ptr<grpc::Channel>& channel, const std::string& peer) {
  v1::GetLinksResponse links;
  if (!GetLinks(channel, &links).ok()) return {};
  return LinkTo(links, peer);
}

std::string HttpGet(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return "";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) {
        response.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  auto body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") > response.find("\r\n") ||
      body == std::string::npos) {
    return "";
  }
  return response.substr(body + 4);
}

double MetricValue(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return -1;
}

double Metric(const std::string& metrics_address, const std::string& series) {
  return MetricValue(HttpGet(metrics_address, "/metrics"), series);
}

std::vector<std::string> LogLines(const std::string& path, const std::vector<std::string>& parts) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca,
                                                         const std::string& cert,
                                                         const std::string& key) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadText(ca);
  if (!cert.empty()) {
    options.pem_cert_chain = ReadText(cert);
    options.pem_private_key = ReadText(key);
  }
  return grpc::SslCredentials(options);
}

// ---- NodeProcess ----

NodeProcess::NodeProcess(std::string data_dir, std::vector<std::string> flags,
                         std::shared_ptr<grpc::ChannelCredentials> credentials)
    : data_dir_(std::move(data_dir)),
      log_path_(data_dir_ + ".log"),
      flags_(std::move(flags)),
      credentials_(std::move(credentials)) {
  for (int attempt = 0; attempt < 3 && !StartOnce(); ++attempt) {
  }
}

NodeProcess::~NodeProcess() { Kill(); }

bool NodeProcess::StartOnce() {
  port_ = FreePort();
  metrics_port_ = FreePort();
  std::vector<std::string> args = {WHISTLED_PATH,
                                   "--listen",
                                   address(),
                                   "--metrics-listen",
                                   metrics_address(),
                                   "--data-dir",
                                   data_dir_,
                                   "--timer-interval-ms",
                                   "200"};
  args.insert(args.end(), flags_.begin(), flags_.end());
  // Signed identities: the test issuer's keys, as WhistledProcess passes them.
  if (std::none_of(flags_.begin(), flags_.end(), [](const std::string& f) {
        return f == "--dev-header-identity" || f == "--jwks-file";
      })) {
    args.push_back("--jwks-file");
    args.push_back(TestJwksFile());
  }
  // Built before fork: the child of a threaded process may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* log = log_path_.c_str();
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    v1::GetLinksResponse links;
    if (GetLinks(channel(), &links, /*wait_for_ready=*/false).ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Kill();
  return false;
}

void NodeProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string NodeProcess::LogTail(int lines) const {
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

std::shared_ptr<grpc::Channel> NodeProcess::channel() const {
  // A channel of its own, redialling soon: one that failed while the node was
  // starting would otherwise back off for seconds.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  return grpc::CreateCustomChannel(address(), credentials_, args);
}

std::unique_ptr<v1::CaseService::Stub> NodeProcess::cases() const {
  return v1::CaseService::NewStub(channel());
}

// ---- RawLink ----

RawLink::RawLink(const std::shared_ptr<grpc::Channel>& channel)
    : stub_(v1::LinkService::NewStub(channel)) {
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  stream_ = stub_->Connect(&context_);
}

RawLink::~RawLink() {
  if (!finished_) {
    context_.TryCancel();
    stream_->Finish();
  }
}

bool RawLink::ReadSkippingPings(v1::LinkFrame* frame) {
  while (stream_->Read(frame)) {
    if (frame->has_ping()) {
      v1::LinkFrame pong;
      pong.mutable_pong()->set_sent_at_ns(frame->ping().sent_at_ns());
      stream_->Write(pong);
      continue;
    }
    if (frame->has_pong()) continue;
    return true;
  }
  return false;
}

grpc::Status RawLink::Finish() {
  if (finished_) return status_;
  stream_->WritesDone();
  v1::LinkFrame ignored;
  while (stream_->Read(&ignored)) {
  }
  status_ = stream_->Finish();
  finished_ = true;
  return status_;
}

}  // namespace whistle::testing
