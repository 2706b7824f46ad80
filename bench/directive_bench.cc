// directive_bench: time from Issue at the city until the city sees every
// target signed, with simulated signers answering at once (each signs as
// soon as its node holds the receipt), and the count updates the city
// received for the directive. Scenarios:
//   one:   Shizuishan (1,903 grids) in one whistled
//   split: Shizuishan over 4 whistled (city + one node per county)
//   big:   synthetic 100,000 grids (4 counties x 10 townships x 10
//          communities x 250 grids) over 5 whistled (city + one per county)
// Signers: --client callback (default: gRPC's callback API, --signers calls in
// flight) or sync (--signers threads each blocked on one call, the first client).
// Tokens: warm (default: every worker has opened its inbox once before the
// issue, as an app does when it starts, so its node has verified the token) or
// cold (the Sign is each token's first call: one ES256 check per Sign).
// Not in CI. Usage: directive_bench [--scenarios one,split,big] [--client callback|sync]
//                                   [--signers 1024] [--tokens warm|cold]
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

struct Options {
  std::string client = "callback";  // callback or sync
  int signers = 1024;               // calls in flight
  bool warm = true;                 // every worker opened its inbox before the issue
};

struct Result {
  double inbox_s = 0;         // the workers' first calls (warm tokens), before the clock
  double issue_ms = 0;        // Issue answered
  double all_counted_ms = 0;  // the city's total counts every target (every node expanded)
  double all_signed_ms = 0;   // the city's progress shows every target signed
  double rpcs_done_ms = 0;    // every Sign answered
  int64_t updates = 0;        // count updates the city received for the directive
  int64_t retries = 0;        // Sign calls that found no receipt yet
  double client_cpu_s = 0;    // this process, issue to all signed (signers and polling)
  double nodes_cpu_s = 0;     // every whistled, issue to all signed
  // Baseline in the same run: one Health/Check per grid (HealthFloor).
  double floor_s = 0, floor_client_cpu_s = 0, floor_nodes_cpu_s = 0;
};

// The grid workers: grid i calls `stubs[host][i % 4]` with `bearer[i]`.
struct Signers {
  std::string directive_id;
  std::vector<std::string> grids;
  std::vector<std::string> bearer;
  std::vector<size_t> host;  // index into stubs
  std::vector<std::vector<std::unique_ptr<v1::DirectiveService::Stub>>> stubs;
  std::vector<std::vector<std::unique_ptr<grpc::GenericStub>>> health;  // same connections
  std::atomic<int64_t> retries{0};

  void Prepare(grpc::ClientContext& ctx, v1::SignDirectiveRequest& req, size_t i) const {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ctx.AddMetadata("authorization", bearer[i]);
    req.set_directive_id(directive_id);
    req.set_unit_id(grids[i]);
  }
  v1::DirectiveService::Stub& StubFor(size_t i) const {
    const auto& of = stubs[host[i]];
    return *of[i % of.size()];
  }
  // Done: signed, or already signed by an earlier try whose answer was lost.
  static bool Settled(const grpc::Status& s) {
    return s.ok() || s.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
  }
};

// `threads` blocking callers, one call each at a time (the first client).
void SignSync(Signers& s, int threads) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < s.grids.size(); i = next++) {
        for (;;) {
          grpc::ClientContext ctx;
          v1::SignDirectiveRequest req;
          s.Prepare(ctx, req, i);
          v1::ReceiptView view;
          if (Signers::Settled(s.StubFor(i).Sign(&ctx, req, &view))) break;
          ++s.retries;  // not expanded there yet, or busy
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }
    });
  }
  for (auto& t : pool) t.join();
}

// gRPC's callback API with `window` calls in flight: each answer starts the
// next grid, so a few gRPC threads carry every call instead of one blocked
// thread per call. A grid whose receipt is not there yet is tried again 2 ms later.
void SignCallback(Signers& s, int window) {
  struct Call {
    size_t i = 0;
    grpc::ClientContext ctx;
    v1::SignDirectiveRequest req;
    v1::ReceiptView view;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<Clock::time_point, size_t>> later;
  size_t settled = 0;
  std::atomic<size_t> next{0};
  std::function<void(size_t)> start = [&](size_t i) {
    auto* call = new Call;
    call->i = i;
    s.Prepare(call->ctx, call->req, i);
    s.StubFor(i).async()->Sign(&call->ctx, &call->req, &call->view, [&, call](grpc::Status st) {
      const size_t i = call->i;
      delete call;
      if (!Signers::Settled(st)) {
        ++s.retries;
        std::lock_guard lock(mu);
        later.emplace_back(Clock::now() + std::chrono::milliseconds(2), i);
        return;
      }
      if (size_t j = next++; j < s.grids.size()) start(j);
      std::lock_guard lock(mu);
      if (++settled == s.grids.size()) cv.notify_all();
    });
  };
  for (int k = 0; k < window; ++k) {
    if (size_t j = next++; j < s.grids.size()) start(j);
  }
  std::unique_lock lock(mu);
  while (settled < s.grids.size()) {
    cv.wait_for(lock, std::chrono::milliseconds(1));
    std::vector<size_t> due;
    const auto now = Clock::now();
    std::erase_if(later, [&](const auto& e) {
      if (e.first > now) return false;
      due.push_back(e.second);
      return true;
    });
    lock.unlock();
    for (size_t i : due) start(i);
    lock.lock();
  }
}

// Runs call(i, done) for every grid with `window` calls in flight (each
// answer starts the next grid). Returns the wall seconds.
double Windowed(size_t n, int window,
                const std::function<void(size_t, std::function<void()>)>& call) {
  std::mutex mu;
  std::condition_variable cv;
  size_t answered = 0;
  std::atomic<size_t> next{0};
  std::function<void(size_t)> start = [&](size_t i) {
    call(i, [&] {
      if (size_t j = next++; j < n) start(j);
      std::lock_guard lock(mu);
      if (++answered == n) cv.notify_all();
    });
  };
  const auto t0 = Clock::now();
  for (int k = 0; k < window; ++k) {
    if (size_t j = next++; j < n) start(j);
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return answered == n; });
  return Seconds(Clock::now() - t0);
}

