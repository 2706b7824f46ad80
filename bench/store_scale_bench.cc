// store_scale_bench: start-up time and resident memory of whistled over a
// large database. Fills a data dir with N cases (97% evaluated, 3% open,
// spread over every grid) through storage::Store in large batches, then
// starts whistled on it as a real process and measures the time from fork to
// SERVING and VmRSS at SERVING and after 10k Get calls on random cases. The
// same on an empty data dir is the baseline.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <random>

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

namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: store_scale_bench [flags]\n"
    "  --cases N        cases to store (default 1000000)\n"
    "  --open-percent P share of open cases (default 3)\n"
    "  --gets G         Get calls on random cases after start-up (default 10000)\n"
    "  --keep DIR       fill DIR and keep it; reuse it if it already holds a database\n"
    "  --whistled PATH  whistled binary (default: the one built with this bench)\n";

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr size_t kGroup = 5000;  // cases per Batch

std::string CaseId(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "szs-%012llu", static_cast<unsigned long long>(seq));
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Writes cases 1..n: reported over the past year; every case but the open
// share is then evaluated (one history entry each: the report). Open cases
// get their deadlines pushed 30 days out, so a reused --keep dir does not
// start with a storm of overdue transitions.
bool Fill(const std::string& path, uint64_t n, double open_share, const core::Topology& topology,
          const core::Policy& policy, const std::vector<std::string>& grids) {
  storage::Options options;
  options.path = path;
  options.init = true;   // a new, empty directory
  options.sync = false;  // bulk load; the store syncs on close
  auto store = storage::Store::Open(options);
  if (!store.ok()) {
    std::cerr << "open " << path << ": " << store.status().ToString() << "\n";
    return false;
  }
  core::Context ctx{topology, policy};
  const int64_t now = NowMs();
  const int64_t span = 365 * kDayMs;
  const uint64_t open_every =
      open_share > 0 ? static_cast<uint64_t>(std::max(1.0, 1.0 / open_share)) : 0;
  std::mt19937_64 rng(7);
  std::future<Status> previous;
  storage::Batch batch;
  uint64_t open_count = 0;
  auto started = Clock::now();
  for (uint64_t seq = 1; seq <= n; ++seq) {
    const std::string& grid = grids[rng() % grids.size()];
    v1::ReportCommand report;
    report.set_request_id("fill-" + std::to_string(seq));
    report.set_category("dispute.neighbour");
    report.set_severity(v1::SEVERITY_GENERAL);
    report.mutable_place()->set_grid_id(grid);
    report.mutable_place()->set_address("3号楼2单元");
    report.set_text("楼上楼下因漏水发生争吵");
    v1::Caller caller;
    caller.set_user("gw." + grid);
    caller.set_role(v1::ROLE_GRID_WORKER);
    caller.set_jurisdiction_id(grid);
    bool open = open_every > 0 && seq % open_every == 0;
    int64_t at = open ? now : now - span + static_cast<int64_t>(seq * span / n);
    auto checked = core::CheckReport(std::move(caller), std::move(report), ctx);
    if (!checked.ok()) {
      std::cerr << "report " << seq << ": " << checked.status().ToString() << "\n";
      return false;
    }
    auto t = core::Report(*checked, CaseId(seq), at, ctx);
    if (!t.ok()) {
      std::cerr << "report " << seq << ": " << t.status().ToString() << "\n";
      return false;
    }
    v1::Case& c = t->next;
    if (open) {
      ++open_count;
      auto* d = c.mutable_deadlines();
      if (d->accept_by_ms() > 0) d->set_accept_by_ms(d->accept_by_ms() + 30 * kDayMs);
      if (c.next_deadline_ms() > 0) c.set_next_deadline_ms(c.next_deadline_ms() + 30 * kDayMs);
    } else {
      c.set_state(v1::CASE_STATE_EVALUATED);
      c.set_satisfaction(5);
      c.set_next_deadline_ms(0);
      c.set_closed_at_ms(at + 3 * kDayMs);
      c.set_updated_at_ms(at + 4 * kDayMs);
    }
    batch.RecordTransition(nullptr, c, t->entry);
    batch.RecordRequest(c.reporter(), c.request_id(), c.id());
    if (seq % kGroup == 0 || seq == n) {
      if (previous.valid() && !previous.get().ok()) return false;
      auto promise = std::make_shared<std::promise<Status>>();
      previous = promise->get_future();
      (*store)->Commit(std::move(batch), [promise](const Status& s) { promise->set_value(s); });
      batch = storage::Batch();
    }
    if (seq % 100000 == 0) {
      std::cout << "  " << seq << " cases, " << Fixed(Seconds(Clock::now() - started), 1) << " s"
                << std::endl;
    }
  }
  if (previous.valid()) {
    Status s = previous.get();
    if (!s.ok()) {
      std::cerr << "commit: " << s.ToString() << "\n";
      return false;
    }
  }
  store->reset();  // drains and closes
  double secs = Seconds(Clock::now() - started);
  std::cout << "filled " << n << " cases (" << open_count << " open) in " << Fixed(secs, 1)
            << " s (" << Fixed(static_cast<double>(n) / secs, 0) << " cases/s); "
            << DirBytes(path) / (1 << 20) << " MiB on disk\n";
  return true;
}

