// ingest_bench: durable Report throughput and latency of one real whistled
// process, next to two baselines measured in the same run:
//   (a) the empty unary handler of the same server (grpc.health.v1 Check),
//       same channels and concurrency;
//   (b) raw RocksDB WriteBatches of one report's byte size with sync=true
//       from many threads (RocksDB's own group commit).
// Then Report again, open loop, at half of the measured peak (p99 there).
// Clients use gRPC's callback API: N channels (own TCP connection each),
// C calls in flight in total.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "bench/bench_support.h"
#include "core/case_machine.h"
#include "core/policy.h"
#include "core/topology.h"
#include "storage/store.h"
#include "tests/e2e/whistled_process.h"  // TempDir
#include "whistle/v1/service.grpc.pb.h"

#ifndef WHISTLED_PATH
#error "WHISTLED_PATH must name the whistled binary"
#endif

namespace whistle::bench {
namespace {

constexpr char kUsage[] =
    "usage: ingest_bench [flags]\n"
    "  --seconds D         measured seconds per phase (default 10)\n"
    "  --warmup W          warm-up seconds before each phase (default 2)\n"
    "  --concurrency C     calls in flight in total (default 64)\n"
    "  --channels N        gRPC channels, one TCP connection each (default 4)\n"
    "  --rocksdb-threads T writer threads of the raw RocksDB baseline (default C)\n"
    "  --phases LIST       comma list of health,report,half,rocksdb (default all)\n"
    "  --whistled PATH     whistled binary (default: the one built with this bench)\n";

// Starts one call on channel `channel`; `done` runs exactly once, on any thread.
using Done = std::function<void(const grpc::Status&)>;
using StartFn = std::function<void(size_t channel, Done done)>;

struct Result {
  std::string name;
  double seconds = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::string first_error;
  std::vector<uint32_t> latencies;  // µs, sorted
  double server_cpu = 0;            // CPU seconds of whistled within the window
  double client_cpu = 0;            // CPU seconds of this process within the window
  double machine_cpu = 0;           // busy CPU seconds of the whole machine within the window
  double commits = 0;               // whistle_storage_commits_total delta (or RocksDB writes)
  double syncs = 0;                 // WAL syncs within the window
  bool closed_loop_grpc = false;    // compared with the empty handler
  double throughput() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// Samples server CPU, client CPU and the node's commit counters at the
// window's edges (from its own thread, so the load is not disturbed).
class WindowSampler {
 public:
  WindowSampler(pid_t server, int metrics_port, Clock::time_point from, Clock::time_point to)
      : thread_([=, this] {
          std::this_thread::sleep_until(from);
          Sample(server, metrics_port, &begin_);
          std::this_thread::sleep_until(to);
          Sample(server, metrics_port, &end_);
        }) {}
  void Finish(Result& r) {
    thread_.join();
    r.server_cpu = end_.server_cpu - begin_.server_cpu;
    r.client_cpu = end_.client_cpu - begin_.client_cpu;
    r.machine_cpu = end_.machine_cpu - begin_.machine_cpu;
    r.commits = end_.commits - begin_.commits;
    r.syncs = end_.syncs - begin_.syncs;
  }

 private:
  struct Point {
    double server_cpu = 0, client_cpu = 0, machine_cpu = 0, commits = 0, syncs = 0;
  };
  static void Sample(pid_t server, int metrics_port, Point* p) {
    p->client_cpu = SelfCpuSeconds();
    p->machine_cpu = MachineBusySeconds();
    if (server > 0) p->server_cpu = ProcessCpuSeconds(server);
    if (metrics_port > 0) {
      std::string text = HttpGet(metrics_port, "/metrics");
      p->commits = MetricSum(text, "whistle_storage_commits_total");
      p->syncs = MetricSum(text, "whistle_storage_wal_syncs_total");
    }
  }
  Point begin_, end_;
  std::thread thread_;
};

// Shared state of one load phase. Latencies count for calls that complete
// (closed loop) or were due (open loop) inside [from, to).
struct Load {
  StartFn start;
  size_t channels = 1;
  Clock::time_point from, to;
  std::atomic<uint64_t> ok{0}, errors{0};
  std::atomic<int64_t> inflight{0};
  std::mutex mu;
  std::condition_variable cv;
  std::string first_error;  // guarded by mu
  LatencyLog log;