// The floor under any Sign: one grpc.health.v1.Health/Check per grid at the
// node hosting it, `window` in flight, over the signers' connections (no
// token, no actor, no write). Returns the wall seconds.
double HealthFloor(Signers& s, int window) {
  const grpc::ByteBuffer request = EmptyHealthRequest();
  struct Call {
    grpc::ClientContext ctx;
    grpc::ByteBuffer response;
  };
  return Windowed(s.grids.size(), window, [&](size_t i, std::function<void()> done) {
    auto* call = new Call;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const auto& of = s.health[s.host[i]];
    of[i % of.size()]->UnaryCall(&call->ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                                 &request, &call->response,
                                 [call, done = std::move(done)](grpc::Status) {
                                   delete call;
                                   done();
                                 });
  });
}

// Every grid worker opens its inbox once at the node hosting it, as a worker's
// app does when it starts: the node has then seen (verified) each token.
// Returns the wall seconds; exits if a call fails.
double OpenInboxes(Signers& s, int window) {
  struct Call {
    grpc::ClientContext ctx;
    v1::InboxRequest req;
    v1::InboxResponse resp;
  };
  return Windowed(s.grids.size(), window, [&](size_t i, std::function<void()> done) {
    auto* call = new Call;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    call->ctx.AddMetadata("authorization", s.bearer[i]);
    s.StubFor(i).async()->Inbox(&call->ctx, &call->req, &call->resp,
                                [call, done = std::move(done)](grpc::Status st) {
                                  if (!st.ok()) {
                                    std::fprintf(stderr, "inbox: %s\n", st.error_message().c_str());
                                    std::exit(1);
                                  }
                                  delete call;
                                  done();
                                });
  });
}

// One signers' connection. gRPC's own retries are off: the signers retry for
// themselves (Settled), and the retry filter cost the client ~20 % of its CPU
// per call (2026-11-28, interleaved runs), CPU the nodes share on this machine.
std::shared_ptr<grpc::Channel> SignerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // its own connection
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// `host(grid)` is the process a grid's worker calls.
Result Run(WhistledProcess& city, const std::string& root, const std::vector<std::string>& grids,
           const std::function<WhistledProcess&(const std::string&)>& host, const Options& o) {
  Result out;
  auto stub = v1::DirectiveService::NewStub(city.channel());
  const Identity leader{"leader." + root, "leader", root, ""};
  // Four connections per node, made before the clock matters, shared by the signers.
  Signers s;
  s.grids = grids;
  std::map<WhistledProcess*, size_t> index;
  std::vector<WhistledProcess*> nodes = {&city};
  index[&city] = 0;
  for (const auto& g : grids) {
    WhistledProcess* p = &host(g);
    auto [it, added] = index.emplace(p, nodes.size());
    if (added) nodes.push_back(p);
    s.host.push_back(it->second);
  }
  s.stubs.resize(nodes.size());
  s.health.resize(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int c = 0; c < 4; ++c) {
      auto ch = SignerChannel(nodes[n]->address());
      ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5));
      s.stubs[n].push_back(v1::DirectiveService::NewStub(ch));
      s.health[n].push_back(std::make_unique<grpc::GenericStub>(ch));
    }
  }
  // Every grid worker holds its token before the clock starts, as real ones
  // do (the test issuer mints them one at a time, ~1 ms each: minting inside
  // the timed part measured the client's key, not the node).
  for (const auto& g : grids) {
    s.bearer.push_back("Bearer " + testing::MintTestToken("gw." + g, "grid_worker", g, ""));
  }
  auto nodes_cpu = [&] {
    double sum = 0;
    for (auto* p : nodes) sum += ProcessCpuSeconds(p->pid());
    return sum;
  };
  if (o.warm) out.inbox_s = OpenInboxes(s, o.signers);
  {
    const double client0 = SelfCpuSeconds(), nodes0 = nodes_cpu();
    out.floor_s = HealthFloor(s, o.signers);
    out.floor_client_cpu_s = SelfCpuSeconds() - client0;
    out.floor_nodes_cpu_s = nodes_cpu() - nodes0;
  }
  const double client_cpu0 = SelfCpuSeconds();
  const double nodes_cpu0 = nodes_cpu();
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
    grpc::Status st = stub->Issue(&ctx, req, &issued);
    if (!st.ok()) {
      std::fprintf(stderr, "issue: %s\n", st.error_message().c_str());
      std::exit(1);
    }
  }
  out.issue_ms = Seconds(Clock::now() - t0) * 1e3;
  s.directive_id = issued.directive().id();
  std::thread signing([&] {
    if (o.client == "sync") {
      SignSync(s, o.signers);
    } else {
      SignCallback(s, o.signers);
    }
    out.rpcs_done_ms = Seconds(Clock::now() - t0) * 1e3;
  });
  const int64_t want = static_cast<int64_t>(grids.size());
  for (;;) {
    grpc::ClientContext ctx;
    leader.Apply(ctx);
    v1::GetProgressRequest req;
    req.set_directive_id(s.directive_id);
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
    // Every 2 ms, or every 0.5 % of the time so far when longer: the figure
    // is late by at most that, and 100,000 signers are not slowed by ~2,500
    // Progress calls at the city.
    const auto so_far = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
    std::this_thread::sleep_for(
        std::max<std::chrono::microseconds>(so_far / 200, std::chrono::milliseconds(2)));
  }
  out.client_cpu_s = SelfCpuSeconds() - client_cpu0;
  out.nodes_cpu_s = nodes_cpu() - nodes_cpu0;
  signing.join();
  out.retries = s.retries;
  return out;
}