struct GetStats {
  uint64_t ok = 0, not_found = 0, errors = 0;
  double seconds = 0;
  std::vector<uint32_t> latencies;
  std::string first_error;
};

// `count` Get calls on random case ids 1..max_seq (as the city's leader),
// 16 in flight over one channel.
GetStats RunGets(grpc::Channel& channel, uint64_t count, uint64_t max_seq) {
  auto stub = v1::CaseService::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](auto*) {}));
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t issued = 0, finished = 0;
    std::mt19937_64 rng{11};
    GetStats stats;
    LatencyLog log;
  } shared;
  const uint64_t kInFlight = 16;
  std::function<void()> issue = [&] {
    std::string id;
    {
      std::lock_guard lock(shared.mu);
      if (shared.issued >= count) return;
      ++shared.issued;
      id = CaseId(1 + shared.rng() % std::max<uint64_t>(1, max_seq));
    }
    struct CallState {
      grpc::ClientContext ctx;
      v1::GetCaseRequest request;
      v1::Case response;
      Clock::time_point sent = Clock::now();
    };
    auto* call = new CallState;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    static const std::string authorization =
        "Bearer " + testing::MintTestToken("bench.leader", "leader", "szs", "");
    call->ctx.AddMetadata("authorization", authorization);
    call->request.set_case_id(id);
    stub->async()->Get(&call->ctx, &call->request, &call->response, [&, call](grpc::Status s) {
      uint32_t us = static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - call->sent).count());
      delete call;
      bool done;
      {
        std::lock_guard lock(shared.mu);
        if (s.ok()) {
          ++shared.stats.ok;
        } else if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
          ++shared.stats.not_found;
        } else {
          ++shared.stats.errors;
          if (shared.stats.first_error.empty()) shared.stats.first_error = s.error_message();
        }
        done = ++shared.finished == count;
      }
      shared.log.Add(0, us);
      if (done) {
        std::lock_guard lock(shared.mu);
        shared.cv.notify_all();
      } else {
        issue();
      }
    });
  };
  auto started = Clock::now();
  for (uint64_t i = 0; i < kInFlight; ++i) issue();
  std::unique_lock lock(shared.mu);
  shared.cv.wait(lock, [&] { return shared.finished == count; });
  shared.stats.seconds = Seconds(Clock::now() - started);
  shared.stats.latencies = shared.log.Sorted();
  return shared.stats;
}

struct Row {
  std::string name;
  double startup_ms = -1;
  int64_t rss_start_kib = -1, rss_gets_kib = -1, rss_idle_kib = -1;
  GetStats gets;
  double in_memory = 0;
};

bool Measure(const std::string& binary, const std::string& data_dir, const std::string& log,
             const std::string& name, uint64_t gets, uint64_t max_seq, Row* row) {
  row->name = name;
  Whistled server(binary, data_dir, log);
  auto startup = server.Start(std::chrono::seconds(120));
  if (!startup) {
    std::cerr << name << ": whistled did not start; log " << log << "\n";
    std::system(("tail -n 20 " + log).c_str());
    return false;
  }
  row->startup_ms = Seconds(*startup) * 1000;
  row->rss_start_kib = VmRssKib(server.pid());
  auto channel = server.NewChannel();
  row->gets = RunGets(*channel, gets, max_seq);
  row->rss_gets_kib = VmRssKib(server.pid());
  std::string metrics = HttpGet(server.metrics_port(), "/metrics");
  row->in_memory = MetricSum(metrics, "whistle_cases_in_memory");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  row->rss_idle_kib = VmRssKib(server.pid());
  int code = server.Terminate();
  if (code != 0) std::cout << name << ": whistled exited with " << code << " (log " << log << ")\n";
  return true;
}

