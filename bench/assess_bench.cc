// Assessment query latency with the rows of 1,000,000 cases stored.
//
// Every case gets five transitions (report, accept, resolve, close, evaluate)
// whose deltas come from core::assessment::Deltas, exactly as the jurisdiction
// actor computes them; a day's deltas are summed per (subject, day, figure)
// and merged into the store through storage::AddAssessmentRow, one batch per
// day (the stored sums are the ones the per-transition merges would give). The
// cases fall on grids of the whole Shizuishan tree, uniformly over one year.
// Then, on the running store: the whole city over the year (one prefix range
// scan, <= 366 days of rows) against one day of the city, and the city's
// three counties over the year (what Rank reads). Goal: <= 50 ms for the year.
//
//   assess_bench [--cases 1000000] [--queries 50]
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <tuple>
#include <unordered_map>

#include "bench/bench_support.h"
#include "core/assessment.h"
#include "storage/assessment_store.h"
#include "storage/store.h"
#include "tests/e2e/whistled_process.h"

using namespace whistle;
namespace a = core::assessment;

namespace {

// 2026-01-01T00:00:00+08:00.
constexpr int64_t kYearStartMs = 1767196800000LL;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double P99(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

}  // namespace

int main(int argc, char** argv) {
  bench::Flags flags(argc, argv, {"cases", "queries"},
                     "assess_bench [--cases 1000000] [--queries 50]");
  const int64_t n_cases = flags.GetInt("cases", 1'000'000);
  const int queries = static_cast<int>(flags.GetInt("queries", 50));
  auto topology = *core::Topology::Build(core::ShizuishanTopology());
  std::vector<std::string> grids;
  for (const auto& j : topology->config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID) grids.push_back(j.id());
  }
  testing::TempDir dir;
  storage::Options options;
  options.path = dir.path() + "/data";
  options.sync = false;
  auto store = storage::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::mt19937_64 rng(42);
  const int64_t first_day = a::DayOf(kYearStartMs);
  auto load_start = bench::Clock::now();
  int64_t rows_written = 0;
  std::unordered_map<std::string, int64_t> day_rows;  // "<kind><subject>\0<figure>" -> sum
  int64_t next = 0;
  for (int64_t day = 0; day < 366; ++day) {
    const int64_t until = n_cases * (day + 1) / 366;
    day_rows.clear();
    for (; next < until; ++next) {
      const std::string& grid = grids[rng() % grids.size()];
      const int64_t at = a::DayStartMs(first_day + day) + static_cast<int64_t>(rng() % 36'000'000);
      v1::Case c;
      c.set_id("bench-" + std::to_string(next));
      c.set_category("dispute.neighbour");
      c.mutable_place()->set_grid_id(grid);
      const std::string owner = topology->AncestorAt(grid, v1::LEVEL_COMMUNITY)->id();
      c.set_owner_id(owner);
      c.set_routed_to_id(owner);
      c.set_recurrence(rng() % 10 == 0);
      std::vector<v1::Case> states;
      struct Step {
        v1::TransitionKind kind;
        v1::CaseState to;
      };
      const Step steps[] = {{v1::TRANSITION_KIND_REPORT, v1::CASE_STATE_REPORTED},
                            {v1::TRANSITION_KIND_ACCEPT, v1::CASE_STATE_ACCEPTED},
                            {v1::TRANSITION_KIND_RESOLVE, v1::CASE_STATE_RESOLVED},
                            {v1::TRANSITION_KIND_CLOSE, v1::CASE_STATE_CLOSED},
                            {v1::TRANSITION_KIND_EVALUATE, v1::CASE_STATE_EVALUATED}};
      v1::Case before;
      bool have_before = false;
      for (const Step& s : steps) {
        v1::Case after = have_before ? before : c;
        after.set_state(s.to);
        if (s.kind == v1::TRANSITION_KIND_ACCEPT) after.set_accepted_in_time(rng() % 10 != 0);
        if (s.kind == v1::TRANSITION_KIND_RESOLVE) after.set_resolved_in_time(rng() % 5 != 0);
        v1::HistoryEntry e;
        e.set_kind(s.kind);
        e.set_at_ms(at);
        e.set_from_jurisdiction_id(have_before ? before.owner_id() : "");
        e.set_jurisdiction_id(after.owner_id());
        e.set_from_state(have_before ? before.state() : v1::CASE_STATE_UNSPECIFIED);
        e.set_to_state(s.to);
        if (s.kind == v1::TRANSITION_KIND_EVALUATE) e.set_score(1 + static_cast<int>(rng() % 5));
        a::Annotate(have_before ? &before : nullptr, after, e, *topology);
        for (const auto& d : a::Deltas(have_before ? &before : nullptr, after, e, *topology)) {
          if (d.day != first_day + day) continue;  // gauges: none in this load
          std::string key(1, static_cast<char>(d.kind));
          key += d.subject;
          key.push_back('\0');
          key.push_back(static_cast<char>(d.figure));
          day_rows[key] += d.value;
        }
        before = std::move(after);
        have_before = true;
      }
    }
    storage::Batch batch;
    for (const auto& [key, value] : day_rows) {
      size_t sep = key.find('\0');
      storage::AddAssessmentRow(batch, {key[0], key.substr(1, sep - 1), first_day + day,
                                        static_cast<unsigned char>(key[sep + 1]), value});
    }
    rows_written += static_cast<int64_t>(day_rows.size());
    Status s = (*store)->CommitAndWait(std::move(batch));
    if (!s.ok()) {
      std::fprintf(stderr, "commit: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const double load_s = bench::Seconds(bench::Clock::now() - load_start);

  auto measure = [&](const std::string& subject, int64_t from, int64_t to, int64_t* received) {
    std::vector<double> ms;
    for (int q = 0; q < queries; ++q) {
      auto t0 = bench::Clock::now();
      auto sums = storage::SumAssessment(**store, 'j', subject, from, to);
      ms.push_back(bench::Seconds(bench::Clock::now() - t0) * 1e3);
      if (!sums.ok()) {
        std::fprintf(stderr, "query: %s\n", sums.status().ToString().c_str());
        std::exit(1);
      }
      *received = (*sums)[static_cast<size_t>(a::Figure::kReceived)];
    }
    return ms;
  };
  int64_t year_received = 0, day_received = 0, county_received = 0;
  auto year = measure("szs", first_day, first_day + 365, &year_received);
  auto one_day = measure("szs", first_day + 180, first_day + 180, &day_received);
  std::vector<double> counties;
  for (int q = 0; q < queries; ++q) {
    auto t0 = bench::Clock::now();
    int64_t sum = 0;
    for (const auto* child : topology->Children("szs")) {
      auto sums = storage::SumAssessment(**store, 'j', child->id(), first_day, first_day + 365);
      if (sums.ok()) sum += (*sums)[static_cast<size_t>(a::Figure::kReceived)];
    }
    counties.push_back(bench::Seconds(bench::Clock::now() - t0) * 1e3);
    county_received = sum;
  }
  std::printf("cases: %lld (rows written: %lld, load %.1f s)\n", static_cast<long long>(n_cases),
              static_cast<long long>(rows_written), load_s);
  // The first query reads cold blocks (and may meet a compaction): shown apart.
  const double year_cold = year.front();
  year.erase(year.begin());
  std::printf(
      "city, one year:   first (cold) %.2f ms; then median %.2f ms, p99 %.2f ms "
      "(received %lld)\n",
      year_cold, Median(year), P99(year), static_cast<long long>(year_received));
  std::printf("city, one day:    median %.3f ms, p99 %.3f ms (received %lld)\n", Median(one_day),
              P99(one_day), static_cast<long long>(day_received));
  std::printf("ratio year/day:   %.1f\n", Median(year) / std::max(Median(one_day), 1e-6));
  std::printf("3 counties, year: median %.2f ms (rank of the city's children; received %lld)\n",
              Median(counties), static_cast<long long>(county_received));
  const bool ok = Median(year) <= 50.0 && year_cold <= 250.0 && year_received == n_cases &&
                  county_received == n_cases;
  std::printf("goal (median <= 50 ms, every case counted once): %s\n", ok ? "met" : "NOT met");
  return ok ? 0 : 1;
}
