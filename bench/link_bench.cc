// link_bench: node links between real whistled processes on this machine:
// a city node (szs) with a county child (dwk), which has a township child
// (dwk-s01), each its own process on 127.0.0.1 with its own data dir, each
// child dialling its parent, as app/federation.sh runs them.
//
//   1. latency: escalation latency per hop (township -> county -> city) under
//      an open-loop background load of reports on the township. Measured from
//      the escalate call's OK (the transition, with its outbox entry, is
//      durable on the sender) until a Get on the receiving node says the case
//      is owned there (read_only false; the receiver stores it owned in the
//      same batch as the link's inbox number, so this is also durable). The
//      receiver records no arrival time of its own (a history entry's at_ms is
//      the sender's, in ms), so the hop is detected by polling; baseline: the
//      same Get round trip against a case already there, and one fdatasync.
//   2. stream: baseline for 3 and 4: a plain gRPC bidirectional stream (server and
//      client in this process, 127.0.0.1, no storage) carrying LinkFrame
//      envelopes of the size the link sends, each acknowledged.
//   3. throughput: N major reports on the township (each is created there and
//      owned by the county: one transfer each, township -> county; the county
//      then announces itself to the township's copy, one envelope back) from a
//      closed loop, link up; acknowledged transfers/s (the township's last
//      ack) and the county's receive rate.
//   4. catchup: the county is stopped (SIGKILL by default), N major reports
//      queue in the township's outbox, the county restarts on the same ports
//      and data: time to SERVING, to the link being up again, and until the
//      last message is acknowledged (durable on the county). Its drain rate is
//      the link's throughput from a full outbox.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "bench/bench_support.h"
#include "core/topology.h"
#include "tests/e2e/whistled_process.h"  // TempDir, Identity
#include "whistle/v1/link.grpc.pb.h"
#include "whistle/v1/service.grpc.pb.h"

#ifndef WHISTLED_PATH
#error "WHISTLED_PATH must name the whistled binary"
#endif

namespace whistle::bench {
namespace {

using namespace std::chrono_literals;
using testing::Identity;

constexpr char kUsage[] =
    "usage: link_bench [flags]\n"
    "  --quick             short run for trying (100 samples, 4,000 + 3,000 messages)\n"
    "  --samples N         escalations measured per hop (default 1000)\n"
    "  --load-rate R       background reports/s on the township while measuring (default 500)\n"
    "  --poll-us U         pause between the Get polls of one detection (default 100)\n"
    "  --messages N        link messages of the throughput phase (default 20000)\n"
    "  --catchup N         link messages queued while the county is down (default 10000)\n"
    "  --concurrency C     reports in flight when filling (default 64)\n"
    "  --channels K        gRPC channels to the township, one TCP connection each (default 4)\n"
    "  --stop kill|term    how the county is stopped for the catch-up (default kill)\n"
    "  --keepalive-ms K    --link-keepalive-ms of every node (default 1000, whistled's)\n"
    "  --township ID       the township node's root (default dwk-s01)\n"
    "  --phases LIST       comma list of latency,stream,throughput,catchup (default all)\n"
    "  --perf PREFIX       perf record the county and township during the throughput and\n"
    "                      catch-up phases into PREFIX-<phase>.data (needs perf)\n"
    "  --keep DIR          data dirs and logs in DIR (new), kept afterwards (default: a temp dir)\n"
    "  --whistled PATH     whistled binary (default: the one built with this bench)\n";

constexpr uint64_t kLinkWindow = 512;  // link/session.cc kWindow: envelopes in flight

// Child processes (nodes, perf) to kill if this bench is interrupted
// (SIGINT/SIGTERM), so no whistled outlives it; slots are overwritten on restart.
std::atomic<pid_t> g_children[8];
enum Slot { kCitySlot, kCountySlot, kTownshipSlot, kPerfSlot };

void Track(Slot slot, pid_t pid) { g_children[slot] = pid; }

void OnSignal(int sig) {
  for (auto& c : g_children) {
    pid_t pid = c.load();
    if (pid > 0) kill(pid, SIGKILL);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint32_t Micros(Clock::duration d) {
  return static_cast<uint32_t>(
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

double Ms(Clock::duration d) { return Seconds(d) * 1000; }

std::vector<uint32_t> SortedCopy(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool Has(const std::string& list, const std::string& phase) {
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == phase) return true;
  }
  return false;
}

// ---- the federation ----

struct Ids {
  std::string city, county, township;
  std::vector<std::string> grids;  // every grid of the township
};

struct Node {
  std::string name;  // city | county | township
  std::string node_id;
  std::unique_ptr<Whistled> process;
  std::shared_ptr<grpc::Channel> channel;  // for calls from the main thread
  std::unique_ptr<v1::CaseService::Stub> cases;
  std::unique_ptr<v1::NodeService::Stub> links;

  void Connect() {
    channel = process->NewChannel();
    cases = v1::CaseService::NewStub(channel);
    links = v1::NodeService::NewStub(channel);
  }
};

std::string NodeIdFor(const std::string& root) {
  std::string id;
  for (char c : root) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) id += c;
  }
  return id;
}

grpc::Status GetLinks(Node& n, v1::GetLinksResponse* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 2s);
  return n.links->GetLinks(&ctx, v1::GetLinksRequest(), out);
}

// The link to `peer` ("parent" or a child's root); empty when absent or unanswered.
v1::LinkStatus LinkOf(Node& n, const std::string& peer) {
  v1::GetLinksResponse r;
  if (!GetLinks(n, &r).ok()) return {};
  for (const auto& l : r.links()) {
    if (l.peer() == peer) return l;
  }
  return {};
}

// "parent: sent 3 received 1; dwk-s01: ..." (envelopes over each link of `n`, since it started).
std::string LinkCounters(Node& n) {
  v1::GetLinksResponse r;
  if (!GetLinks(n, &r).ok()) return "(no answer)";
  std::string out;
  for (const auto& l : r.links()) {
    if (!out.empty()) out += "; ";
    out += l.peer() + ": sent " + std::to_string(l.sent()) + ", received " +
           std::to_string(l.received());
  }
  return out;
}

bool AllLinksUp(std::vector<Node*> nodes) {
  for (Node* n : nodes) {
    v1::GetLinksResponse r;
    if (!GetLinks(*n, &r).ok()) return false;
    for (const auto& l : r.links()) {
      if (!l.connected()) return false;
    }
  }
  return true;
}

bool WaitUntil(const std::function<bool()>& done, Clock::duration timeout,
               Clock::duration every = 5ms) {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return done();
}

// ---- identities and calls ----

const Identity kLeader{"sun.city", "leader", "szs", ""};  // may read any case on any node

Identity GridWorker(const std::string& grid) { return {"gw." + grid, "grid_worker", grid, ""}; }

void FillReport(const std::string& grid, const std::string& request_id, v1::Severity severity,
                v1::ReportCommand* r) {
  r->set_request_id(request_id);
  r->set_category("dispute.neighbour");
  r->set_severity(severity);
  r->mutable_place()->set_grid_id(grid);
  r->mutable_place()->set_address("3号楼2单元");
  r->set_text("楼上楼下因漏水发生争吵");
}

grpc::Status Report(v1::CaseService::Stub& stub, const std::string& grid,
                    const std::string& request_id, v1::Severity severity, v1::Case* out) {
  grpc::ClientContext ctx;
  GridWorker(grid).Apply(ctx);
  v1::ReportCaseRequest req;
  FillReport(grid, request_id, severity, req.mutable_report());
  return stub.Report(&ctx, req, out);
}

grpc::Status Escalate(v1::CaseService::Stub& stub, const Identity& who, const std::string& id,
                      const std::string& reason, v1::Case* out) {
  grpc::ClientContext ctx;
  who.Apply(ctx);
  v1::CaseActionRequest req;
  req.set_case_id(id);
  req.mutable_command()->mutable_escalate()->set_reason(reason);
  return stub.Act(&ctx, req, out);
}

grpc::Status Get(v1::CaseService::Stub& stub, const std::string& id, v1::Case* out) {
  grpc::ClientContext ctx;
  kLeader.Apply(ctx);
  v1::GetCaseRequest req;
  req.set_case_id(id);
  return stub.Get(&ctx, req, out);
}

grpc::Status History(v1::CaseService::Stub& stub, const std::string& id,
                     v1::GetHistoryResponse* out) {
  grpc::ClientContext ctx;
  kLeader.Apply(ctx);
  v1::GetHistoryRequest req;
  req.set_case_id(id);
  return stub.History(&ctx, req, out);
}

// Polls Get on `stub` (pausing `pause` between calls) until the case is owned
// there. `at` is when the answering Get returned (nullopt after `timeout`).
struct Detection {
  std::optional<Clock::time_point> at;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> gets;  // sent, returned
  std::string error;                                                  // first unexpected error
  int polls() const { return static_cast<int>(gets.size()); }
  std::vector<uint32_t> Rtts() const {
    std::vector<uint32_t> out;
    for (const auto& [sent, back] : gets) out.push_back(Micros(back - sent));
    return out;
  }
  // The case became owned after the server answered the last Get that did not
  // see it and before it answered the one that did; each answer is taken at
  // its call's midpoint, `from` standing in for a Get before the first.
  // Returns the midpoint of that interval, minus `from`.
  Clock::duration Estimate(Clock::time_point from) const {
    auto mid = [](const std::pair<Clock::time_point, Clock::time_point>& g) {
      return g.first + (g.second - g.first) / 2;
    };
    Clock::time_point seen = mid(gets.back());
    Clock::time_point before = gets.size() >= 2 ? mid(gets[gets.size() - 2]) : from;
    return before + (seen - before) / 2 - from;
  }
};

Detection PollOwned(v1::CaseService::Stub& stub, const std::string& id, Clock::duration pause,
                    Clock::duration timeout) {
  Detection d;
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    v1::Case c;
    auto sent = Clock::now();
    grpc::Status s = Get(stub, id, &c);
    auto now = Clock::now();
    d.gets.emplace_back(sent, now);
    if (s.ok() && !c.read_only()) {
      d.at = now;
      return d;
    }
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND && d.error.empty()) {
      d.error = std::to_string(s.error_code()) + " " + s.error_message();
    }
    if (pause > Clock::duration::zero()) std::this_thread::sleep_for(pause);
  }
  return d;
}