  void Error(const grpc::Status& s) {
    errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu);
    if (first_error.empty()) {
      first_error = std::to_string(s.error_code()) + " " + s.error_message();
    }
  }
  void Release() {
    if (inflight.fetch_sub(1) == 1) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
  }
  void WaitIdle() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return inflight.load() == 0; });
  }
  Result Collect(std::string name) {
    Result r;
    r.name = std::move(name);
    r.seconds = Seconds(to - from);
    r.ok = ok.load();
    r.errors = errors.load();
    r.first_error = first_error;
    r.latencies = log.Sorted();
    return r;
  }
};

Clock::duration ToDuration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

uint32_t Micros(Clock::duration d) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// Closed loop: `slot` keeps one call in flight until the window ends; a failed
// call retires its slot (errors make the run invalid anyway, and this keeps a
// dead server from recursing through inline failures).
void Issue(const std::shared_ptr<Load>& load, size_t slot) {
  auto sent = Clock::now();
  if (sent >= load->to) return load->Release();
  load->start(slot % load->channels, [load, slot, sent](const grpc::Status& s) {
    auto now = Clock::now();
    if (!s.ok()) {
      load->Error(s);
      return load->Release();
    }
    if (now >= load->from && now < load->to) {
      load->ok.fetch_add(1, std::memory_order_relaxed);
      load->log.Add(slot, Micros(now - sent));
    }
    Issue(load, slot);
  });
}

Result RunClosed(const std::string& name, StartFn start, size_t channels, size_t concurrency,
                 double warmup, double seconds, pid_t server, int metrics_port) {
  // Shared with the callbacks: the last of them may still run after WaitIdle.
  auto load = std::make_shared<Load>();
  load->start = std::move(start);
  load->channels = channels;
  load->from = Clock::now() + ToDuration(warmup);
  load->to = load->from + ToDuration(seconds);
  WindowSampler sampler(server, metrics_port, load->from, load->to);
  load->inflight = static_cast<int64_t>(concurrency);
  for (size_t slot = 0; slot < concurrency; ++slot) Issue(load, slot);
  load->WaitIdle();
  Result r = load->Collect(name);
  r.closed_loop_grpc = true;
  sampler.Finish(r);
  return r;
}

// Open loop: call i is due at begin + i / rate whatever the answers do;
// latency counts from the due time (no coordinated omission).
Result RunOpen(const std::string& name, StartFn start, size_t channels, double rate, double warmup,
               double seconds, pid_t server, int metrics_port, uint64_t* skipped) {
  auto load = std::make_shared<Load>();
  load->start = std::move(start);
  load->channels = channels;
  auto begin = Clock::now();
  load->from = begin + ToDuration(warmup);
  load->to = load->from + ToDuration(seconds);
  WindowSampler sampler(server, metrics_port, load->from, load->to);
  const int64_t max_inflight = 20000;
  load->inflight = 1;  // the pacer's own reference
  *skipped = 0;
  for (uint64_t i = 0;; ++i) {
    auto due = begin + ToDuration(static_cast<double>(i) / rate);
    if (due >= load->to) break;
    std::this_thread::sleep_until(due);
    if (load->inflight.load() >= max_inflight) {
      ++*skipped;
      continue;
    }
    load->inflight.fetch_add(1);
    bool counted = due >= load->from;
    load->start(i % channels, [load, i, due, counted](const grpc::Status& s) {
      if (!s.ok()) {
        load->Error(s);
      } else if (counted) {
        load->ok.fetch_add(1, std::memory_order_relaxed);
        load->log.Add(i, Micros(Clock::now() - due));
      }
      load->Release();
    });
  }
  load->Release();
  load->WaitIdle();
  Result r = load->Collect(name);
  sampler.Finish(r);
  return r;
}

