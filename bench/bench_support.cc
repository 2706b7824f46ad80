#include "bench/bench_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "tests/e2e/whistled_process.h"  // FreePort

namespace whistle::bench {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ---- Flags ----

Flags::Flags(int argc, char** argv, const std::vector<std::string>& known, const std::string& usage)
    : usage_(usage) {
  auto fail = [&](const std::string& why) {
    std::cerr << argv[0] << ": " << why << "\n" << usage_;
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage_;
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) fail("unexpected argument \"" + arg + "\"");
    std::string name = arg.substr(2);
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) fail("--" + name + ": missing value");
      value = argv[++i];
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      fail("unknown flag --" + name);
    }
    values_[name] = value;
  }
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Flags::GetInt(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') {
    std::cerr << "--" << name << ": want an integer, got \"" << it->second << "\"\n" << usage_;
    std::exit(2);
  }
  return v;
}

double Flags::GetDouble(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') {
    std::cerr << "--" << name << ": want a number, got \"" << it->second << "\"\n" << usage_;
    std::exit(2);
  }
  return v;
}

// ---- Whistled ----

Whistled::Whistled(std::string binary, std::string data_dir, std::string log_path,
                   std::vector<std::string> extra_args)
    : binary_(std::move(binary)),
      data_dir_(std::move(data_dir)),
      log_path_(std::move(log_path)),
      extra_args_(std::move(extra_args)) {}

Whistled::~Whistled() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::shared_ptr<grpc::Channel> Whistled::NewChannel() const {
  grpc::ChannelArguments args;
  // Own connection per channel, and quick reconnects while the server starts
  // (the default 1 s backoff would swamp a start-up measurement).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 5);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 20);
  return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
}

std::optional<Clock::duration> Whistled::Start(std::chrono::milliseconds timeout) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = testing::FreePort();
    metrics_port_ = testing::FreePort();
    if (auto started = StartOnce(timeout)) return started;
  }
  return std::nullopt;
}

std::optional<Clock::duration> Whistled::Restart(std::chrono::milliseconds timeout) {
  if (pid_ > 0) Terminate();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (auto started = StartOnce(timeout)) return started;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the old ports are releasing
  }
  return std::nullopt;
}

std::optional<Clock::duration> Whistled::StartOnce(std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {binary_,
                                   "--listen",
                                   address(),
                                   "--metrics-listen",
                                   "127.0.0.1:" + std::to_string(metrics_port_),
                                   "--data-dir",
                                   data_dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  // Callers present tokens of the test issuer (tests/e2e/testdata), as in the tests.
  args.push_back("--jwks-file");
  args.push_back(testing::TestJwksFile());
  auto started = Clock::now();
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  auto channel = NewChannel();
  while (Clock::now() - started < timeout) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return std::nullopt;  // exited: a port raced away, or start-up failed
    }
    if (HealthServing(*channel, std::chrono::milliseconds(200))) return Clock::now() - started;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return std::nullopt;
}

int Whistled::Kill() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int Whistled::Terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

grpc::ByteBuffer EmptyHealthRequest() {
  grpc::Slice empty("", 0);
  return grpc::ByteBuffer(&empty, 1);
}

bool HealthServing(grpc::Channel& channel, std::chrono::milliseconds deadline) {
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  grpc::ByteBuffer request = EmptyHealthRequest();
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   result = std::move(s);
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!result.ok()) return false;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return false;
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes == std::string("\x08\x01", 2);  // HealthCheckResponse{status: SERVING}
}

// ---- /proc ----

int64_t VmRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stod(f);
    if (i == 15) {
      stime = std::stod(f);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

uint64_t DirBytes(const std::string& path) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// ---- /metrics ----

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

double MetricSum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') continue;  // a longer name with this prefix
    auto space = line.rfind(' ');
    if (space != std::string::npos) sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

double MetricSumWhere(const std::string& text, const std::string& name, const std::string& labels) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{') continue;  // no labels, or a longer name with this prefix
    auto close = line.find('}', name.size());
    if (close == std::string::npos) continue;
    if (line.substr(name.size(), close - name.size()).find(labels) == std::string::npos) continue;
    auto space = line.rfind(' ');
    if (space != std::string::npos) sum += std::strtod(line.c_str() + space + 1, nullptr);
  }
  return sum;
}

// ---- latencies ----

void LatencyLog::Add(size_t shard_hint, uint32_t micros) {
  Shard& s = shards_[shard_hint % kShards];
  std::lock_guard lock(s.mu);
  s.values.push_back(micros);
}

std::vector<uint32_t> LatencyLog::Sorted() const {
  std::vector<uint32_t> all;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    all.insert(all.end(), s.values.begin(), s.values.end());
  }
  std::sort(all.begin(), all.end());
  return all;
}

double QuantileMs(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return std::nan("");
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  i = std::clamp<size_t>(i, 1, sorted.size()) - 1;
  return sorted[i] / 1000.0;
}

// ---- output ----

std::string Fixed(double v, int decimals) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string line = "|";
    for (size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < rows[r].size() ? rows[r][i] : "";
      bool left = i == 0;
      std::string pad(width[i] - cell.size(), ' ');
      line += " " + (left ? cell + pad : pad + cell) + " |";
    }
    std::cout << line << "\n";
    if (r == 0) {
      std::string rule = "|";
      for (size_t i = 0; i < width.size(); ++i) {
        rule += (i == 0 ? std::string(" ") + std::string(width[i], '-') + " |"
                        : std::string(" ") + std::string(width[i] - 1, '-') + ": |");
      }
      std::cout << rule << "\n";
    }
  }
  std::cout.flush();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

Shizuishan LoadShizuishan() {
  auto topology = core::Topology::Build(core::ShizuishanTopology());
  auto policy = core::Policy::Build(core::DefaultPolicy());
  if (!topology.ok() || !policy.ok()) {
    std::fprintf(stderr, "cannot build the embedded topology/policy\n");
    std::exit(1);
  }
  Shizuishan out{*topology, *policy, {}};
  for (const auto& j : out.topology->config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID) out.grids.push_back(j.id());
  }
  return out;
}

}  // namespace whistle::bench
