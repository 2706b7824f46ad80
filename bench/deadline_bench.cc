// deadline_bench: the deadline timer over many pending deadlines. Fills a
// data dir through storage::Store with N open cases whose deadlines lie
// hours to weeks ahead, B cases whose deadlines all pass within one test-clock
// step, and one case already overdue; then starts whistled on the test clock
// (--test-clock-start-ms) as a real process and measures:
//   - start-up: fork to SERVING, and fork to the overdue case's transition
//     committed (the store open plus the timer's first wake);
//   - resident memory (VmRSS) then and after the burst;
//   - the burst: the clock is moved past the B deadlines at once (AdminService);
//     time until all B overdue transitions are committed (whistle_case_overdue_total);
//   - a restart with the clock past B more deadlines (passed while the node was
//     down): fork to all B committed.
// The same with N = 0 is the baseline; N cases stored without deadlines is
// the control that tells stored data from pending deadlines.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <random>
#include <thread>

#include "bench/bench_support.h"
#include "core/case_machine.h"
#include "storage/store.h"
#include "tests/e2e/whistled_process.h"  // TempDir, MintTestToken
#include "whistle/v1/admin.grpc.pb.h"

#ifndef WHISTLED_PATH
#error "WHISTLED_PATH must name the whistled binary"
#endif