// ---- clients ----

class HealthClient {
 public:
  explicit HealthClient(const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
    for (const auto& ch : channels) stubs_.push_back(std::make_unique<grpc::GenericStub>(ch));
  }
  void Start(size_t channel, Done done) {
    struct CallState {
      grpc::ClientContext ctx;
      grpc::ByteBuffer request = EmptyHealthRequest();
      grpc::ByteBuffer response;
    };
    auto* call = new CallState;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stubs_[channel]->UnaryCall(&call->ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                               &call->request, &call->response,
                               [call, done = std::move(done)](grpc::Status s) {
                                 done(s);
                                 delete call;
                               });
  }

 private:
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
};

// Every report has its own request id; grids rotate over every grid of the
// topology, each reported by its own grid worker.
class ReportClient {
 public:
  ReportClient(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
               std::vector<std::string> grids)
      : grids_(std::move(grids)), run_("bench-" + std::to_string(getpid()) + "-") {
    for (const auto& ch : channels) stubs_.push_back(v1::CaseService::NewStub(ch));
    // Each grid's worker signs in once (a token each, minted before the load).
    for (const auto& grid : grids_) {
      authorization_.push_back("Bearer " +
                               testing::MintTestToken("gw." + grid, "grid_worker", grid, ""));
    }
  }
  void Start(size_t channel, Done done) {
    struct CallState {
      grpc::ClientContext ctx;
      v1::ReportCaseRequest request;
      v1::Case response;
    };
    uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
    const std::string& grid = grids_[n % grids_.size()];
    auto* call = new CallState;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    call->ctx.AddMetadata("authorization", authorization_[n % grids_.size()]);
    FillReport(grid, run_ + std::to_string(n), call->request.mutable_report());
    stubs_[channel]->async()->Report(&call->ctx, &call->request, &call->response,
                                     [call, done = std::move(done)](grpc::Status s) {
                                       done(s);
                                       delete call;
                                     });
  }
  static void FillReport(const std::string& grid, const std::string& request_id,
                         v1::ReportCommand* r) {
    r->set_request_id(request_id);
    r->set_category("dispute.neighbour");
    r->set_severity(v1::SEVERITY_GENERAL);
    r->mutable_place()->set_grid_id(grid);
    r->mutable_place()->set_address("3号楼2单元");
    r->set_text("楼上楼下因漏水发生争吵");
  }

 private:
  std::vector<std::unique_ptr<v1::CaseService::Stub>> stubs_;
  std::vector<std::string> grids_;
  std::vector<std::string> authorization_;  // "Bearer <token>" of grids_[i]'s worker
  std::string run_;
  std::atomic<uint64_t> next_{0};
};

// ---- raw RocksDB baseline ----

// Byte sizes of the values one report writes: the case, its history entry,
// and everything else (indexes, count merge, timer, request id), measured on
// a real transition.
struct ReportBytes {
  size_t total = 0, case_value = 0, history_value = 0;
};

ReportBytes MeasureReportBytes(const core::Topology& topology, const core::Policy& policy,
                               const std::string& grid) {
  v1::ReportCommand report;
  ReportClient::FillReport(grid, "bench-12345-123456", &report);
  v1::Caller caller;
  caller.set_user("gw." + grid);
  caller.set_role(v1::ROLE_GRID_WORKER);
  caller.set_jurisdiction_id(grid);
  core::Context ctx{topology, policy};
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto checked = core::CheckReport(caller, report, ctx);
  if (!checked.ok()) {
    std::cerr << "sample report refused: " << checked.status().ToString() << "\n";
    std::exit(1);
  }
  auto t = core::Report(*checked, "szs-000000123456", now, ctx);
  if (!t.ok()) {
    std::cerr << "sample report failed: " << t.status().ToString() << "\n";
    std::exit(1);
  }
  storage::Batch batch;
  batch.RecordTransition(nullptr, t->next, t->entry);
  batch.RecordRequest(caller.user(), report.request_id(), t->next.id());
  return {batch.ByteSize(), t->next.ByteSizeLong(), t->entry.ByteSizeLong()};
}