// ---- report load on the township (async, many in flight) ----

class ReportClient {
 public:
  ReportClient(const Whistled& node, size_t channels, std::vector<std::string> grids,
               std::string run)
      : grids_(std::move(grids)), run_(std::move(run)) {
    for (size_t i = 0; i < channels; ++i) {
      stubs_.push_back(v1::CaseService::NewStub(node.NewChannel()));
    }
  }
  size_t channels() const { return stubs_.size(); }
  // `done` runs once, on a gRPC thread.
  void Start(size_t channel, v1::Severity severity, std::function<void(const grpc::Status&)> done) {
    struct Call {
      grpc::ClientContext ctx;
      v1::ReportCaseRequest request;
      v1::Case response;
    };
    uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
    const std::string& grid = grids_[n % grids_.size()];
    auto* call = new Call;
    GridWorker(grid).Apply(call->ctx);
    call->ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    FillReport(grid, run_ + std::to_string(n), severity, call->request.mutable_report());
    stubs_[channel % stubs_.size()]->async()->Report(
        &call->ctx, &call->request, &call->response,
        [call, done = std::move(done)](grpc::Status s) {
          done(s);
          delete call;
        });
  }

 private:
  std::vector<std::unique_ptr<v1::CaseService::Stub>> stubs_;
  std::vector<std::string> grids_;
  std::string run_;
  std::atomic<uint64_t> next_{0};
};

// Outcome of a batch of calls; shared with the callbacks.
struct Calls {
  std::atomic<uint64_t> ok{0}, errors{0};
  std::atomic<int64_t> inflight{0};
  std::mutex mu;
  std::condition_variable cv;
  std::string first_error;        // guarded by mu
  std::vector<uint32_t> latency;  // µs, guarded by mu
  Clock::time_point last_ok;      // guarded by mu

  // Records one answer (latency from `due`).
  void Record(const grpc::Status& s, Clock::time_point due) {
    auto now = Clock::now();
    std::lock_guard lock(mu);
    if (s.ok()) {
      ok.fetch_add(1);
      latency.push_back(Micros(now - due));
      last_ok = std::max(last_ok, now);
    } else {
      errors.fetch_add(1);
      if (first_error.empty())
        first_error = std::to_string(s.error_code()) + " " + s.error_message();
    }
  }
  void Release() {
    if (inflight.fetch_sub(1) == 1) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
  }
  bool WaitIdle(Clock::duration timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return inflight.load() == 0; });
  }
};

// Open loop: report i is due at begin + i / rate whatever the answers do
// (latency counted from the due time); runs until Stop().
class OpenLoad {
 public:
  OpenLoad(ReportClient& client, double rate) : client_(client), rate_(rate) {
    thread_ = std::thread([this] { Run(); });
  }
  ~OpenLoad() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    calls_->WaitIdle(30s);
  }
  std::shared_ptr<Calls> calls() const { return calls_; }
  double seconds() const { return Seconds(end_ - begin_); }
  uint64_t skipped() const { return skipped_; }

 private:
  void Run() {
    begin_ = Clock::now();
    for (uint64_t i = 0; !stop_; ++i) {
      auto due = begin_ + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(i) / rate_));
      std::this_thread::sleep_until(due);
      if (calls_->inflight.load() >= 5000) {
        ++skipped_;  // the node is far behind; do not pile up without bound
        continue;
      }
      calls_->inflight.fetch_add(1);
      auto calls = calls_;
      client_.Start(i, v1::SEVERITY_GENERAL, [calls, due](const grpc::Status& s) {
        calls->Record(s, due);
        calls->Release();
      });
    }
    end_ = Clock::now();
  }

  ReportClient& client_;
  const double rate_;
  std::shared_ptr<Calls> calls_ = std::make_shared<Calls>();
  std::atomic<bool> stop_{false};
  Clock::time_point begin_, end_;
  uint64_t skipped_ = 0;
  std::thread thread_;
};