namespace whistle::bench {
namespace {

constexpr char kUsage[] =
    "usage: deadline_bench [flags]\n"
    "  --pending N      open cases with deadlines ahead (default 1000000)\n"
    "  --burst B        cases whose deadlines pass in one clock step (default 10000)\n"
    "  --whistled PATH  whistled binary (default: the one built with this bench)\n";

constexpr int64_t kStart = 1'750'000'000'000;  // test clock at start-up
constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 24 * 60 * kMinuteMs;
constexpr int64_t kBurstAt = kStart + 10 * kMinuteMs;  // the burst's deadlines end here
// A second burst, passed while the node is down: it restarts with the clock here.
constexpr int64_t kDownBurstAt = kStart + 20 * kMinuteMs;
constexpr size_t kGroup = 5000;  // cases per Batch

std::string CaseId(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "szs-%012llu", static_cast<unsigned long long>(seq));
  return buf;
}

// A general neighbour dispute reported in `grid` at `at`, its accept deadline
// moved to `due` (the timer key follows next_deadline_ms).
StatusOr<core::Transition> Reported(const std::string& grid, uint64_t seq, int64_t at, int64_t due,
                                    const core::Context& ctx) {
  v1::ReportCommand report;
  report.set_request_id("fill-" + std::to_string(seq));
  report.set_category("dispute.neighbour");
  report.set_severity(v1::SEVERITY_GENERAL);
  report.mutable_place()->set_grid_id(grid);
  report.set_text("楼上楼下因漏水发生争吵");
  v1::Caller caller;
  caller.set_user("gw." + grid);
  caller.set_role(v1::ROLE_GRID_WORKER);
  caller.set_jurisdiction_id(grid);
  auto checked = core::CheckReport(std::move(caller), std::move(report), ctx);
  if (!checked.ok()) return checked.status();
  auto t = core::Report(*checked, CaseId(seq), at, ctx);
  if (!t.ok()) return t.status();
  t->next.mutable_deadlines()->set_accept_by_ms(due);
  t->next.set_next_deadline_ms(due);
  return t;
}

// The deadline of case `seq`: one overdue already (seq 1), then the burst,
// then the pending ones spread from an hour to 30 days ahead.
// 0 = no deadline (the control's extra cases).
int64_t DueOf(uint64_t seq, uint64_t burst, bool timed, std::mt19937_64& rng) {
  if (seq == 1) return kStart - 1;
  if (seq <= 1 + burst) return kBurstAt - static_cast<int64_t>(rng() % 10'000);
  if (seq <= 1 + 2 * burst) return kDownBurstAt - static_cast<int64_t>(rng() % 10'000);
  if (!timed) return 0;
  return kStart + 3'600'000 + static_cast<int64_t>(rng() % (30 * kDayMs));
}

bool Fill(const std::string& path, uint64_t total, uint64_t burst, bool timed,
          const Shizuishan& szs) {
  storage::Options options;
  options.path = path;
  options.init = true;
  options.sync = false;  // bulk load; the store syncs on close
  auto store = storage::Store::Open(options);
  if (!store.ok()) {
    std::cerr << "open " << path << ": " << store.status().ToString() << "\n";
    return false;
  }
  core::Context ctx{*szs.topology, *szs.policy};
  std::mt19937_64 rng(7);
  std::future<Status> previous;
  storage::Batch batch;
  for (uint64_t seq = 1; seq <= total; ++seq) {
    const std::string& grid = szs.grids[rng() % szs.grids.size()];
    auto t = Reported(grid, seq, kStart - kMinuteMs, DueOf(seq, burst, timed, rng), ctx);
    if (!t.ok()) {
      std::cerr << "case " << seq << ": " << t.status().ToString() << "\n";
      return false;
    }
    batch.RecordTransition(nullptr, t->next, t->entry);
    if (seq % kGroup != 0 && seq != total) continue;
    if (previous.valid() && !previous.get().ok()) return false;
    auto promise = std::make_shared<std::promise<Status>>();
    previous = promise->get_future();
    (*store)->Commit(std::move(batch), [promise](const Status& s) { promise->set_value(s); });
    batch = storage::Batch();
  }
  if (previous.valid() && !previous.get().ok()) return false;
  store->reset();
  return true;
}

double OverdueTotal(int metrics_port) {
  return MetricSum(HttpGet(metrics_port, "/metrics"), "whistle_case_overdue_total");
}

// Polls /metrics every 2 ms until `want` overdue transitions are committed;
// the time from `since`, or -1 after `limit`.
double WaitOverdue(int metrics_port, double want, Clock::time_point since,
                   std::chrono::seconds limit) {
  while (Clock::now() - since < limit) {
    if (OverdueTotal(metrics_port) >= want) return Seconds(Clock::now() - since) * 1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

bool AdvanceClock(grpc::Channel& channel, int64_t delta_ms) {
  auto stub = v1::AdminService::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](auto*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ctx.AddMetadata("authorization",
                  "Bearer " + testing::MintTestToken("bench.admin", "admin", "", ""));
  v1::AdvanceClockRequest req;
  req.set_delta_ms(delta_ms);
  v1::ClockResponse resp;
  grpc::Status s = stub->AdvanceClock(&ctx, req, &resp);
  if (!s.ok()) std::cerr << "AdvanceClock: " << s.error_message() << "\n";
  return s.ok();
}

struct Row {
  std::string name;
  uint64_t extra = 0;  // cases besides the overdue one and the burst
  bool timed = true;   // do they have deadlines?
  double serving_ms = -1, first_fire_ms = -1, burst_ms = -1;
  double restart_ms = -1;   // fork to the down burst all committed
  double burst_cpu_s = -1;  // whistled's CPU time during the burst
  int64_t rss_start_kib = -1, rss_burst_kib = -1;
};

bool Measure(const std::string& binary, const std::string& data_dir, const std::string& log,
             uint64_t burst, Row* row) {
  Whistled server(binary, data_dir, log, {"--test-clock-start-ms", std::to_string(kStart)});
  const auto forked = Clock::now();
  auto serving = server.Start(std::chrono::seconds(120));
  if (!serving) {
    std::cerr << row->name << ": whistled did not start; log " << log << "\n";
    return false;
  }
  row->serving_ms = Seconds(*serving) * 1000;
  // Start() measures from its own fork; `forked` is a few µs earlier.
  row->first_fire_ms = WaitOverdue(server.metrics_port(), 1, forked, std::chrono::seconds(60));
  row->rss_start_kib = VmRssKib(server.pid());
  auto channel = server.NewChannel();
  const double cpu_before = ProcessCpuSeconds(server.pid());
  const auto moved = Clock::now();
  if (!AdvanceClock(*channel, kBurstAt - kStart + 1)) return false;
  row->burst_ms = WaitOverdue(server.metrics_port(), 1 + static_cast<double>(burst), moved,
                              std::chrono::seconds(120));
  row->burst_cpu_s = ProcessCpuSeconds(server.pid()) - cpu_before;
  row->rss_burst_kib = VmRssKib(server.pid());
  int code = server.Terminate();
  if (code != 0) std::cout << row->name << ": whistled exited with " << code << "\n";
  // Restarted later: the second burst passed while the node was down.
  Whistled later(binary, data_dir, log + ".2",
                 {"--test-clock-start-ms", std::to_string(kDownBurstAt + 1)});
  const auto restarted = Clock::now();
  if (!later.Start(std::chrono::seconds(120))) return false;
  row->restart_ms = WaitOverdue(later.metrics_port(), static_cast<double>(burst), restarted,
                                std::chrono::seconds(120));
  code = later.Terminate();
  if (code != 0) std::cout << row->name << ": whistled exited with " << code << "\n";
  return true;
}

std::string Mib(int64_t kib) { return kib < 0 ? "-" : Fixed(static_cast<double>(kib) / 1024, 1); }

int Main(int argc, char** argv) {
  Flags flags(argc, argv, {"pending", "burst", "whistled"}, kUsage);
  const auto pending =
      static_cast<uint64_t>(std::max<int64_t>(0, flags.GetInt("pending", 1000000)));
  const auto burst = static_cast<uint64_t>(std::max<int64_t>(1, flags.GetInt("burst", 10000)));
  const std::string binary = flags.Get("whistled", WHISTLED_PATH);
  Shizuishan szs = LoadShizuishan();
  std::cout << "deadline_bench: " << pending << " pending deadlines, a burst of " << burst
            << "; machine: " << std::thread::hardware_concurrency() << " CPUs, load average "
            << LoadAverage() << std::endl;

  testing::TempDir tmp;
  std::vector<Row> rows(3);
  rows[0].name = "0 pending";
  rows[1].name = std::to_string(pending) + " pending";
  rows[1].extra = pending;
  rows[2].name = std::to_string(pending) + " stored, no deadline (control)";
  rows[2].extra = pending;
  rows[2].timed = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string dir = tmp.path() + "/data" + std::to_string(i);
    const auto started = Clock::now();
    if (!Fill(dir, 1 + 2 * burst + rows[i].extra, burst, rows[i].timed, szs)) return 1;
    std::cout << "filled " << rows[i].name << " in " << Fixed(Seconds(Clock::now() - started), 1)
              << " s; " << DirBytes(dir) / (1 << 20) << " MiB on disk" << std::endl;
    if (!Measure(binary, dir, dir + ".log", burst, &rows[i])) return 1;
  }

  std::cout << "\nload average at end " << LoadAverage() << "\n\n";
  std::vector<std::vector<std::string>> table = {
      {"store", "fork to SERVING ms", "fork to first overdue committed ms", "VmRSS at start MiB",
       std::to_string(burst) + " due at once: all committed ms", "whistled CPU then s",
       "VmRSS after burst MiB",
       "restart after " + std::to_string(burst) + " passed while down: fork to all committed ms"}};
  for (const auto& r : rows) {
    table.push_back({r.name, Fixed(r.serving_ms, 0), Fixed(r.first_fire_ms, 0),
                     Mib(r.rss_start_kib), Fixed(r.burst_ms, 0), Fixed(r.burst_cpu_s, 2),
                     Mib(r.rss_burst_kib), Fixed(r.restart_ms, 0)});
  }
  PrintTable(table);
  const Row& full = rows[1];
  std::cout << "\nstart-up ratio (first overdue committed, " << pending << " vs 0 pending): "
            << Fixed(full.first_fire_ms / std::max(1.0, rows[0].first_fire_ms), 2) << "\n"
            << "goal start-up <= 2 s: "
            << (full.first_fire_ms >= 0 && full.first_fire_ms <= 2000 ? "met" : "NOT met")
            << "\ngoal " << burst << " due processed <= 1 s: "
            << (full.burst_ms >= 0 && full.burst_ms <= 1000 ? "met" : "NOT met") << "\n";
  return 0;
}

}  // namespace
}  // namespace whistle::bench

int main(int argc, char** argv) { return whistle::bench::Main(argc, argv); }