Result RunRocks(const ReportBytes& bytes, size_t threads, double warmup, double seconds) {
  testing::TempDir dir;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_background_jobs = 2;
  options.statistics = rocksdb::CreateDBStatistics();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir.path() + "/db", &raw);
  if (!s.ok()) {
    std::cerr << "rocksdb open: " << s.ToString() << "\n";
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  Load load;
  load.from = Clock::now() + ToDuration(warmup);
  load.to = load.from + ToDuration(seconds);
  WindowSampler sampler(-1, -1, load.from, load.to);
  std::atomic<uint64_t> synced_from{0};
  std::thread stats([&] {
    std::this_thread::sleep_until(load.from);
    synced_from = options.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  });
  // Case and history values of the real sizes; the remaining bytes as one
  // index-like put. Keys look like the store's (case id, case id + seq).
  size_t rest_value = bytes.total > bytes.case_value + bytes.history_value + 3 * 16 + 9
                          ? bytes.total - bytes.case_value - bytes.history_value - 3 * 16 - 9
                          : 16;
  std::vector<std::thread> writers;
  for (size_t w = 0; w < threads; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      std::string case_value(bytes.case_value, 'c'), history_value(bytes.history_value, 'h'),
          rest(rest_value, 'i');
      for (auto& c : case_value) c = static_cast<char>(rng());
      rocksdb::WriteOptions wo;
      wo.sync = true;
      char key[32];
      for (uint64_t n = 0;; ++n) {
        auto sent = Clock::now();
        if (sent >= load.to) break;
        std::snprintf(key, sizeof(key), "szs-%04zu%08llu", w, static_cast<unsigned long long>(n));
        std::string id(key);
        rocksdb::WriteBatch wb;
        wb.Put(id, case_value);
        wb.Put(id + std::string(9, '\0'), history_value);
        wb.Put("o/" + id, rest);
        rocksdb::Status ws = db->Write(wo, &wb);
        auto now = Clock::now();
        if (!ws.ok()) {
          load.Error(grpc::Status(grpc::StatusCode::INTERNAL, ws.ToString()));
          break;
        }
        if (now >= load.from && now < load.to) {
          load.ok.fetch_add(1, std::memory_order_relaxed);
          load.log.Add(w, Micros(now - sent));
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  stats.join();
  Result r = load.Collect("raw RocksDB WriteBatch, sync (" + std::to_string(threads) + " threads)");
  sampler.Finish(r);
  r.commits = static_cast<double>(r.ok);
  // Syncs up to the end of the run (slightly past the window: close enough).
  r.syncs = static_cast<double>(options.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED) -
                                synced_from.load());
  db->Close().PermitUncheckedError();
  return r;
}

// ---- output ----

void PrintResults(const std::vector<Result>& results, double empty_handler) {
  std::vector<std::vector<std::string>> rows = {{"run", "ok calls/s", "p50 ms", "p99 ms",
                                                 "p99.9 ms", "vs empty handler",
                                                 "server CPU µs/call", "client CPU µs/call",
                                                 "other procs CPUs", "writes/WAL sync", "errors"}};
  for (const auto& r : results) {
    double per = r.ok > 0 ? 1e6 / static_cast<double>(r.ok) : NAN;
    rows.push_back(
        {r.name, Fixed(r.throughput(), 0), Fixed(QuantileMs(r.latencies, 0.5), 2),
         Fixed(QuantileMs(r.latencies, 0.99), 2), Fixed(QuantileMs(r.latencies, 0.999), 2),
         empty_handler > 0 && r.closed_loop_grpc
             ? Fixed(100.0 * r.throughput() / empty_handler, 1) + " %"
             : "",
         r.server_cpu > 0 ? Fixed(r.server_cpu * per, 1) : "", Fixed(r.client_cpu * per, 1),
         // Busy CPU outside whistled and this bench: interference from other processes.
         r.seconds > 0
             ? Fixed(std::max(0.0, r.machine_cpu - r.server_cpu - r.client_cpu) / r.seconds, 2)
             : "",
         r.syncs > 0 ? Fixed(r.commits / r.syncs, 1) : "", std::to_string(r.errors)});
  }
  PrintTable(rows);
  for (const auto& r : results) {
    if (!r.first_error.empty()) std::cout << r.name << ": first error: " << r.first_error << "\n";
  }
}

bool Has(const std::string& list, const std::string& phase) {
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == phase) return true;
  }
  return false;
}

