// directive_bench: time from Issue at the city until the city sees every
// target signed, with simulated signers answering at once (each signs as
// soon as its node holds the receipt), and the count updates the city
// received for the directive. Scenarios:
//   one:   Shizuishan (1,903 grids) in one whistled
//   split: Shizuishan over 4 whistled (city + one node per county)
//   big:   synthetic 100,000 grids (4 counties x 10 townships x 10
//          communities x 250 grids) over 5 whistled (city + one per county)
// Not in CI. Usage: directive_bench [--scenarios one,split,big] [--signers 128]
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "core/topology.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/whistled_process.h"
#include "whistle/v1/directive_service.grpc.pb.h"

namespace whistle::bench {
namespace {

using testing::FederationNode;
using testing::Identity;
using testing::LocalFederation;
using testing::WhistledProcess;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct Result {
  double issue_ms = 0;        // Issue answered
  double all_counted_ms = 0;  // the city's total counts every target (every node expanded)
  double all_signed_ms = 0;   // the city's progress shows every target signed
  double rpcs_done_ms = 0;    // every Sign answered
  int64_t updates = 0;        // count updates the city received for the directive
  int64_t retries = 0;        // Sign calls that found no receipt yet
};

// `host(grid)` is the process a grid's worker calls.
Result Run(WhistledProcess& city, const std::string& root, const std::vector<std::string>& grids,
           const std::function<WhistledProcess&(const std::string&)>& host, int signers) {
  Result out;
  auto stub = v1::DirectiveService::NewStub(city.channel());
  const Identity leader{"leader." + root, "leader", root, ""};
  // Four connections per node, made before the clock matters, shared by the signers.
  std::map<WhistledProcess*, std::vector<std::shared_ptr<grpc::Channel>>> channels;
  std::vector<WhistledProcess*> hosts;
  hosts.reserve(grids.size());
  for (const auto& g : grids) {
    WhistledProcess* p = &host(g);
    hosts.push_back(p);
    auto& c = channels[p];
    while (c.size() < 4) c.push_back(p->channel());
  }
  for (auto& [p, c] : channels) {
    for (auto& ch : c)
      ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  // Every grid worker holds its token before the clock starts, as real ones
  // do (the test issuer mints them one at a time, ~1 ms each: minting inside
  // the timed part measured the client's key, not the node).
  for (const auto& g : grids) {
    grpc::ClientContext warm;
    Identity{"gw." + g, "grid_worker", g, ""}.Apply(warm);
  }
  const auto t0 = Clock::now();
  v1::IssueDirectiveResponse issued;
  {
    grpc::ClientContext ctx;
    leader.Apply(ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::IssueDirectiveRequest req;
    req.mutable_draft()->set_title("bench");
    req.mutable_draft()->set_text("bench");
    req.mutable_draft()->set_deadline_unix_ms(NowMs() + 3600 * 1000);
    req.mutable_draft()->mutable_targets()->mutable_level()->set_subtree_id(root);
    req.mutable_draft()->mutable_targets()->mutable_level()->set_level(v1::LEVEL_GRID);
    grpc::Status s = stub->Issue(&ctx, req, &issued);
    if (!s.ok()) {
      std::fprintf(stderr, "issue: %s\n", s.error_message().c_str());
      std::exit(1);
    }
  }
  out.issue_ms = Seconds(Clock::now() - t0) * 1e3;
  const std::string id = issued.directive().id();
  std::atomic<int64_t> retries{0};
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < signers; ++k) {
    threads.emplace_back([&, k] {
      std::map<WhistledProcess*, std::unique_ptr<v1::DirectiveService::Stub>> stubs;
      for (auto& [p, c] : channels) stubs[p] = v1::DirectiveService::NewStub(c[k % c.size()]);
      for (size_t i = next++; i < grids.size(); i = next++) {
        const std::string& g = grids[i];
        auto& s = stubs[hosts[i]];
        for (;;) {
          grpc::ClientContext ctx;
          Identity{"gw." + g, "grid_worker", g, ""}.Apply(ctx);
          v1::SignDirectiveRequest req;
          req.set_directive_id(id);
          req.set_unit_id(g);
          v1::ReceiptView view;
          grpc::Status st = s->Sign(&ctx, req, &view);
          if (st.ok() || st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) break;
          ++retries;  // not expanded there yet, or busy
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }
    });
  }
  std::thread waiter([&] {
    for (auto& th : threads) th.join();
    out.rpcs_done_ms = Seconds(Clock::now() - t0) * 1e3;
  });
  const int64_t want = static_cast<int64_t>(grids.size());
  for (;;) {
    grpc::ClientContext ctx;
    leader.Apply(ctx);
    v1::GetProgressRequest req;
    req.set_directive_id(id);
    req.set_jurisdiction_id(root);
    v1::GetProgressResponse p;
    const bool ok = stub->Progress(&ctx, req, &p).ok();
    if (ok && out.all_counted_ms == 0 && p.total().counts().total() >= want) {
      out.all_counted_ms = Seconds(Clock::now() - t0) * 1e3;
    }
    if (ok && p.total().counts().signed_() >= want) {
      out.all_signed_ms = Seconds(Clock::now() - t0) * 1e3;
      out.updates = p.count_updates_received();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  waiter.join();
  out.retries = retries;
  return out;
}

void Print(const std::string& scenario, int processes, size_t grids, const Result& r) {
  std::printf(
      "%-6s processes=%d grids=%zu  issue_answered=%.0f ms  all_expanded_at_city=%.0f ms  "
      "all_signed_at_city=%.0f ms  "
      "all_sign_rpcs_answered=%.0f ms  count_updates_received_by_city=%lld  sign_retries=%lld\n",
      scenario.c_str(), processes, grids, r.issue_ms, r.all_counted_ms, r.all_signed_ms,
      r.rpcs_done_ms, static_cast<long long>(r.updates), static_cast<long long>(r.retries));
  std::fflush(stdout);
}

std::vector<std::string> GridsOf(const core::Topology& t) {
  std::vector<std::string> grids;
  for (const auto& j : t.config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID) grids.push_back(j.id());
  }
  return grids;
}

void One(int signers) {
  testing::TempDir dir;
  WhistledProcess node(dir.path() + "/one");
  if (!node.running()) {
    std::fprintf(stderr, "whistled did not start: %s\n", node.LogTail().c_str());
    std::exit(1);
  }
  auto t = *core::Topology::Build(core::ShizuishanTopology());
  auto grids = GridsOf(*t);
  Print("one", 1, grids.size(),
        Run(
            node, t->root().id(), grids,
            [&](const std::string&) -> WhistledProcess& { return node; }, signers));
}

void Split(int signers) {
  LocalFederation fed(LocalFederation::CountySplit());
  if (!fed.ok()) {
    std::fprintf(stderr, "%s\n", fed.Describe().c_str());
    std::exit(1);
  }
  auto t = *core::Topology::Build(core::ShizuishanTopology());
  auto grids = GridsOf(*t);
  Print("split", static_cast<int>(fed.plan().size()), grids.size(),
        Run(
            fed.node(t->root().id()), t->root().id(), grids,
            [&](const std::string& g) -> WhistledProcess& { return fed.NodeHosting(g); }, signers));
}

void Big(int signers) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/big.json";
  constexpr int kCounties = 4, kTowns = 10, kCommunities = 10, kGrids = 250;
  std::vector<std::string> grids;
  {
    std::ofstream out(file);
    out << R"({"name":"big","jurisdictions":[{"id":"big","name":"big","level":"LEVEL_CITY"})";
    for (int c = 0; c < kCounties; ++c) {
      const std::string cid = "c" + std::to_string(c);
      out << R"(,{"id":")" << cid << R"(","name":"c","level":"LEVEL_COUNTY","parent_id":"big"})";
      for (int s = 0; s < kTowns; ++s) {
        const std::string tid = cid + "-t" + std::to_string(s);
        out << R"(,{"id":")" << tid << R"(","name":"t","level":"LEVEL_TOWNSHIP","parent_id":")"
            << cid << R"("})";
        for (int m = 0; m < kCommunities; ++m) {
          const std::string mid = tid + "-m" + std::to_string(m);
          out << R"(,{"id":")" << mid << R"(","name":"m","level":"LEVEL_COMMUNITY","parent_id":")"
              << tid << R"("})";
          for (int g = 0; g < kGrids; ++g) {
            const std::string gid = mid + "-g" + std::to_string(g);
            grids.push_back(gid);
            out << R"(,{"id":")" << gid
                << R"(","name":"g","level":"LEVEL_GRID","grid_kind":"GRID_KIND_URBAN","parent_id":")"
                << mid << R"("})";
          }
        }
      }
    }
    out << "]}";
  }
  std::vector<FederationNode> plan = {{"big", "big", "big", {"c0", "c1", "c2", "c3"}, ""}};
  for (int c = 0; c < kCounties; ++c) {
    const std::string cid = "c" + std::to_string(c);
    plan.push_back({cid, cid, cid, {}, "big"});
  }
  testing::FederationOptions options;
  options.extra_flags = {"--topology-file", file};
  LocalFederation fed(plan, options);
  if (!fed.ok()) {
    std::fprintf(stderr, "%s\n", fed.Describe().c_str());
    std::exit(1);
  }
  Print("big", static_cast<int>(plan.size()), grids.size(),
        Run(
            fed.node("big"), "big", grids,
            [&](const std::string& g) -> WhistledProcess& { return fed.node(g.substr(0, 2)); },
            signers));
}

}  // namespace
}  // namespace whistle::bench

int main(int argc, char** argv) {
  using namespace whistle::bench;
  Flags flags(argc, argv, {"scenarios", "signers"},
              "directive_bench [--scenarios one,split,big] [--signers 128]");
  const std::string scenarios = flags.Get("scenarios", "one,split,big");
  const int signers = static_cast<int>(flags.GetInt("signers", 128));
  std::stringstream list(scenarios);
  for (std::string s; std::getline(list, s, ',');) {
    if (s == "one") {
      One(signers);
    } else if (s == "split") {
      Split(signers);
    } else if (s == "big") {
      Big(signers);
    } else {
      std::fprintf(stderr, "unknown scenario %s\n", s.c_str());
      return 2;
    }
  }
  return 0;
}