std::string Mib(int64_t kib) { return kib < 0 ? "-" : Fixed(static_cast<double>(kib) / 1024, 1); }

int Main(int argc, char** argv) {
  Flags flags(argc, argv, {"cases", "open-percent", "gets", "keep", "whistled"}, kUsage);
  const uint64_t cases =
      static_cast<uint64_t>(std::max<int64_t>(1, flags.GetInt("cases", 1000000)));
  const double open_share = flags.GetDouble("open-percent", 3) / 100;
  const uint64_t gets = static_cast<uint64_t>(std::max<int64_t>(1, flags.GetInt("gets", 10000)));
  const std::string keep = flags.Get("keep", "");
  const std::string binary = flags.Get("whistled", WHISTLED_PATH);

  Shizuishan szs = LoadShizuishan();
  std::vector<std::string>& grids = szs.grids;
  std::cout << "store_scale_bench: " << cases << " cases, " << Fixed(open_share * 100, 1)
            << "% open, " << grids.size() << " grids; " << gets << " Gets after start-up\n";
  std::cout << "machine: " << std::thread::hardware_concurrency() << " CPUs; load average at start "
            << LoadAverage() << "\n";

  testing::TempDir tmp;
  std::string filled = keep.empty() ? tmp.path() + "/filled" : keep;
  bool reuse = !keep.empty() && fs::exists(filled + "/CURRENT");
  if (reuse) {
    std::cout << "reusing " << filled << " (" << DirBytes(filled) / (1 << 20)
              << " MiB); --cases is taken as its size\n";
  } else {
    std::cout << "filling " << filled << " ..." << std::endl;
    if (!Fill(filled, cases, open_share, *szs.topology, *szs.policy, grids)) return 1;
  }

  std::vector<Row> rows(3);
  std::string empty = tmp.path() + "/empty";
  if (!Measure(binary, empty, tmp.path() + "/empty.log", "empty data dir", gets, cases, &rows[0])) {
    return 1;
  }
  if (!Measure(binary, filled, tmp.path() + "/filled1.log",
               reuse ? "filled, start" : "filled, first start after the fill", gets, cases,
               &rows[1])) {
    return 1;
  }
  if (!Measure(binary, filled, tmp.path() + "/filled2.log", "filled, restart", gets, cases,
               &rows[2])) {
    return 1;
  }

  std::cout << "\nload average at end " << LoadAverage() << "\n\n";
  std::vector<std::vector<std::string>> table = {
      {"data dir", "start-up to SERVING ms", "VmRSS at SERVING MiB", "VmRSS after Gets MiB",
       "VmRSS +2 s idle MiB", "Gets/s", "Get p50 ms", "Get p99 ms", "found / not found",
       "cases in memory"}};
  for (const auto& r : rows) {
    table.push_back({r.name, Fixed(r.startup_ms, 0), Mib(r.rss_start_kib), Mib(r.rss_gets_kib),
                     Mib(r.rss_idle_kib),
                     Fixed(static_cast<double>(r.gets.ok + r.gets.not_found) / r.gets.seconds, 0),
                     Fixed(QuantileMs(r.gets.latencies, 0.5), 2),
                     Fixed(QuantileMs(r.gets.latencies, 0.99), 2),
                     std::to_string(r.gets.ok) + " / " + std::to_string(r.gets.not_found),
                     Fixed(r.in_memory, 0)});
  }
  PrintTable(table);
  for (const auto& r : rows) {
    if (r.gets.errors > 0) {
      std::cout << r.name << ": " << r.gets.errors << " Get errors, first: " << r.gets.first_error
                << "\n";
    }
  }
  std::cout << "\ngoal: start-up under 2 s on " << cases << " cases: "
            << (rows[2].startup_ms < 2000 && rows[1].startup_ms < 2000 ? "met" : "NOT met") << "\n";
  if (!keep.empty()) std::cout << "kept " << filled << "\n";
  return 0;
}

}  // namespace
}  // namespace whistle::bench

int main(int argc, char** argv) { return whistle::bench::Main(argc, argv); }