int Main(int argc, char** argv) {
  Flags flags(
      argc, argv,
      {"seconds", "warmup", "concurrency", "channels", "rocksdb-threads", "phases", "whistled"},
      kUsage);
  const double seconds = flags.GetDouble("seconds", 10);
  const double warmup = flags.GetDouble("warmup", 2);
  const size_t concurrency =
      static_cast<size_t>(std::max<int64_t>(1, flags.GetInt("concurrency", 64)));
  const size_t channels = static_cast<size_t>(std::max<int64_t>(1, flags.GetInt("channels", 4)));
  const size_t rocks_threads = static_cast<size_t>(
      std::max<int64_t>(1, flags.GetInt("rocksdb-threads", static_cast<int64_t>(concurrency))));
  const std::string phases = flags.Get("phases", "health,report,half,rocksdb");
  const std::string binary = flags.Get("whistled", WHISTLED_PATH);

  Shizuishan szs = LoadShizuishan();
  std::vector<std::string>& grids = szs.grids;
  std::shuffle(grids.begin(), grids.end(), std::mt19937(42));
  ReportBytes bytes = MeasureReportBytes(*szs.topology, *szs.policy, grids.front());

  std::cout << "ingest_bench: " << seconds << " s per phase after " << warmup
            << " s warm-up; concurrency " << concurrency << " over " << channels << " channels; "
            << grids.size() << " grids; one report = " << bytes.total
            << " bytes in its write batch (case " << bytes.case_value << ", history entry "
            << bytes.history_value << ")\n";
  std::cout << "machine: " << std::thread::hardware_concurrency() << " CPUs; load average at start "
            << LoadAverage() << "\n";

  std::vector<Result> results;
  double empty_handler = 0;
  double peak = 0;
  testing::TempDir dir;
  {
    Whistled server(binary, dir.path() + "/data", dir.path() + "/whistled.log");
    auto started = server.Start(std::chrono::seconds(60));
    if (!started) {
      std::cerr << "whistled did not start; log: " << server.log_path() << "\n";
      std::system(("tail -n 20 " + server.log_path()).c_str());
      return 1;
    }
    std::cout << "whistled pid " << server.pid() << " on " << server.address() << " (SERVING after "
              << Fixed(Seconds(*started) * 1000, 0) << " ms), fresh data dir " << dir.path()
              << "/data\n";
    std::vector<std::shared_ptr<grpc::Channel>> chans;
    for (size_t i = 0; i < channels; ++i) chans.push_back(server.NewChannel());
    HealthClient health(chans);
    ReportClient reports(chans, grids);
    StartFn health_fn = [&](size_t ch, Done done) { health.Start(ch, std::move(done)); };
    StartFn report_fn = [&](size_t ch, Done done) { reports.Start(ch, std::move(done)); };

    if (Has(phases, "health")) {
      std::cout << "phase: empty handler (Health/Check) ..." << std::endl;
      results.push_back(RunClosed("empty handler: Health/Check", health_fn, channels, concurrency,
                                  warmup, seconds, server.pid(), server.metrics_port()));
      empty_handler = results.back().throughput();
    }
    if (Has(phases, "report")) {
      std::cout << "phase: Report, closed loop ..." << std::endl;
      results.push_back(RunClosed("Report (peak, closed loop)", report_fn, channels, concurrency,
                                  warmup, seconds, server.pid(), server.metrics_port()));
      peak = results.back().throughput();
    }
    if (Has(phases, "half") && peak > 0) {
      double rate = peak / 2;
      std::cout << "phase: Report, open loop at " << Fixed(rate, 0) << "/s ..." << std::endl;
      uint64_t skipped = 0;
      results.push_back(RunOpen("Report @ 50% of peak (open loop, " + Fixed(rate, 0) + "/s)",
                                report_fn, channels, rate, warmup, seconds, server.pid(),
                                server.metrics_port(), &skipped));
      if (skipped > 0) std::cout << "  (" << skipped << " calls skipped: too many in flight)\n";
    }
    std::string metrics = HttpGet(server.metrics_port(), "/metrics");
    std::cout << "whistled after the load: VmRSS " << VmRssKib(server.pid()) / 1024
              << " MiB, whistle_storage_commits_total "
              << Fixed(MetricSum(metrics, "whistle_storage_commits_total"), 0)
              << ", whistle_storage_wal_syncs_total "
              << Fixed(MetricSum(metrics, "whistle_storage_wal_syncs_total"), 0) << "\n";
    int code = server.Terminate();
    if (code != 0)
      std::cout << "whistled exited with " << code << " (log " << server.log_path() << ")\n";
    // Restart on the same data: how long start-up takes right after heavy ingest
    // (RocksDB replays whatever its WAL holds that no flush has persisted yet).
    Whistled again(binary, dir.path() + "/data", dir.path() + "/whistled2.log");
    if (auto restart = again.Start(std::chrono::seconds(120))) {
      std::cout << "restart on that data dir (SIGTERM, then start): SERVING after "
                << Fixed(Seconds(*restart) * 1000, 0) << " ms; data dir "
                << Fixed(static_cast<double>(DirBytes(dir.path() + "/data")) / (1 << 20), 0)
                << " MiB\n";
      again.Terminate();
    } else {
      std::cout << "restart on that data dir failed; log " << again.log_path() << "\n";
    }
  }
  if (Has(phases, "rocksdb")) {
    std::cout << "phase: raw RocksDB ..." << std::endl;
    results.push_back(RunRocks(bytes, rocks_threads, std::min(warmup, 1.0), seconds));
  }

  std::cout << "\nload average at end " << LoadAverage() << "\n\n";
  PrintResults(results, empty_handler);
  if (peak > 0) {
    std::cout << "\ngoals: >= 20000 durable reports/s: " << (peak >= 20000 ? "met" : "NOT met")
              << " (" << Fixed(peak, 0) << "/s)";
    if (empty_handler > 0) {
      double ratio = peak / empty_handler;
      std::cout << "; >= 50% of empty handler: " << (ratio >= 0.5 ? "met" : "NOT met") << " ("
                << Fixed(100 * ratio, 1) << " %)";
    }
    for (const auto& r : results) {
      if (r.name.rfind("Report @", 0) == 0) {
        double p99 = QuantileMs(r.latencies, 0.99);
        std::cout << "; p99 < 5 ms at half of peak: " << (p99 < 5 ? "met" : "NOT met") << " ("
                  << Fixed(p99, 2) << " ms)";
      }
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace whistle::bench

int main(int argc, char** argv) { return whistle::bench::Main(argc, argv); }