// Closed loop: `total` reports of `severity`, `concurrency` in flight. Blocks
// until all are answered or `timeout` passes.
std::shared_ptr<Calls> RunClosed(ReportClient& client, uint64_t total, size_t concurrency,
                                 v1::Severity severity, Clock::duration timeout) {
  auto calls = std::make_shared<Calls>();  // inflight counts the slots still running
  auto issued = std::make_shared<std::atomic<uint64_t>>(0);
  const auto deadline = Clock::now() + timeout;
  // Each slot keeps one call in flight until `total` are issued; a failed call
  // retires its slot (errors make the run invalid anyway).
  auto issue = std::make_shared<std::function<void(size_t)>>();
  *issue = [&client, calls, issued, total, severity, deadline,
            weak = std::weak_ptr<std::function<void(size_t)>>(issue)](size_t slot) {
    if (issued->fetch_add(1) >= total || Clock::now() >= deadline) return calls->Release();
    auto sent = Clock::now();
    client.Start(slot, severity, [calls, slot, sent, weak](const grpc::Status& s) {
      calls->Record(s, sent);
      auto next = weak.lock();
      if (!s.ok() || !next) return calls->Release();
      (*next)(slot);
    });
  };
  calls->inflight = static_cast<int64_t>(concurrency);
  for (size_t slot = 0; slot < concurrency; ++slot) (*issue)(slot);
  calls->WaitIdle(timeout + 30s);
  return calls;
}

// ---- CPU accounting of one phase ----

struct CpuWindow {
  std::vector<std::pair<std::string, pid_t>> procs;
  std::vector<double> begin;
  double self = 0, machine = 0;
  Clock::time_point t0;

  explicit CpuWindow(std::vector<std::pair<std::string, pid_t>> p) : procs(std::move(p)) {
    for (auto& [name, pid] : procs) begin.push_back(ProcessCpuSeconds(pid));
    self = SelfCpuSeconds();
    machine = MachineBusySeconds();
    t0 = Clock::now();
  }
  // "city 0.12, county 0.30, ... cores" over the window.
  std::string Summary() const {
    double secs = Seconds(Clock::now() - t0);
    if (secs <= 0) return "";
    std::string out;
    double sum = 0;
    for (size_t i = 0; i < procs.size(); ++i) {
      double used = ProcessCpuSeconds(procs[i].second) - begin[i];
      sum += used;
      out += procs[i].first + " " + Fixed(used / secs, 2) + ", ";
    }
    double me = SelfCpuSeconds() - self;
    double other = MachineBusySeconds() - machine - sum - me;
    out +=
        "bench " + Fixed(me / secs, 2) + ", other procs " + Fixed(std::max(0.0, other) / secs, 2);
    return out + " (CPUs busy, over " + Fixed(secs, 1) + " s)";
  }
};

// ---- metrics of one node ----

struct NodeMetrics {
  double commit_sum = 0, commit_count = 0, commits = 0, syncs = 0;
  double get_sum = 0, get_count = 0, act_sum = 0, act_count = 0;
  static NodeMetrics Read(const Whistled& n) {
    std::string text = HttpGet(n.metrics_port(), "/metrics");
    NodeMetrics m;
    m.commit_sum = MetricSum(text, "whistle_storage_commit_seconds_sum");
    m.commit_count = MetricSum(text, "whistle_storage_commit_seconds_count");
    m.commits = MetricSum(text, "whistle_storage_commits_total");
    m.syncs = MetricSum(text, "whistle_storage_wal_syncs_total");
    m.get_sum = MetricSumWhere(text, "whistle_grpc_server_handling_seconds_sum", "/Get\"");
    m.get_count = MetricSumWhere(text, "whistle_grpc_server_handling_seconds_count", "/Get\"");
    m.act_sum = MetricSumWhere(text, "whistle_grpc_server_handling_seconds_sum", "/Act\"");
    m.act_count = MetricSumWhere(text, "whistle_grpc_server_handling_seconds_count", "/Act\"");
    return m;
  }
  // Means over the window since `before`, in ms.
  std::string Since(const NodeMetrics& b) const {
    auto mean = [](double s, double c) {
      return c > 0 ? Fixed(1000 * s / c, 2) : std::string("-");
    };
    return "transition commit (queue+write+fsync) mean " +
           mean(commit_sum - b.commit_sum, commit_count - b.commit_count) + " ms, " +
           "writes/WAL sync " +
           (syncs > b.syncs ? Fixed((commits - b.commits) / (syncs - b.syncs), 1) : "-") +
           ", Act handling mean " + mean(act_sum - b.act_sum, act_count - b.act_count) +
           " ms, Get handling mean " + mean(get_sum - b.get_sum, get_count - b.get_count) + " ms";
  }
};

// ---- the county's receive counter over time, with CPU ----

// Samples every `every`: the envelopes the county has received from the
// township (its GetLinks counter, minus its value at the start; the
// /metrics page has the same figure but costs the node far more to render)
// and the CPU seconds of both ends, until Stop() or `target` messages
// (bounded to 300 s).
class Timeline {
 public:
  struct Point {
    Clock::time_point at;
    double received = 0, county_cpu = 0, township_cpu = 0;
  };
  // `from_zero`: count from 0 (a county just started) rather than from the counter's value now.
  Timeline(const Whistled& county_node, std::string township_root, pid_t county, pid_t township,
           double target, Clock::duration every, bool from_zero = false)
      : stub_(v1::NodeService::NewStub(county_node.NewChannel())), peer_(std::move(township_root)) {
    base_ = from_zero ? 0 : Received();
    thread_ = std::thread([=, this] {
      auto until = Clock::now() + 300s;
      while (!stop_ && Clock::now() < until) {
        Point p{Clock::now(), Received() - base_, ProcessCpuSeconds(county),
                ProcessCpuSeconds(township)};
        {
          std::lock_guard lock(mu_);
          points_.push_back(p);
        }
        if (p.received >= target) break;
        std::this_thread::sleep_for(every);
      }
    });
  }
  ~Timeline() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Messages received since the timeline began.
  double Delta() const { return Received() - base_; }
  // The county's counter now; NaN without an answer (it may still be starting).
  double Received() const {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::GetLinksResponse r;
    if (!stub_->GetLinks(&ctx, v1::GetLinksRequest(), &r).ok()) return NAN;
    for (const auto& l : r.links()) {
      if (l.peer() == peer_) return static_cast<double>(l.received());
    }
    return NAN;
  }
  // The stretch between the first samples at or past `lo` and `hi` messages.
  struct Window {
    bool ok = false;
    double messages = 0, seconds = 0, county_cpu = 0, township_cpu = 0;
    double rate() const { return seconds > 0 ? messages / seconds : NAN; }
    // CPU µs per message of each end.
    std::string Cpu() const {
      if (messages <= 0) return "";
      return "CPU per message: county " + Fixed(1e6 * county_cpu / messages, 0) + " µs, township " +
             Fixed(1e6 * township_cpu / messages, 0) + " µs";
    }
  };
  Window Between(double lo, double hi) const {
    std::lock_guard lock(mu_);
    const Point *a = nullptr, *b = nullptr;
    for (const auto& p : points_) {
      if (!a && p.received >= lo) a = &p;
      if (!b && p.received >= hi) b = &p;
    }
    Window w;
    if (!a || !b || b->at <= a->at) return w;
    w.ok = true;
    w.messages = b->received - a->received;
    w.seconds = Seconds(b->at - a->at);
    w.county_cpu = b->county_cpu - a->county_cpu;
    w.township_cpu = b->township_cpu - a->township_cpu;
    return w;
  }