void Print(const std::string& scenario, int processes, size_t grids, const Result& r) {
  const double per_sign_us = 1e6 / static_cast<double>(grids);
  std::printf(
      "%-6s processes=%d grids=%zu  issue_answered=%.0f ms  all_expanded_at_city=%.0f ms  "
      "all_signed_at_city=%.0f ms  "
      "all_sign_rpcs_answered=%.0f ms  count_updates_received_by_city=%lld  sign_retries=%lld  "
      "cpu_per_sign: nodes=%.0f us client=%.0f us\n"
      "       baseline, one Health/Check per grid the same way: %.0f ms  "
      "cpu_per_check: nodes=%.0f us client=%.0f us  tokens=%s (first inbox calls: %.0f ms)\n",
      scenario.c_str(), processes, grids, r.issue_ms, r.all_counted_ms, r.all_signed_ms,
      r.rpcs_done_ms, static_cast<long long>(r.updates), static_cast<long long>(r.retries),
      r.nodes_cpu_s * per_sign_us, r.client_cpu_s * per_sign_us, r.floor_s * 1e3,
      r.floor_nodes_cpu_s * per_sign_us, r.floor_client_cpu_s * per_sign_us,
      r.inbox_s > 0 ? "warm" : "cold", r.inbox_s * 1e3);
  std::fflush(stdout);
}

std::vector<std::string> GridsOf(const core::Topology& t) {
  std::vector<std::string> grids;
  for (const auto& j : t.config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID) grids.push_back(j.id());
  }
  return grids;
}

void One(const Options& o) {
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
            [&](const std::string&) -> WhistledProcess& { return node; }, o));
}

void Split(const Options& o) {
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
            [&](const std::string& g) -> WhistledProcess& { return fed.NodeHosting(g); }, o));
}

void Big(const Options& o) {
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
            [&](const std::string& g) -> WhistledProcess& { return fed.node(g.substr(0, 2)); }, o));
}

}  // namespace
}  // namespace whistle::bench

int main(int argc, char** argv) {
  using namespace whistle::bench;
  Flags flags(argc, argv, {"scenarios", "signers", "client", "tokens"},
              "directive_bench [--scenarios one,split,big] [--client callback|sync] "
              "[--signers 1024] [--tokens warm|cold]");
  const std::string scenarios = flags.Get("scenarios", "one,split,big");
  Options o;
  o.signers = static_cast<int>(flags.GetInt("signers", 1024));
  o.client = flags.Get("client", "callback");
  if (o.client != "callback" && o.client != "sync") {
    std::fprintf(stderr, "--client: callback or sync, not %s\n", o.client.c_str());
    return 2;
  }
  const std::string tokens = flags.Get("tokens", "warm");
  if (tokens != "warm" && tokens != "cold") {
    std::fprintf(stderr, "--tokens: warm or cold, not %s\n", tokens.c_str());
    return 2;
  }
  o.warm = tokens == "warm";
  std::stringstream list(scenarios);
  for (std::string s; std::getline(list, s, ',');) {
    if (s == "one") {
      One(o);
    } else if (s == "split") {
      Split(o);
    } else if (s == "big") {
      Big(o);
    } else {
      std::fprintf(stderr, "unknown scenario %s\n", s.c_str());
      return 2;
    }
  }
  return 0;
}