 private:
  std::unique_ptr<v1::NodeService::Stub> stub_;
  const std::string peer_;
  double base_ = 0;
  mutable std::mutex mu_;
  std::vector<Point> points_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---- optional: perf record of the nodes during a phase ----

// Runs `perf record -e cpu-clock --call-graph dwarf -p <pids> -o <path>` until destroyed
// (SIGINT, then wait; SIGKILL after 10 s). Does nothing when `path` is empty.
class Perf {
 public:
  Perf(const std::string& path, const std::vector<pid_t>& pids) {
    if (path.empty()) return;
    std::string list;
    for (pid_t p : pids) list += (list.empty() ? "" : ",") + std::to_string(p);
    std::vector<std::string> args = {"perf", "record",       "-q",          "-e", "cpu-clock", "-F",
                                     "999",  "--call-graph", "dwarf,16384", "-p", list,        "-o",
                                     path};
    pid_ = fork();
    if (pid_ == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("perf", argv.data());
      _exit(127);
    }
    Track(kPerfSlot, pid_);
    std::this_thread::sleep_for(300ms);  // perf attaches
    std::cout << "  perf recording into " << path << "\n";
  }
  ~Perf() {
    if (pid_ <= 0) return;
    Track(kPerfSlot, 0);
    kill(pid_, SIGINT);
    for (int i = 0; i < 1000; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(10ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
};

// ---- baseline: fdatasync of a small append in the same filesystem ----

std::vector<uint32_t> FsyncLatencies(const std::string& dir, int count) {
  std::vector<uint32_t> out;
  std::string path = dir + "/fsync-probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return out;
  std::string block(1024, 'x');
  for (int i = 0; i < count; ++i) {
    auto t = Clock::now();
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
    if (fdatasync(fd) != 0) break;
    out.push_back(Micros(Clock::now() - t));
  }
  close(fd);
  unlink(path.c_str());
  std::sort(out.begin(), out.end());
  return out;
}

// ---- baseline: plain gRPC bidirectional stream, no storage ----

// Acknowledges every envelope as soon as it is read.
class AckService final : public v1::LinkService::Service {
 public:
  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<v1::LinkFrame, v1::LinkFrame>* stream) override {
    v1::LinkFrame in, ack;
    while (stream->Read(&in)) {
      if (!in.has_envelope()) continue;
      ack.mutable_ack()->set_seq(in.envelope().seq());
      if (!stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }
};

struct StreamResult {
  uint64_t messages = 0;
  double seconds = 0;
  size_t frame_bytes = 0;
  double cpu = 0;  // CPU seconds of this process (client and server) during the run
  std::string error;
  double rate() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
};

// `count` copies of `frame` (seq 1..count) over one stream, at most `window`
// unacknowledged; a writer and a reader thread, as a link session has.
StreamResult PlainStream(v1::LinkFrame frame, uint64_t count, uint64_t window) {
  StreamResult r;
  r.frame_bytes = frame.ByteSizeLong();
  AckService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    r.error = "could not start the in-process server";
    return r;
  }
  {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                             grpc::InsecureChannelCredentials(), args);
    auto stub = v1::LinkService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto stream = stub->Connect(&ctx);
    std::mutex mu;
    std::condition_variable cv;
    uint64_t acked = 0;
    bool broken = false;
    Clock::time_point start = Clock::now(), last_ack = start;
    std::thread reader([&] {
      v1::LinkFrame in;
      while (stream->Read(&in)) {
        if (!in.has_ack()) continue;
        std::lock_guard lock(mu);
        acked = std::max<uint64_t>(acked, in.ack().seq());
        last_ack = Clock::now();
        cv.notify_all();
        if (acked >= count) break;
      }
      std::lock_guard lock(mu);
      broken = acked < count;
      cv.notify_all();
    });
    const double cpu0 = SelfCpuSeconds();
    start = Clock::now();
    for (uint64_t seq = 1; seq <= count; ++seq) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return broken || seq - acked <= window; });
        if (broken) break;
      }
      frame.mutable_envelope()->set_seq(seq);
      if (!stream->Write(frame)) break;
    }
    stream->WritesDone();
    reader.join();
    grpc::Status s = stream->Finish();
    r.cpu = SelfCpuSeconds() - cpu0;
    r.messages = acked;
    r.seconds = Seconds(last_ack - start);
    if (acked < count) r.error = "stream ended early: " + s.error_message();
  }
  server->Shutdown(std::chrono::system_clock::now() + 2s);
  return r;
}

// ---- output helpers ----

std::vector<std::string> LatencyRow(const std::string& name, const std::vector<uint32_t>& sorted,
                                    const std::string& note) {
  return {name,
          std::to_string(sorted.size()),
          Fixed(QuantileMs(sorted, 0.5), 2),
          Fixed(QuantileMs(sorted, 0.9), 2),
          Fixed(QuantileMs(sorted, 0.99), 2),
          sorted.empty() ? "-" : Fixed(sorted.back() / 1000.0, 2),
          note};
}

std::string Now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));
  return buf;
}

struct Goal {
  std::string what;
  bool met;
  std::string figure;
};

int Main(int argc, char** argv) {
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // --quick takes no value; the flag parser wants one.
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    args.push_back(a == "--quick" ? "--quick=1" : a);
  }
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  Flags flags(
      static_cast<int>(argp.size()), argp.data(),
      {"quick", "samples", "load-rate", "poll-us", "messages", "catchup", "concurrency", "channels",
       "stop", "keepalive-ms", "township", "phases", "perf", "keep", "whistled"},
      kUsage);
  const bool quick = flags.GetInt("quick", 0) != 0;
  const int samples =
      static_cast<int>(std::max<int64_t>(1, flags.GetInt("samples", quick ? 100 : 1000)));
  const double load_rate = flags.GetDouble("load-rate", 500);
  const auto poll_pause =
      std::chrono::microseconds(std::max<int64_t>(0, flags.GetInt("poll-us", 100)));
  const uint64_t messages =
      static_cast<uint64_t>(std::max<int64_t>(1, flags.GetInt("messages", quick ? 4000 : 20000)));
  const uint64_t catchup =
      static_cast<uint64_t>(std::max<int64_t>(1, flags.GetInt("catchup", quick ? 3000 : 10000)));
  const size_t concurrency =
      static_cast<size_t>(std::max<int64_t>(1, flags.GetInt("concurrency", 64)));
  const size_t channels = static_cast<size_t>(std::max<int64_t>(1, flags.GetInt("channels", 4)));
  const std::string stop = flags.Get("stop", "kill");
  const int keepalive = static_cast<int>(std::max<int64_t>(50, flags.GetInt("keepalive-ms", 1000)));
  const std::string phases = flags.Get("phases", "latency,stream,throughput,catchup");
  const std::string binary = flags.Get("whistled", WHISTLED_PATH);
  const std::string perf_prefix = flags.Get("perf", "");
  if (stop != "kill" && stop != "term") {
    std::cerr << "--stop: want kill or term\n" << kUsage;
    return 2;
  }

  // Ids from the embedded topology.
  Shizuishan szs = LoadShizuishan();
  Ids ids;
  ids.township = flags.Get("township", "dwk-s01");
  const auto* tj = szs.topology->Find(ids.township);
  if (tj == nullptr || tj->level() != v1::LEVEL_TOWNSHIP) {
    std::cerr << "--township " << ids.township << ": not a township of the Shizuishan tree\n";
    return 2;
  }
  ids.county = szs.topology->AncestorAt(ids.township, v1::LEVEL_COUNTY)->id();
  ids.city = szs.topology->root().id();
  for (const auto& g : szs.grids) {
    if (szs.topology->IsWithin(g, ids.township)) ids.grids.push_back(g);
  }
  const Identity street{"zhao.street", "staff", ids.township, ""};
  const Identity county_staff{"qian.county", "staff", ids.county, ""};

  std::cout << "link_bench: " << command_line << "\n"
            << "date: " << Now() << "; machine: " << std::thread::hardware_concurrency()
            << " CPUs; load average at start " << LoadAverage() << "\n"
            << "nodes: " << ids.city << " (city) <- " << ids.county << " (county) <- "
            << ids.township << " (township, " << ids.grids.size()
            << " grids), one whistled each, 127.0.0.1, --link-keepalive-ms " << keepalive << "\n";

  // Data dirs and logs: a temporary directory, or --keep DIR (left in place for a look afterwards).
  std::optional<testing::TempDir> tmp;
  std::string root = flags.Get("keep", "");
  if (root.empty()) {
    root = tmp.emplace().path();
  } else if (std::error_code ec; !std::filesystem::create_directories(root, ec) || ec) {
    std::cerr << "--keep " << root << ": want a directory that does not exist yet\n";
    return 2;
  }
  Node city{"city", NodeIdFor(ids.city), nullptr, nullptr, nullptr, nullptr};
  Node county{"county", NodeIdFor(ids.county), nullptr, nullptr, nullptr, nullptr};
  Node township{"township", NodeIdFor(ids.township), nullptr, nullptr, nullptr, nullptr};
  auto common = [&](const std::string& id, const std::string& root) {
    return std::vector<std::string>{"--node-id",
                                    id,
                                    "--hosted-jurisdiction",
                                    root,
                                    "--link-keepalive-ms",
                                    std::to_string(keepalive)};
  };
  // Declared after the nodes, so destroyed before them: nothing left to kill on a late signal.
  struct Untrack {
    ~Untrack() {
      for (auto& c : g_children) c = 0;
    }
  } untrack;
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  auto start = [&](Node& n, Slot slot, std::vector<std::string> extra) {
    // A benchmark measures capacity, not admission: no per-caller rate limit.
    extra.insert(extra.end(), {"--rate-limit-per-user", "0"});
    n.process = std::make_unique<Whistled>(binary, root + "/" + n.name,
                                           root + "/" + n.name + ".log", std::move(extra));
    auto up = n.process->Start(30s);
    Track(slot, n.process->pid());
    if (!up) {
      std::cerr << n.name << " did not start; log " << n.process->log_path() << ":\n";
      std::system(("tail -n 20 " + n.process->log_path()).c_str());
      return false;
    }
    n.Connect();
    std::cout << "  " << n.name << " pid " << n.process->pid() << " on " << n.process->address()
              << ", SERVING after " << Fixed(Ms(*up), 0) << " ms\n";
    return true;
  };
  {
    auto f = common(city.node_id, ids.city);
    f.insert(f.end(), {"--child-jurisdictions", ids.county});
    if (!start(city, kCitySlot, f)) return 1;
  }
  {
    auto f = common(county.node_id, ids.county);
    f.insert(f.end(),
             {"--child-jurisdictions", ids.township, "--parent-address", city.process->address()});
    if (!start(county, kCountySlot, f)) return 1;
  }
  {
    auto f = common(township.node_id, ids.township);
    f.insert(f.end(), {"--parent-address", county.process->address()});
    if (!start(township, kTownshipSlot, f)) return 1;
  }
  if (!WaitUntil([&] { return AllLinksUp({&city, &county, &township}); }, 20s, 20ms)) {
    std::cerr << "links did not come up; logs in " << root << "\n";
    return 1;
  }
  std::cout << "  links up\n";
  auto procs = [&] {
    return std::vector<std::pair<std::string, pid_t>>{{"city", city.process->pid()},
                                                      {"county", county.process->pid()},
                                                      {"township", township.process->pid()}};
  };
  const std::string run = "lb-" + std::to_string(getpid()) + "-";
  ReportClient load_client(*township.process, channels, ids.grids, run + "load-");
  ReportClient major_client(*township.process, channels, ids.grids, run + "major-");
  std::vector<Goal> goals;
  std::vector<std::vector<std::string>> latency_rows, throughput_rows, catchup_rows;

  // A case the county owns (a major report) and its envelope, as the township sends it.
  v1::LinkFrame sample_frame;
  std::string county_case;
  {
    v1::Case c;
    grpc::Status s =
        Report(*township.cases, ids.grids.front(), run + "probe", v1::SEVERITY_MAJOR, &c);
    if (!s.ok() || c.owner_id() != ids.county) {
      std::cerr << "major report on the township: " << s.error_message() << " owner "
                << c.owner_id() << " (want " << ids.county << ")\n";
      return 1;
    }
    county_case = c.id();
    Detection d = PollOwned(*county.cases, county_case, 1ms, 10s);
    if (!d.at) {
      std::cerr << "major report " << county_case << " never reached the county\n";
      return 1;
    }
    v1::Case copy;
    v1::GetHistoryResponse h;
    if (!Get(*township.cases, county_case, &copy).ok() ||
        !History(*township.cases, county_case, &h).ok()) {
      std::cerr << "cannot read " << county_case << " back from the township\n";
      return 1;
    }
    auto* env = sample_frame.mutable_envelope();
    env->set_seq(1);
    env->set_written_at_ms(WallMs());
    auto* sync = env->mutable_payload()->mutable_case_sync();
    *sync->mutable_case_() = copy;
    for (const auto& e : h.entries()) *sync->add_history() = e;
    std::cout << "  one link message (LinkFrame with a major report's CaseSync: the case and its "
              << h.entries_size() << " history entry): " << sample_frame.ByteSizeLong()
              << " bytes\n";
  }

  // ---- 1. latency per hop ----
  if (Has(phases, "latency")) {
    std::cout << "phase latency: " << samples << " escalations, township -> county -> city, "
              << "background " << Fixed(load_rate, 0) << " reports/s on the township ..."
              << std::endl;
    auto fsyncs = FsyncLatencies(root, quick ? 100 : 300);
    std::vector<uint32_t> hop1, hop2, est1, est2, esc1, esc2, base_county, base_city, poll_rtts;
    std::vector<uint32_t> polls1, polls2;
    uint64_t failures = 0;
    std::string first_failure;
    auto fail = [&](const std::string& what) {
      if (failures++ == 0) first_failure = what;
    };
    std::string city_case;  // a case the city owns, once the first sample got there
    NodeMetrics t0 = NodeMetrics::Read(*township.process), c0 = NodeMetrics::Read(*county.process),
                y0 = NodeMetrics::Read(*city.process);
    CpuWindow cpu(procs());
    auto phase_deadline = Clock::now() + std::chrono::seconds(quick ? 60 : 300);
    {
      OpenLoad load(load_client, load_rate);
      std::this_thread::sleep_for(1s);  // the load settles first
      for (int i = 0; i < samples && Clock::now() < phase_deadline; ++i) {
        // Baselines, interleaved: one Get of a case already owned there.
        for (auto [stub, id, out] : {std::tuple{county.cases.get(), county_case, &base_county},
                                     std::tuple{city.cases.get(), city_case, &base_city}}) {
          if (id.empty()) continue;
          Detection d = PollOwned(*stub, id, poll_pause, 2s);
          if (d.at) out->push_back(d.Rtts().back());
        }
        // A case the township root owns: report on a grid, escalate to the township.
        const std::string& grid = ids.grids[static_cast<size_t>(i) % ids.grids.size()];
        v1::Case c;
        grpc::Status s = Report(*township.cases, grid, run + "esc-" + std::to_string(i),
                                v1::SEVERITY_GENERAL, &c);
        if (!s.ok()) {
          fail("report: " + s.error_message());
          continue;
        }
        const std::string id = c.id();
        if (s = Escalate(*township.cases, street, id, "to the street", &c); !s.ok()) {
          fail("escalate to the township: " + s.error_message());
          continue;
        }
        // Hop 1: township -> county.
        auto sent = Clock::now();
        if (s = Escalate(*township.cases, street, id, "to the county", &c); !s.ok()) {
          fail("escalate to the county: " + s.error_message());
          continue;
        }
        auto ok1 = Clock::now();
        esc1.push_back(Micros(ok1 - sent));
        Detection d1 = PollOwned(*county.cases, id, poll_pause, 5s);
        for (uint32_t r : d1.Rtts()) poll_rtts.push_back(r);
        if (!d1.at) {
          fail("hop 1: not owned on the county after 5 s " + d1.error);
          continue;
        }
        hop1.push_back(Micros(*d1.at - ok1));
        est1.push_back(Micros(d1.Estimate(ok1)));
        polls1.push_back(static_cast<uint32_t>(d1.polls()));
        // Hop 2: county -> city. The county may still be handing the case to its actor.
        grpc::Status s2;
        Clock::time_point sent2, ok2;
        for (int attempt = 0; attempt < 50; ++attempt) {
          sent2 = Clock::now();
          s2 = Escalate(*county.cases, county_staff, id, "to the city", &c);
          ok2 = Clock::now();
          if (s2.error_code() != grpc::StatusCode::UNAVAILABLE) break;
          std::this_thread::sleep_for(1ms);
        }
        if (!s2.ok()) {
          fail("escalate to the city: " + s2.error_message());
          continue;
        }
        esc2.push_back(Micros(ok2 - sent2));
        Detection d2 = PollOwned(*city.cases, id, poll_pause, 5s);
        for (uint32_t r : d2.Rtts()) poll_rtts.push_back(r);
        if (!d2.at) {
          fail("hop 2: not owned on the city after 5 s " + d2.error);
          continue;
        }
        hop2.push_back(Micros(*d2.at - ok2));
        est2.push_back(Micros(d2.Estimate(ok2)));
        polls2.push_back(static_cast<uint32_t>(d2.polls()));
        if (city_case.empty()) city_case = id;
      }
      load.Stop();
      auto calls = load.calls();
      std::lock_guard lock(calls->mu);
      auto lat = SortedCopy(calls->latency);
      std::cout << "  background load: " << calls->ok << " reports in " << Fixed(load.seconds(), 1)
                << " s (" << Fixed(static_cast<double>(calls->ok) / load.seconds(), 0)
                << "/s), p50 " << Fixed(QuantileMs(lat, 0.5), 2) << " ms, p99 "
                << Fixed(QuantileMs(lat, 0.99), 2) << " ms, errors " << calls->errors
                << (calls->first_error.empty() ? "" : " (" + calls->first_error + ")")
                << (load.skipped() ? ", skipped " + std::to_string(load.skipped()) : "") << "\n";
      latency_rows.push_back(LatencyRow("background: Report on the township, open loop " +
                                            Fixed(load_rate, 0) + "/s (from its due time)",
                                        lat, ""));
    }
    std::cout << "  CPU: " << cpu.Summary() << "\n"
              << "  township: " << NodeMetrics::Read(*township.process).Since(t0) << "\n"
              << "  county:   " << NodeMetrics::Read(*county.process).Since(c0) << "\n"
              << "  city:     " << NodeMetrics::Read(*city.process).Since(y0) << "\n";
    v1::LinkStatus up1 = LinkOf(township, "parent"), up2 = LinkOf(county, "parent");
    std::cout << "  link ping round trip (last): township->county " << Fixed(up1.rtt_ms(), 2)
              << " ms, county->city " << Fixed(up2.rtt_ms(), 2) << " ms\n";
    if (failures > 0) {
      std::cout << "  " << failures << " samples failed; first: " << first_failure << "\n";
    }
    // Does the hop get slower as the run goes on? p50 per tenth, in sample order.
    auto tenths = [](const std::vector<uint32_t>& in_order) {
      std::string out;
      const size_t n = in_order.size();
      for (size_t t = 0; t < 10 && n >= 10; ++t) {
        std::vector<uint32_t> part(
            in_order.begin() + static_cast<std::ptrdiff_t>(t * n / 10),
            in_order.begin() + static_cast<std::ptrdiff_t>((t + 1) * n / 10));
        std::sort(part.begin(), part.end());
        out += " " + Fixed(QuantileMs(part, 0.5), 2);
      }
      return out;
    };
    std::cout << "  p50 by tenth of the samples, in order (ms): hop 1" << tenths(hop1) << "; hop 2"
              << tenths(hop2) << "\n";
    std::sort(hop1.begin(), hop1.end());
    std::sort(hop2.begin(), hop2.end());
    std::sort(est1.begin(), est1.end());
    std::sort(est2.begin(), est2.end());
    std::sort(esc1.begin(), esc1.end());
    std::sort(esc2.begin(), esc2.end());
    std::sort(base_county.begin(), base_county.end());
    std::sort(base_city.begin(), base_city.end());
    std::sort(poll_rtts.begin(), poll_rtts.end());
    std::sort(polls1.begin(), polls1.end());
    std::sort(polls2.begin(), polls2.end());
    auto polls_note = [](const std::vector<uint32_t>& p) {
      return p.empty() ? std::string()
                       : "Gets per detection: median " + std::to_string(p[p.size() / 2]) +
                             ", max " + std::to_string(p.back());
    };
    latency_rows.push_back(LatencyRow("baseline: fdatasync of a 1 KiB append, same filesystem",
                                      fsyncs, "the floor of one durable write"));
    latency_rows.push_back(LatencyRow("baseline: Get round trip on the county (case already there)",
                                      base_county, "one poll"));
    latency_rows.push_back(LatencyRow("baseline: Get round trip on the city (case already there)",
                                      base_city, "one poll"));
    latency_rows.push_back(
        LatencyRow("all Get polls made while detecting the hops", poll_rtts,
                   "pause between polls " + std::to_string(poll_pause.count()) + " µs"));
    latency_rows.push_back(
        LatencyRow("escalate call on the township (OK = durable there)", esc1, ""));
    latency_rows.push_back(LatencyRow(
        "hop 1: township escalate OK -> owned on the county (detected)", hop1, polls_note(polls1)));
    latency_rows.push_back(
        LatencyRow("hop 1: same, estimated (midpoint between the last two polls)", est1,
                   "detection overhead removed, roughly"));
    latency_rows.push_back(
        LatencyRow("escalate call on the county (OK = durable there)", esc2, ""));
    latency_rows.push_back(LatencyRow("hop 2: county escalate OK -> owned on the city (detected)",
                                      hop2, polls_note(polls2)));
    latency_rows.push_back(
        LatencyRow("hop 2: same, estimated (midpoint between the last two polls)", est2,
                   "detection overhead removed, roughly"));
    for (auto [name, v, e] :
         {std::tuple{"hop 1", &hop1, &est1}, std::tuple{"hop 2", &hop2, &est2}}) {
      double p50 = QuantileMs(*v, 0.5), p99 = QuantileMs(*v, 0.99);
      std::string est = " detected; " + Fixed(QuantileMs(*e, 0.5), 2) + " / " +
                        Fixed(QuantileMs(*e, 0.99), 2) + " ms p50/p99 estimated";
      goals.push_back({std::string(name) + " p50 <= 3 ms", !v->empty() && p50 <= 3,
                       Fixed(p50, 2) + " ms" + est});
      goals.push_back({std::string(name) + " p99 <= 10 ms", !v->empty() && p99 <= 10,
                       Fixed(p99, 2) + " ms" + est});
    }
  }

  // ---- 2. baseline: plain gRPC stream ----
  StreamResult plain;
  if (Has(phases, "stream")) {
    const int rounds = 3;
    std::cout << "phase stream: plain gRPC bidirectional stream, " << rounds << " rounds of "
              << messages << " frames of " << sample_frame.ByteSizeLong()
              << " bytes, ack per frame, window " << kLinkWindow << " ..." << std::endl;
    CpuWindow cpu(procs());
    std::vector<StreamResult> runs;
    for (int i = 0; i < rounds; ++i) {
      runs.push_back(PlainStream(sample_frame, messages, kLinkWindow));
      if (!runs.back().error.empty()) std::cout << "  error: " << runs.back().error << "\n";
    }
    std::cout << "  CPU: " << cpu.Summary() << "\n";
    std::sort(runs.begin(), runs.end(),
              [](const StreamResult& x, const StreamResult& y) { return x.rate() < y.rate(); });
    plain = runs[runs.size() / 2];
    throughput_rows.push_back(
        {"baseline: plain gRPC bidi stream in this process (127.0.0.1, no storage), ack per frame",
         std::to_string(plain.messages), Fixed(plain.seconds, 2), Fixed(plain.rate(), 0), "100 %",
         "median of " + std::to_string(rounds) + " (" + Fixed(runs.front().rate(), 0) + " - " +
             Fixed(runs.back().rate(), 0) + "); CPU per message, both ends: " +
             (plain.messages > 0 ? Fixed(1e6 * plain.cpu / static_cast<double>(plain.messages), 0)
                                 : std::string("-")) +
             " µs"});
  }
  auto vs_plain = [&](double rate) {
    return plain.rate() > 0 && !std::isnan(rate) ? Fixed(100 * rate / plain.rate(), 1) + " %"
                                                 : std::string("-");
  };

  // ---- 3. throughput with the link up ----
  if (Has(phases, "throughput")) {
    std::cout << "phase throughput: " << messages << " major reports on the township (each one "
              << "transfer to the county, which announces itself back), closed loop " << concurrency
              << " in flight, link up ..." << std::endl;
    v1::LinkStatus before = LinkOf(township, "parent");
    NodeMetrics t0 = NodeMetrics::Read(*township.process), c0 = NodeMetrics::Read(*county.process);
    CpuWindow cpu(procs());
    std::unique_ptr<Perf> perf;
    if (!perf_prefix.empty()) {
      perf = std::make_unique<Perf>(
          perf_prefix + "-throughput.data",
          std::vector<pid_t>{county.process->pid(), township.process->pid()});
    }
    Timeline timeline(*county.process, ids.township, county.process->pid(), township.process->pid(),
                      static_cast<double>(messages), 10ms);
    const auto begin = Clock::now();
    const int64_t begin_wall = WallMs();
    auto calls = RunClosed(major_client, messages, concurrency, v1::SEVERITY_MAJOR, 240s);
    Clock::time_point reports_done;
    {
      std::lock_guard lock(calls->mu);
      reports_done = calls->last_ok;
    }
    const uint64_t n = calls->ok.load();
    // Every message acknowledged: the outbox is empty (its depth is refreshed each second).
    bool drained = WaitUntil(
        [&] {
          v1::LinkStatus l = LinkOf(township, "parent");
          return l.outbox_depth() == 0 && l.sent() >= before.sent() + n;
        },
        120s, 20ms);
    std::this_thread::sleep_for(50ms);  // the ack's own bookkeeping (see link/session.cc OnAck)
    v1::LinkStatus after = LinkOf(township, "parent");
    timeline.Stop();
    perf.reset();
    std::cout << "  CPU: " << cpu.Summary() << "\n"
              << "  township: " << NodeMetrics::Read(*township.process).Since(t0) << "\n"
              << "  county:   " << NodeMetrics::Read(*county.process).Since(c0) << "\n";
    if (calls->errors > 0) {
      std::cout << "  " << calls->errors << " reports failed: " << calls->first_error << "\n";
    }
    double ingest_s = Seconds(reports_done - begin);
    double acked_s = static_cast<double>(after.last_ack_ms() - begin_wall) / 1000;
    std::cout << "  link messages sent " << after.sent() - before.sent() << " (resends "
              << after.resends() - before.resends() << "), county received "
              << Fixed(timeline.Delta(), 0) << (drained ? "" : "; NOT drained within 120 s")
              << "\n";
    auto steady = timeline.Between(0.1 * static_cast<double>(n), 0.9 * static_cast<double>(n));
    throughput_rows.push_back({"link up: major reports answered on the township (ingest)",
                               std::to_string(n), Fixed(ingest_s, 2),
                               Fixed(static_cast<double>(n) / ingest_s, 0), "",
                               "closed loop, " + std::to_string(concurrency) + " in flight"});
    throughput_rows.push_back(
        {"link up: acknowledged by the county (first report -> last ack)",
         std::to_string(after.sent() - before.sent()), Fixed(acked_s, 2),
         Fixed(static_cast<double>(n) / acked_s, 0), vs_plain(static_cast<double>(n) / acked_s),
         "last ack " + Fixed(acked_s * 1000 - ingest_s * 1000, 0) + " ms after the last report"});
    throughput_rows.push_back({"link up: county receive rate, 10 % -> 90 % of the messages",
                               Fixed(steady.messages, 0),
                               steady.ok ? Fixed(steady.seconds, 2) : "-", Fixed(steady.rate(), 0),
                               vs_plain(steady.rate()), steady.Cpu()});
  }

  // ---- 4. catch-up after the county was down ----
  double drain_rate = 0, steady_drain = NAN;
  if (Has(phases, "catchup")) {
    std::cout << "phase catchup: stop the county (" << (stop == "kill" ? "SIGKILL" : "SIGTERM")
              << "), " << catchup << " major reports on the township, restart it ..." << std::endl;
    Track(kCountySlot, 0);
    int code = stop == "kill" ? county.process->Kill() : county.process->Terminate();
    (void)code;
    WaitUntil([&] { return !LinkOf(township, "parent").connected(); }, 10s, 10ms);
    v1::LinkStatus before = LinkOf(township, "parent");
    auto fill_begin = Clock::now();
    auto calls = RunClosed(major_client, catchup, concurrency, v1::SEVERITY_MAJOR, 240s);
    double fill_s;
    {
      std::lock_guard lock(calls->mu);
      fill_s = Seconds(calls->last_ok - fill_begin);
    }
    if (calls->errors > 0) {
      std::cout << "  " << calls->errors << " reports failed: " << calls->first_error << "\n";
    }
    const uint64_t n = calls->ok.load();
    // The outbox depth is refreshed once a second.
    uint64_t depth = 0;
    WaitUntil(
        [&] {
          depth = LinkOf(township, "parent").outbox_depth();
          return depth >= n;
        },
        3s, 50ms);
    std::cout << "  queued " << n << " reports in " << Fixed(fill_s, 2)
              << " s; township outbox depth " << depth << "\n";
    const int64_t restart_wall = WallMs();
    auto serving = county.process->Restart(30s);
    const int64_t serving_wall = WallMs();
    Track(kCountySlot, county.process->pid());
    if (!serving) {
      std::cout << "  county did not restart; log " << county.process->log_path() << "\n";
      std::system(("tail -n 20 " + county.process->log_path()).c_str());
      return 1;
    }
    county.Connect();
    CpuWindow cpu(procs());
    std::unique_ptr<Perf> perf;
    if (!perf_prefix.empty()) {
      perf = std::make_unique<Perf>(
          perf_prefix + "-catchup.data",
          std::vector<pid_t>{county.process->pid(), township.process->pid()});
    }
    Timeline timeline(*county.process, ids.township, county.process->pid(), township.process->pid(),
                      static_cast<double>(n), 10ms, true);
    // Link up: the county's own record of when the township's session began.
    int64_t link_up_wall = 0;
    WaitUntil(
        [&] {
          v1::LinkStatus l = LinkOf(county, ids.township);
          if (l.connected()) link_up_wall = l.connected_since_ms();
          return link_up_wall != 0;
        },
        30s, 5ms);
    bool drained = WaitUntil(
        [&] {
          v1::LinkStatus l = LinkOf(township, "parent");
          return l.connected() && l.outbox_depth() == 0;
        },
        120s, 20ms);
    std::this_thread::sleep_for(50ms);
    v1::LinkStatus after = LinkOf(township, "parent");
    timeline.Stop();
    perf.reset();
    const int64_t acked_wall = after.last_ack_ms();
    std::cout << "  CPU after the restart: " << cpu.Summary() << "\n"
              << "  township sent " << after.sent() - before.sent() << " (resends "
              << after.resends() - before.resends() << "), county received "
              << Fixed(timeline.Delta(), 0) << (drained ? "" : "; outbox NOT empty after 120 s")
              << "\n";
    double serving_ms = static_cast<double>(serving_wall - restart_wall);
    double link_ms = static_cast<double>(link_up_wall - serving_wall);
    double drain_ms = static_cast<double>(acked_wall - link_up_wall);
    double total_ms = static_cast<double>(acked_wall - serving_wall);
    drain_rate = drain_ms > 0 ? 1000.0 * static_cast<double>(n) / drain_ms : 0;
    auto steady = timeline.Between(0.1 * static_cast<double>(n), 0.9 * static_cast<double>(n));
    steady_drain = steady.rate();
    catchup_rows.push_back({"county down: " + std::to_string(n) + " major reports queued",
                            Fixed(fill_s * 1000, 0), "outbox depth " + std::to_string(depth)});
    catchup_rows.push_back(
        {"restart (fork) -> SERVING", Fixed(serving_ms, 0), "health polled every 2 ms"});
    catchup_rows.push_back({"SERVING -> link up again", Fixed(link_ms, 0),
                            "the township redials with backoff (100 ms .. 1 s, x0.5..1.5 jitter)"});
    catchup_rows.push_back({"link up -> last message acknowledged", Fixed(drain_ms, 0),
                            Fixed(drain_rate, 0) + " messages/s"});
    catchup_rows.push_back({"SERVING -> all acknowledged (goal <= 2000 ms)", Fixed(total_ms, 0),
                            drained ? "" : "NOT drained"});
    goals.push_back({"catch-up of " + std::to_string(n) + " messages within 2 s of SERVING",
                     drained && total_ms <= 2000, Fixed(total_ms, 0) + " ms"});
    throughput_rows.push_back({"backlog drain after the county's restart (link up -> last ack)",
                               std::to_string(n), Fixed(drain_ms / 1000, 2), Fixed(drain_rate, 0),
                               vs_plain(drain_rate), "from the catch-up phase"});
    throughput_rows.push_back({"backlog drain: county receive rate, 10 % -> 90 %",
                               Fixed(steady.messages, 0),
                               steady.ok ? Fixed(steady.seconds, 2) : "-", Fixed(steady.rate(), 0),
                               vs_plain(steady.rate()), steady.Cpu()});
  }

  std::cout << "\nenvelopes over each link since each node started:\n";
  for (Node* n : {&city, &county, &township}) {
    std::cout << "  " << n->name << " (" << n->node_id << "): " << LinkCounters(*n) << "\n";
  }
  std::cout << "\nload average at end " << LoadAverage() << "\n";
  if (!latency_rows.empty()) {
    std::cout << "\nEscalation latency per hop (detected by polling Get; see bench/README.md)\n";
    latency_rows.insert(latency_rows.begin(),
                        {"measurement", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "note"});
    PrintTable(latency_rows);
  }
  if (!throughput_rows.empty()) {
    std::cout << "\nLink throughput (messages of " << sample_frame.ByteSizeLong() << " bytes)\n";
    throughput_rows.insert(throughput_rows.begin(),
                           {"run", "messages", "seconds", "messages/s", "vs plain stream", "note"});
    PrintTable(throughput_rows);
    if (plain.rate() > 0 && drain_rate > 0) {
      goals.push_back(
          {"link throughput >= 50 % of the plain stream (backlog drain, link up -> "
           "last ack)",
           drain_rate >= 0.5 * plain.rate(),
           vs_plain(drain_rate) + "; steady 10-90 %: " + vs_plain(steady_drain)});
    }
  }
  if (!catchup_rows.empty()) {
    std::cout << "\nCatch-up after the county was down\n";
    catchup_rows.insert(catchup_rows.begin(), {"step", "ms", "note"});
    PrintTable(catchup_rows);
  }
  if (!goals.empty()) {
    std::cout << "\ngoals:\n";
    for (const auto& g : goals) {
      std::cout << "  " << g.what << ": " << (g.met ? "met" : "NOT met") << " (" << g.figure
                << ")\n";
    }
  }
  // Children first, so no node spends its last moments redialling.
  for (auto& c : g_children) c = 0;
  township.process->Kill();
  county.process->Kill();
  city.process->Kill();
  return 0;
}

}  // namespace
}  // namespace whistle::bench

int main(int argc, char** argv) { return whistle::bench::Main(argc, argv); }
