// Directives across processes: a city, one county and two of its townships
// as real whistled processes on 127.0.0.1. The city issues to every grid of
// the city; grid workers sign and complete at the node hosting their grid
// (every fifth at the city, which forwards it down the links) while the county is SIGKILLed and
// restarted mid-fan-out and a township's link is cut for a while. At the end every unit is signed
// and done exactly once, every level's counts equal a hand count, and the count updates the city
// received for the directive are far fewer than the units below it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/topology.h"
#include "tests/e2e/federation.h"
#include "whistle/v1/directive_service.grpc.pb.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kThreads = 6;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const core::Topology& Shizuishan() {
  static const auto topology = *core::Topology::Build(core::ShizuishanTopology());
  return *topology;
}

Identity Leader(const std::string& j) { return {"leader." + j, "leader", j, ""}; }
Identity Worker(const std::string& grid) { return {"gw." + grid, "grid_worker", grid, ""}; }

std::unique_ptr<v1::DirectiveService::Stub> Stub(WhistledProcess& p) {
  return v1::DirectiveService::NewStub(p.channel());
}

void Prepare(grpc::ClientContext& ctx, const Identity& who) {
  who.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// Progress of `id` in `at` at node `p` as `who`.
grpc::Status ProgressAs(WhistledProcess& p, const Identity& who, const std::string& id,
                        const std::string& at, v1::GetProgressResponse* out) {
  grpc::ClientContext ctx;
  Prepare(ctx, who);
  v1::GetProgressRequest req;
  req.set_directive_id(id);
  req.set_jurisdiction_id(at);
  return Stub(p)->Progress(&ctx, req, out);
}

// The same as the city's leader.
grpc::Status Progress(WhistledProcess& p, const std::string& id, const std::string& at,
                      v1::GetProgressResponse* out) {
  return ProgressAs(p, Leader(Shizuishan().root().id()), id, at, out);
}

// The first township of `county` in the topology ("" when it has none).
std::string FirstTownshipOf(const std::string& county) {
  for (const auto* j : Shizuishan().Children(county)) {
    if (j->level() == v1::LEVEL_TOWNSHIP) return j->id();
  }
  return "";
}

// Receipts of units under `at` stored on node `p`, in `state`, all pages;
// `status` is the first failed page's (then the pages before it).
std::vector<v1::Receipt> TryTargets(WhistledProcess& p, const std::string& id,
                                    const std::string& at, v1::ReceiptState state,
                                    grpc::Status* status) {
  std::vector<v1::Receipt> out;
  v1::ListTargetsRequest req;
  req.set_directive_id(id);
  req.set_jurisdiction_id(at);
  req.set_state(state);
  req.set_page_size(500);
  for (;;) {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(Shizuishan().root().id()));
    v1::ListTargetsResponse page;
    *status = Stub(p)->ListTargets(&ctx, req, &page);
    if (!status->ok()) return out;
    for (const auto& r : page.receipts()) out.push_back(r);
    if (page.next_page_token().empty()) return out;
    req.set_page_token(page.next_page_token());
  }
}

std::vector<v1::Receipt> Targets(WhistledProcess& p, const std::string& id, const std::string& at,
                                 v1::ReceiptState state) {
  grpc::Status s;
  auto out = TryTargets(p, id, at, state, &s);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

// One unit's answer (sign, then complete) at the node hosting it, or at
// `via` (which forwards it over the node links), retried while a node on the
// way is down or has not expanded the directive yet. A retry after a lost
// answer may find it applied: "has already" then counts as applied, never as
// a second application.
enum class Step { kSign, kComplete };
bool Answer(LocalFederation& fed, const std::string& id, const std::string& grid, Step step,
            std::atomic<int>* retries, WhistledProcess* via = nullptr) {
  WhistledProcess& node = via != nullptr ? *via : fed.NodeHosting(grid);
  const auto give_up = Clock::now() + std::chrono::seconds(45);
  bool tried = false;
  std::string last;
  while (Clock::now() < give_up) {
    grpc::ClientContext ctx;
    Prepare(ctx, Worker(grid));
    v1::ReceiptView view;
    grpc::Status s;
    if (step == Step::kSign) {
      v1::SignDirectiveRequest req;
      req.set_directive_id(id);
      req.set_unit_id(grid);
      req.mutable_sign()->set_note("收到");
      s = Stub(node)->Sign(&ctx, req, &view);
    } else {
      v1::CompleteDirectiveRequest req;
      req.set_directive_id(id);
      req.set_unit_id(grid);
      req.mutable_complete()->set_note("已排查");
      s = Stub(node)->Complete(&ctx, req, &view);
    }
    if (s.ok()) return true;
    const bool already = s.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                         s.error_message().find("has already") != std::string::npos;
    if (already && tried) return true;
    if (s.error_code() == grpc::StatusCode::NOT_FOUND ||
        s.error_code() == grpc::StatusCode::UNAVAILABLE ||
        s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      tried = tried || s.error_code() != grpc::StatusCode::NOT_FOUND;
      last = s.error_message();
      retries->fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    ADD_FAILURE() << grid << ": " << s.error_code() << " " << s.error_message();
    return false;
  }
  ADD_FAILURE() << grid << ": no answer in time; last: " << last;
  return false;
}

// The done count of `id`'s row for `at` as a watch of `at` on node `p` adds
// it up from the start of the log (each progress change carries a delta),
// read until it reaches `want` or 5 s pass.
int64_t WatchedDone(WhistledProcess& p, const std::string& id, const std::string& at,
                    int64_t want) {
  auto stub = v1::WatchService::NewStub(p.channel());
  grpc::ClientContext ctx;
  Leader(Shizuishan().root().id()).Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::WatchRequest req;
  req.set_jurisdiction_id(at);
  req.set_from_token("0");
  auto stream = stub->Watch(&ctx, req);
  int64_t done = 0;
  v1::Change change;
  while (done < want && stream->Read(&change)) {
    const auto& dc = change.directive_change();
    if (dc.directive_id() == id && dc.jurisdiction_id() == at) done += dc.delta().done();
  }
  ctx.TryCancel();
  stream->Finish();
  return done;
}

// Progress at `at` on node `p`: the row and each child row equal the hand
// count (every grid below is signed and done).
void ExpectAllDone(WhistledProcess& p, const std::string& id, const std::string& at) {
  v1::GetProgressResponse r;
  grpc::Status s = Progress(p, id, at, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const int64_t grids = Shizuishan().GridsBelow(at);
  EXPECT_EQ(r.total().counts().total(), grids) << at;
  EXPECT_EQ(r.total().counts().signed_(), grids) << at;
  EXPECT_EQ(r.total().counts().done(), grids) << at;
  int64_t sum = 0;
  for (const auto& row : r.children()) {
    const int64_t below = Shizuishan().GridsBelow(row.jurisdiction_id());
    EXPECT_EQ(row.counts().total(), below) << at << " / " << row.jurisdiction_id();
    EXPECT_EQ(row.counts().signed_(), below) << at << " / " << row.jurisdiction_id();
    EXPECT_EQ(row.counts().done(), below) << at << " / " << row.jurisdiction_id();
    sum += row.counts().done();
  }
  EXPECT_EQ(sum, grids) << at << ": child rows add up";
}

TEST(DirectiveFederationTest, CityToAllGridsAcrossKillAndCutExactlyOnce) {
  const auto& t = Shizuishan();
  const std::string city = t.root().id();
  const std::string county = "pl";
  std::vector<std::string> towns;
  for (const auto* j : t.Children(county)) {
    if (j->level() == v1::LEVEL_TOWNSHIP && towns.size() < 2) towns.push_back(j->id());
  }
  ASSERT_EQ(towns.size(), 2u);
  std::vector<FederationNode> plan = {
      {city, LocalFederation::NodeIdFor(city), city, {county}, ""},
      {county, LocalFederation::NodeIdFor(county), county, towns, city},
      {towns[0], LocalFederation::NodeIdFor(towns[0]), towns[0], {}, county},
      {towns[1], LocalFederation::NodeIdFor(towns[1]), towns[1], {}, county},
  };
  FederationOptions options;
  options.proxied = {towns[0]};
  LocalFederation fed(plan, options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  const auto started = Clock::now();

  std::vector<std::string> grids;
  for (const auto& j : t.config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID) grids.push_back(j.id());
  }
  ASSERT_EQ(grids.size(), 1903u);

  // Issue at the city, to every grid of the city.
  v1::IssueDirectiveResponse issued;
  {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::IssueDirectiveRequest req;
    auto* d = req.mutable_draft();
    d->set_title("出租房屋消防隐患排查");
    d->set_text("排查辖区内所有出租房屋的消防隐患");
    d->set_deadline_unix_ms(NowMs() + 3600 * 1000);
    d->mutable_targets()->mutable_level()->set_subtree_id(city);
    d->mutable_targets()->mutable_level()->set_level(v1::LEVEL_GRID);
    grpc::Status s = Stub(fed.node(city))->Issue(&ctx, req, &issued);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const std::string id = issued.directive().id();
  EXPECT_EQ(issued.targets(), 1903);

  // The county dies mid-fan-out (its expansion and relay to the townships in
  // flight) and comes back on its data.
  EXPECT_EQ(fed.Kill(county), -SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(fed.Restart(county)) << fed.Describe();

  // Every node is answered to throughout (not city grids first).
  std::mt19937 rng(7);
  std::shuffle(grids.begin(), grids.end(), rng);
  std::atomic<int> retries{0};
  std::atomic<int> answered{0};
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  // Until `n` units have answered (or `cap` has passed: answers forwarded
  // across a cut link wait for it to mend).
  auto when = [&](int n, std::chrono::seconds cap = std::chrono::seconds(60)) {
    const auto until = std::min(give_up, Clock::now() + cap);
    while (answered.load() < n && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  // During signing: a township's cable is cut for a while, and the county
  // (relaying counts up) and the other township (sending its own) are
  // SIGKILLed and restarted, losing whatever was in flight but not durable.
  std::thread cutter([&] {
    when(200);
    fed.proxy(towns[0])->Pause();
    when(500, std::chrono::seconds(5));
    EXPECT_EQ(fed.Kill(county), -SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(fed.Restart(county)) << fed.Describe();
    when(900, std::chrono::seconds(5));
    fed.proxy(towns[0])->Resume();
    EXPECT_EQ(fed.Kill(towns[1]), -SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_TRUE(fed.Restart(towns[1])) << fed.Describe();
  });

  std::vector<std::thread> signers;
  for (int k = 0; k < kThreads; ++k) {
    signers.emplace_back([&, k] {
      for (size_t i = k; i < grids.size(); i += kThreads) {
        // Every fifth grid answers at the city, which forwards down the links.
        WhistledProcess* via = i % 5 == 0 ? &fed.node(city) : nullptr;
        if (Answer(fed, id, grids[i], Step::kSign, &retries, via) &&
            Answer(fed, id, grids[i], Step::kComplete, &retries, via)) {
          answered.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : signers) th.join();
  cutter.join();
  ASSERT_EQ(answered.load(), 1903) << fed.Describe();

  // The city sees every grid done once the counts have come up.
  v1::GetProgressResponse at_city;
  const auto until = Clock::now() + std::chrono::seconds(20);
  for (;;) {
    at_city.Clear();
    grpc::Status s = Progress(fed.node(city), id, city, &at_city);
    ASSERT_TRUE(s.ok()) << s.error_message();
    if (at_city.total().counts().done() == 1903 && at_city.total().counts().total() == 1903) break;
    ASSERT_LT(Clock::now(), until)
        << "city sees " << at_city.total().counts().ShortDebugString() << "\n"
        << fed.Describe();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Every level adds up and equals the hand count, on every node.
  ExpectAllDone(fed.node(city), id, city);
  ExpectAllDone(fed.node(city), id, county);
  ExpectAllDone(fed.node(county), id, county);
  for (const auto& town : towns) {
    ExpectAllDone(fed.node(county), id, town);
    ExpectAllDone(fed.node(town), id, town);
  }

  // Exactly once: listed at the city (its own units, then each child node's,
  // read there), each grid has one receipt, done. A receipt expanded on two
  // nodes would be listed twice.
  std::map<std::string, int> receipts;
  for (const auto& r : Targets(fed.node(city), id, city, v1::RECEIPT_STATE_UNSPECIFIED)) {
    EXPECT_EQ(r.state(), v1::RECEIPT_STATE_DONE) << r.unit_id();
    ++receipts[r.unit_id()];
  }
  for (const auto& n : plan) {
    // On each node, its own root lists every unit of its subtree.
    EXPECT_EQ(static_cast<int64_t>(
                  Targets(fed.node(n.name), id, n.hosted, v1::RECEIPT_STATE_DONE).size()),
              t.GridsBelow(n.hosted))
        << n.name;
  }
  EXPECT_EQ(receipts.size(), 1903u);
  for (const auto& [unit, n] : receipts) EXPECT_EQ(n, 1) << unit;

  // The city's live watch adds up to the same: every grid done, once.
  EXPECT_EQ(WatchedDone(fed.node(city), id, city, 1903), 1903);
  EXPECT_EQ(WatchedDone(fed.node(city), id, county, t.GridsBelow(county)), t.GridsBelow(county));

  // Page tokens this server did not issue are refused, naming the field.
  for (const char* token : {"9|", "x|abc", "|", "123456|"}) {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::ListTargetsRequest req;
    req.set_directive_id(id);
    req.set_jurisdiction_id(city);
    req.set_page_token(token);
    v1::ListTargetsResponse page;
    grpc::Status s = Stub(fed.node(city))->ListTargets(&ctx, req, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << token;
    EXPECT_NE(s.error_message().find("page_token"), std::string::npos) << s.error_message();
  }

  // A leader at the city drills down to a township two links away: its
  // receipts are read on the township node, the same list as asked there.
  for (const auto& town : towns) {
    auto at_city = Targets(fed.node(city), id, town, v1::RECEIPT_STATE_DONE);
    auto at_town = Targets(fed.node(town), id, town, v1::RECEIPT_STATE_DONE);
    EXPECT_EQ(static_cast<int64_t>(at_city.size()), t.GridsBelow(town)) << town;
    ASSERT_EQ(at_city.size(), at_town.size()) << town;
    for (size_t i = 0; i < at_city.size(); ++i) {
      EXPECT_EQ(at_city[i].unit_id(), at_town[i].unit_id()) << town;
    }
    EXPECT_TRUE(Targets(fed.node(city), id, town, v1::RECEIPT_STATE_PENDING).empty()) << town;
  }

  // Coalesced: the city merged far fewer updates than there are units below
  // its child node (one per flush window per child, not one per answer).
  const int64_t below = t.GridsBelow(county);
  std::printf(
      "directive %s: city received %lld count updates for %lld units below its child "
      "node (%d retries, %.1f s)\n",
      id.c_str(), static_cast<long long>(at_city.count_updates_received()),
      static_cast<long long>(below), retries.load(),
      std::chrono::duration<double>(Clock::now() - started).count());
  EXPECT_GT(at_city.count_updates_received(), 0);
  EXPECT_LT(at_city.count_updates_received(), below);

  // Signing again, and signing at a node that does not host the unit, are refused.
  {
    grpc::ClientContext ctx;
    Prepare(ctx, Worker(grids[0]));
    v1::SignDirectiveRequest req;
    req.set_directive_id(id);
    req.set_unit_id(grids[0]);
    v1::ReceiptView view;
    grpc::Status s = Stub(fed.NodeHosting(grids[0]))->Sign(&ctx, req, &view);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  }
  std::string town_grid;
  for (const auto& g : grids) {
    if (t.IsWithin(g, towns[0])) {
      town_grid = g;
      break;
    }
  }
  {
    // At the city, for a grid hosted two links down: forwarded, and answered
    // by the township node that holds its receipt.
    grpc::ClientContext ctx;
    Prepare(ctx, Worker(town_grid));
    v1::SignDirectiveRequest req;
    req.set_directive_id(id);
    req.set_unit_id(town_grid);
    v1::ReceiptView view;
    grpc::Status s = Stub(fed.node(city))->Sign(&ctx, req, &view);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_NE(s.error_message().find("has already"), std::string::npos) << s.error_message();
  }
  {
    // The grid worker's inbox, asked at the city: read on the township node.
    auto inbox = [&](WhistledProcess& node) {
      grpc::ClientContext ctx;
      Prepare(ctx, Worker(town_grid));
      v1::InboxRequest req;
      v1::InboxResponse out;
      grpc::Status s = Stub(node)->Inbox(&ctx, req, &out);
      EXPECT_TRUE(s.ok()) << s.error_message();
      return out;
    };
    v1::InboxResponse at_city = inbox(fed.node(city));
    v1::InboxResponse at_town = inbox(fed.NodeHosting(town_grid));
    ASSERT_EQ(at_city.items_size(), 1) << at_city.ShortDebugString();
    EXPECT_EQ(at_city.items(0).directive().id(), id);
    EXPECT_EQ(at_city.items(0).receipt().state(), v1::RECEIPT_STATE_DONE);
    EXPECT_EQ(at_city.SerializeAsString(), at_town.SerializeAsString());
  }
  {
    // Signing for another unit is refused at the entry node, before any link.
    grpc::ClientContext ctx;
    Prepare(ctx, Worker(grids[0] == town_grid ? grids[1] : grids[0]));
    v1::SignDirectiveRequest req;
    req.set_directive_id(id);
    req.set_unit_id(town_grid);
    v1::ReceiptView view;
    grpc::Status s = Stub(fed.node(city))->Sign(&ctx, req, &view);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  }

  // Amend travels down as a new version; only the issuing node may amend.
  {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::AmendDirectiveRequest req;
    req.set_directive_id(id);
    req.mutable_amend()->set_deadline_unix_ms(NowMs() + 7200 * 1000);
    v1::Directive out;
    grpc::Status s = Stub(fed.node(county))->Amend(&ctx, req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    grpc::ClientContext ctx2;
    Prepare(ctx2, Leader(city));
    s = Stub(fed.node(city))->Amend(&ctx2, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(out.version(), 2);
  }
  for (const auto& town : towns) {
    const auto by = Clock::now() + std::chrono::seconds(10);
    int64_t version = 0;
    while (Clock::now() < by) {
      grpc::ClientContext ctx;
      Prepare(ctx, Leader(city));
      v1::GetDirectiveRequest req;
      req.set_directive_id(id);
      v1::DirectiveView d;
      if (Stub(fed.node(town))->Get(&ctx, req, &d).ok()) version = d.directive().version();
      if (version == 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(version, 2) << town;
  }

  // A directive that reaches one township node only: the city lists its
  // pending units to the end, never asking a node it was not sent to.
  v1::IssueDirectiveResponse narrow;
  {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::IssueDirectiveRequest req;
    auto* d = req.mutable_draft();
    d->set_title("一个乡镇的社区");
    d->set_text("只发给一个乡镇");
    d->set_deadline_unix_ms(NowMs() + 3600 * 1000);
    d->mutable_targets()->mutable_level()->set_subtree_id(towns[0]);
    d->mutable_targets()->mutable_level()->set_level(v1::LEVEL_COMMUNITY);
    grpc::Status s = Stub(fed.node(city))->Issue(&ctx, req, &narrow);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  int64_t communities = 0;
  for (const auto* j : t.Children(towns[0])) communities += j->level() == v1::LEVEL_COMMUNITY;
  ASSERT_GT(communities, 0);
  size_t listed = 0;
  grpc::Status last;
  for (auto by = Clock::now() + std::chrono::seconds(20); Clock::now() < by;) {
    // Until the township node holds it the city answers UNAVAILABLE, never NOT_FOUND.
    listed =
        TryTargets(fed.node(city), narrow.directive().id(), city, v1::RECEIPT_STATE_PENDING, &last)
            .size();
    if (!last.ok())
      EXPECT_EQ(last.error_code(), grpc::StatusCode::UNAVAILABLE) << last.error_message();
    if (last.ok() && static_cast<int64_t>(listed) == communities) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(last.ok()) << last.error_message();
  EXPECT_EQ(static_cast<int64_t>(listed), communities);

  // A directive the county issues on its own node: its leader lists it at the
  // city's node too (read on the county's node, over the link).
  v1::IssueDirectiveResponse local;
  {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(county));
    v1::IssueDirectiveRequest req;
    auto* d = req.mutable_draft();
    d->set_title("县里的通知");
    d->set_text("县级自行下发");
    d->set_deadline_unix_ms(NowMs() + 3600 * 1000);
    d->mutable_targets()->mutable_level()->set_subtree_id(county);
    d->mutable_targets()->mutable_level()->set_level(v1::LEVEL_TOWNSHIP);
    grpc::Status s = Stub(fed.node(county))->Issue(&ctx, req, &local);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  for (const char* at : {"county", "city"}) {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(county));
    v1::ListDirectivesRequest req;
    req.set_jurisdiction_id(county);
    v1::ListDirectivesResponse list;
    grpc::Status s =
        Stub(fed.node(std::string(at) == "city" ? city : county))->List(&ctx, req, &list);
    ASSERT_TRUE(s.ok()) << at << ": " << s.error_message();
    bool found = false;
    for (const auto& d : list.directives())
      found = found || d.directive().id() == local.directive().id();
    EXPECT_TRUE(found) << at;
  }
}

// Issues at node `p` as `who`, to every unit at `level` under `subtree`; the id ("" on failure).
std::string IssueAt(WhistledProcess& p, const Identity& who, const std::string& subtree,
                    v1::Level level, const std::string& title) {
  grpc::ClientContext ctx;
  Prepare(ctx, who);
  v1::IssueDirectiveRequest req;
  auto* d = req.mutable_draft();
  d->set_title(title);
  d->set_deadline_unix_ms(NowMs() + 3600 * 1000);
  d->mutable_targets()->mutable_level()->set_subtree_id(subtree);
  d->mutable_targets()->mutable_level()->set_level(level);
  v1::IssueDirectiveResponse out;
  grpc::Status s = Stub(p)->Issue(&ctx, req, &out);
  EXPECT_TRUE(s.ok()) << title << ": " << s.error_message();
  return out.directive().id();
}

// List(`at`) at node `p` as `who`, `page_size` at a time from `*token` to the last page
// (each page at most `page_size`): the items in order. Stops at the first refused page;
// *status is its status and *token the token to retry it with.
std::vector<v1::DirectiveView> ListPages(WhistledProcess& p, const Identity& who,
                                         const std::string& at, int page_size, std::string* token,
                                         grpc::Status* status) {
  std::vector<v1::DirectiveView> out;
  for (int pages = 0; pages < 100; ++pages) {
    grpc::ClientContext ctx;
    Prepare(ctx, who);
    v1::ListDirectivesRequest req;
    req.set_jurisdiction_id(at);
    req.set_page_size(page_size);
    req.set_page_token(*token);
    v1::ListDirectivesResponse page;
    *status = Stub(p)->List(&ctx, req, &page);
    if (!status->ok()) return out;
    EXPECT_LE(page.directives_size(), page_size) << at;
    for (const auto& d : page.directives()) out.push_back(d);
    *token = page.next_page_token();
    if (token->empty()) return out;
  }
  ADD_FAILURE() << "List(" << at << ") did not end in 100 pages";
  return out;
}

// Directive id -> how often List(`at`) at `p` listed it, all pages (size `page_size`).
std::map<std::string, int> ListedIds(WhistledProcess& p, const Identity& who, const std::string& at,
                                     int page_size) {
  std::string token;
  grpc::Status s;
  std::map<std::string, int> out;
  for (const auto& d : ListPages(p, who, at, page_size, &token, &s)) ++out[d.directive().id()];
  EXPECT_TRUE(s.ok()) << at << ": " << s.error_message();
  return out;
}

// List of a jurisdiction whose subtree spans several nodes: this node's own
// directives, then each child node's (read there, over the link), every
// directive once however many nodes index it; paged to the end one at a time.
TEST(DirectiveFederationTest, ListSpansChildNodesEachDirectiveOnce) {
  const auto& t = Shizuishan();
  const std::string city = t.root().id();
  const std::string county = "pl";
  const std::string town = FirstTownshipOf(county);
  ASSERT_FALSE(town.empty());
  LocalFederation fed(LocalFederation::ThreeLevel(town));  // city -> county -> township
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_EQ(fed.NodeFor(town), town);

  // Each leader at the node hosting their jurisdiction; the city's and the
  // cross-node ones also reach (and are indexed on) the county and township nodes.
  std::map<std::string, std::string> ids;  // what -> directive id
  ids["city at city"] =
      IssueAt(fed.node(city), Leader(city), county, v1::LEVEL_TOWNSHIP, "市里发到县的乡镇");
  ids["county at county"] =
      IssueAt(fed.node(county), Leader(county), county, v1::LEVEL_TOWNSHIP, "县里自行下发");
  ids["town at town"] =
      IssueAt(fed.node(town), Leader(town), town, v1::LEVEL_COMMUNITY, "乡镇自行下发");
  // A county leader issuing at the city's node, and the city's leader at the
  // county's node: held on both sides of a link, or on the child side only.
  ids["county at city"] =
      IssueAt(fed.node(city), Leader(county), county, v1::LEVEL_TOWNSHIP, "县领导在市节点下发");
  ids["city at county"] =
      IssueAt(fed.node(county), Leader(city), county, v1::LEVEL_TOWNSHIP, "市领导在县节点下发");
  for (const auto& [what, id] : ids) ASSERT_FALSE(id.empty()) << what;

  // Every one targets the township: wait until its node lists all five (then
  // most are indexed on two or three nodes at once).
  for (auto by = Clock::now() + std::chrono::seconds(20);;) {
    auto at_town = ListedIds(fed.node(town), Leader(town), town, 50);
    size_t seen = 0;
    for (const auto& [what, id] : ids) seen += at_town.count(id);
    if (seen == ids.size()) break;
    ASSERT_LT(Clock::now(), by) << "the township node lists " << seen << " of " << ids.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // One numbered on a child node is counted there only: its row at the city
  // is the child's, every target once the township's counts reach the county.
  for (auto by = Clock::now() + std::chrono::seconds(20);;) {
    std::string token;
    grpc::Status s;
    std::string short_row;
    for (const auto& d : ListPages(fed.node(city), Leader(city), city, 50, &token, &s)) {
      if (d.directive().id().rfind("szs-d-", 0) == 0) continue;  // the city's own counts
      const auto& level = d.directive().draft().targets().level();
      int64_t units = 0;
      for (const auto* j : t.Subtree(level.subtree_id())) units += j->level() == level.level();
      if (d.progress().counts().total() != units) short_row = d.ShortDebugString();
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    if (short_row.empty()) break;
    ASSERT_LT(Clock::now(), by) << short_row;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // At the city's node, the city's List, one per page and 50 per page:
  // every directive exactly once, each with the city's progress row.
  for (int page_size : {1, 50}) {
    std::string token;
    grpc::Status s;
    auto items = ListPages(fed.node(city), Leader(city), city, page_size, &token, &s);
    ASSERT_TRUE(s.ok()) << s.error_message();
    std::map<std::string, int> listed;
    for (const auto& d : items) {
      ++listed[d.directive().id()];
      EXPECT_EQ(d.progress().jurisdiction_id(), city) << d.directive().id();
    }
    for (const auto& [what, id] : ids) EXPECT_EQ(listed[id], 1) << what << " " << id;
    EXPECT_EQ(listed.size(), ids.size()) << "page_size " << page_size;
  }
  {
    // The default page holds them all: filled across the nodes, no token left.
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::ListDirectivesRequest req;
    v1::ListDirectivesResponse page;
    grpc::Status s = Stub(fed.node(city))->List(&ctx, req, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(page.directives_size(), static_cast<int>(ids.size())) << page.ShortDebugString();
    EXPECT_EQ(page.next_page_token(), "");
  }
  // The county's List at the city's node (read on the county's node, which
  // spans the township's node the same way): all five, once each.
  {
    auto listed = ListedIds(fed.node(city), Leader(county), county, 1);
    for (const auto& [what, id] : ids) EXPECT_EQ(listed[id], 1) << what << " " << id;
    EXPECT_EQ(listed.size(), ids.size());
  }
  // The township's List at the city's node: two links down, its own node's answer.
  {
    auto listed = ListedIds(fed.node(city), Leader(town), town, 1);
    EXPECT_EQ(listed, ListedIds(fed.node(town), Leader(town), town, 50));
    EXPECT_EQ(listed.size(), ids.size());
  }

  // Page tokens this server did not issue are refused, naming the field; the
  // next List is as before.
  for (const char* bad : {"9|", "x|abc", "|", "123456|", "1|9|", "0"}) {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::ListDirectivesRequest req;
    req.set_jurisdiction_id(city);
    req.set_page_token(bad);
    v1::ListDirectivesResponse page;
    grpc::Status s = Stub(fed.node(city))->List(&ctx, req, &page);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.error_message().find("page_token"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(ListedIds(fed.node(city), Leader(city), city, 50).size(), ids.size());

  // The township's node down: the pages it does not hold are still answered,
  // the one that needs it is UNAVAILABLE; with the node back, the same token
  // goes on to the end, every directive once.
  ASSERT_EQ(fed.Kill(town), -SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::string token;
  grpc::Status s;
  auto before = ListPages(fed.node(city), Leader(city), city, 1, &token, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(before.size(), ids.size() - 1);  // all but the township's own
  {
    // A page of 50: what the city and county nodes hold, then the token of
    // the township's part, which is UNAVAILABLE while its node is down.
    std::string from;
    grpc::Status first;
    auto reachable = ListPages(fed.node(city), Leader(city), city, 50, &from, &first);
    EXPECT_EQ(first.error_code(), grpc::StatusCode::UNAVAILABLE) << first.error_message();
    EXPECT_EQ(reachable.size(), ids.size() - 1);
    EXPECT_FALSE(from.empty());
  }
  ASSERT_TRUE(fed.Restart(town)) << fed.Describe();
  std::vector<v1::DirectiveView> after;
  for (auto by = Clock::now() + std::chrono::seconds(20);;) {
    after = ListPages(fed.node(city), Leader(city), city, 1, &token, &s);
    if (s.ok()) break;
    ASSERT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    ASSERT_LT(Clock::now(), by) << s.error_message() << "\n" << fed.Describe();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::map<std::string, int> listed;
  for (const auto& d : before) ++listed[d.directive().id()];
  for (const auto& d : after) ++listed[d.directive().id()];
  for (const auto& [what, id] : ids) EXPECT_EQ(listed[id], 1) << what << " " << id;
  EXPECT_EQ(listed.size(), ids.size());
}

grpc::Status GetAs(WhistledProcess& p, const Identity& who, const std::string& id,
                   v1::DirectiveView* out) {
  grpc::ClientContext ctx;
  Prepare(ctx, who);
  v1::GetDirectiveRequest req;
  req.set_directive_id(id);
  return Stub(p)->Get(&ctx, req, out);
}

int64_t UnitsAt(const std::string& subtree, v1::Level level) {
  int64_t n = 0;
  for (const auto* j : Shizuishan().Subtree(subtree)) n += j->level() == level;
  return n;
}

// Any node answers Get, Progress and ListTargets of any directive its
// caller may see: one numbered on a node below (not held above it) is
// read there, and a subtree hosted on another node is counted where it is.
TEST(DirectiveFederationTest, ReadsAtAnyNodeFindTheNodeThatHoldsTheCounts) {
  const auto& t = Shizuishan();
  const std::string city = t.root().id();
  const std::string county = "pl";
  const std::string town = FirstTownshipOf(county);
  ASSERT_FALSE(town.empty());
  LocalFederation fed(LocalFederation::ThreeLevel(town));  // city -> county -> township
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  const std::string by_county =
      IssueAt(fed.node(county), Leader(county), county, v1::LEVEL_TOWNSHIP, "县里自行下发");
  const std::string by_town =
      IssueAt(fed.node(town), Leader(town), town, v1::LEVEL_COMMUNITY, "乡镇自行下发");
  const std::string by_city =
      IssueAt(fed.node(city), Leader(city), county, v1::LEVEL_TOWNSHIP, "市里发到县的乡镇");
  const int64_t townships = UnitsAt(county, v1::LEVEL_TOWNSHIP);
  const int64_t communities = UnitsAt(town, v1::LEVEL_COMMUNITY);
  ASSERT_GT(townships, 1);
  ASSERT_GT(communities, 0);

  // Until every node has expanded its part and the counts came up.
  auto total_at = [&](WhistledProcess& p, const Identity& who, const std::string& id,
                      const std::string& at, grpc::Status* s) {
    v1::GetProgressResponse out;
    *s = ProgressAs(p, who, id, at, &out);
    return out.total().counts().total();
  };
  for (auto by = Clock::now() + std::chrono::seconds(20);;) {
    grpc::Status a, b, c;
    const bool ready = total_at(fed.node(city), Leader(city), by_county, city, &a) == townships &&
                       total_at(fed.node(city), Leader(city), by_town, city, &b) == communities &&
                       total_at(fed.node(city), Leader(city), by_city, town, &c) == 1;
    if (ready) break;
    ASSERT_LT(Clock::now(), by) << a.error_message() << " | " << b.error_message() << " | "
                                << c.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // A county's directive at the city's node: Get, Progress of the city (one
  // row, the county's), of the county, and its targets listed to the end.
  v1::DirectiveView view;
  grpc::Status s = GetAs(fed.node(city), Leader(city), by_county, &view);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(view.directive().draft().title(), "县里自行下发");
  EXPECT_EQ(view.progress().jurisdiction_id(), county);
  EXPECT_EQ(view.progress().counts().total(), townships);
  v1::GetProgressResponse p;
  s = ProgressAs(fed.node(city), Leader(city), by_county, city, &p);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(p.total().jurisdiction_id(), city);
  ASSERT_EQ(p.children_size(), 1) << p.ShortDebugString();
  EXPECT_EQ(p.children(0).jurisdiction_id(), county);
  EXPECT_EQ(p.children(0).counts().total(), townships);
  ASSERT_TRUE(ProgressAs(fed.node(city), Leader(city), by_county, county, &p).ok());
  EXPECT_EQ(p.total().counts().total(), townships);
  grpc::Status listed;
  EXPECT_EQ(
      static_cast<int64_t>(
          TryTargets(fed.node(city), by_county, city, v1::RECEIPT_STATE_PENDING, &listed).size()),
      townships);
  EXPECT_TRUE(listed.ok()) << listed.error_message();

  // Two levels down: the township's directive, read at the city's node.
  ASSERT_TRUE(GetAs(fed.node(city), Leader(city), by_town, &view).ok());
  EXPECT_EQ(view.directive().draft().title(), "乡镇自行下发");
  EXPECT_EQ(view.progress().counts().total(), communities);
  ASSERT_TRUE(ProgressAs(fed.node(city), Leader(county), by_town, county, &p).ok());
  EXPECT_EQ(p.total().counts().total(), communities);
  ASSERT_EQ(p.children_size(), 1);
  EXPECT_EQ(p.children(0).jurisdiction_id(), town);
  EXPECT_EQ(static_cast<int64_t>(
                TryTargets(fed.node(city), by_town, county, v1::RECEIPT_STATE_UNSPECIFIED, &listed)
                    .size()),
            communities);
  EXPECT_TRUE(listed.ok()) << listed.error_message();

  // The city's directive: the township's row at the city's node is the
  // township node's (not a zero), and the city's row asked at the township's
  // node is the city's (read over two links up).
  ASSERT_TRUE(ProgressAs(fed.node(city), Leader(city), by_city, town, &p).ok());
  EXPECT_EQ(p.total().jurisdiction_id(), town);
  EXPECT_EQ(p.total().counts().total(), 1);
  v1::GetProgressResponse at_city, from_town;
  ASSERT_TRUE(ProgressAs(fed.node(city), Leader(city), by_city, city, &at_city).ok());
  ASSERT_TRUE(ProgressAs(fed.node(town), Leader(city), by_city, city, &from_town).ok());
  EXPECT_EQ(at_city.total().counts().total(), townships);
  EXPECT_EQ(from_town.total().counts().ShortDebugString(),
            at_city.total().counts().ShortDebugString());

  // Refusals: an id no node holds; a leader of another county (the
  // directive is neither issued in nor addressed to it); a department.
  EXPECT_EQ(GetAs(fed.node(city), Leader(city), "pl-d-000000009999", &view).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ProgressAs(fed.node(city), Leader(city), "zz-d-000000000001", city, &p).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GetAs(fed.node(city), Leader("dwk"), by_county, &view).error_code(),
            grpc::StatusCode::NOT_FOUND);
  s = ProgressAs(fed.node(town), Leader("dwk"), by_city, "dwk", &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = ProgressAs(fed.node(city), Leader(town), by_county, city, &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  // Below the issuer: Get shows the issuer's row as counted where it is
  // hosted (not zeros), and a county leader reads the city's directive and
  // its targets at the township's node.
  ASSERT_TRUE(GetAs(fed.node(town), Leader(city), by_city, &view).ok());
  EXPECT_EQ(view.progress().jurisdiction_id(), city);
  EXPECT_EQ(view.progress().counts().total(), townships);
  s = GetAs(fed.node(town), Leader(county), by_city, &view);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(view.progress().jurisdiction_id(), county);
  EXPECT_EQ(view.progress().counts().total(), townships);
  {
    v1::ListTargetsRequest req;
    req.set_directive_id(by_city);
    req.set_page_size(500);
    int64_t listed = 0;
    for (;;) {  // pages end where one node's units end
      grpc::ClientContext page_ctx;
      Prepare(page_ctx, Leader(county));
      v1::ListTargetsResponse page;
      s = Stub(fed.node(town))->ListTargets(&page_ctx, req, &page);
      ASSERT_TRUE(s.ok()) << s.error_message();
      listed += page.receipts_size();
      if (page.next_page_token().empty()) break;
      req.set_page_token(page.next_page_token());
    }
    EXPECT_EQ(listed, townships);
  }

  // A subtree the directive has no target in, hosted on a child node it was
  // never sent to: zeros, not NOT_FOUND.
  const std::string elsewhere =
      IssueAt(fed.node(city), Leader(city), "dwk", v1::LEVEL_TOWNSHIP, "只发大武口区");
  s = ProgressAs(fed.node(city), Leader(city), elsewhere, county, &p);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(p.total().counts().total(), 0);

  // Issued at another node than the issuer's: it goes to the issuer's node
  // (the county's), reaches every target there and below, and a retry at any
  // node returns it; another draft under the same request id is refused.
  const int64_t deadline = NowMs() + 7200000;  // one absolute deadline: the draft is compared
  auto issue = [&](WhistledProcess& at, const std::string& title, v1::IssueDirectiveResponse* out) {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(county));
    v1::IssueDirectiveRequest req;
    req.set_request_id("county-1");
    auto* d = req.mutable_draft();
    d->set_title(title);
    d->set_deadline_unix_ms(deadline);
    d->mutable_targets()->mutable_level()->set_subtree_id(county);
    d->mutable_targets()->mutable_level()->set_level(v1::LEVEL_TOWNSHIP);
    return Stub(at)->Issue(&ctx, req, out);
  };
  v1::IssueDirectiveResponse first, again, other;
  s = issue(fed.node(town), "在乡镇节点下发", &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(first.targets(), townships);
  for (auto by = Clock::now() + std::chrono::seconds(20);;) {
    grpc::Status st;
    if (total_at(fed.node(city), Leader(city), first.directive().id(), city, &st) == townships) {
      break;
    }
    ASSERT_LT(Clock::now(), by) << st.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  s = issue(fed.node(city), "在乡镇节点下发", &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.directive().id(), first.directive().id());
  s = issue(fed.node(county), "另一份", &other);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_NE(s.error_message().find(first.directive().id()), std::string::npos);
}

// What a watch of `at` on node `p` (as `who`, from the start of the log)
// shows of directive `id`: the versions of its issue/amend/cancel changes and
// the signed count of row `at`, read until `done` says so or 10 s pass.
struct Watched {
  std::vector<int64_t> versions;
  int64_t signed_ = 0;
};
Watched WatchDirective(WhistledProcess& p, const Identity& who, const std::string& at,
                       const std::string& id, const std::function<bool(const Watched&)>& done,
                       int seconds = 10) {
  auto stub = v1::WatchService::NewStub(p.channel());
  grpc::ClientContext ctx;
  who.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  v1::WatchRequest req;
  req.set_jurisdiction_id(at);
  req.set_from_token("0");
  auto stream = stub->Watch(&ctx, req);
  Watched out;
  v1::Change change;
  while (!done(out) && stream->Read(&change)) {
    const auto& dc = change.directive_change();
    if (dc.directive_id() != id) continue;
    if (dc.version() > 0) out.versions.push_back(dc.version());
    if (dc.jurisdiction_id() == at) out.signed_ += dc.delta().signed_();
  }
  ctx.TryCancel();
  stream->Finish();
  return out;
}

// A directive issued on a node below comes up for the watches above it: the
// township's directive, its amend and its signatures show on the county's and
// the city's watches (their rows move), and List still shows it once.
TEST(DirectiveFederationTest, WatchesAboveTheIssuerSeeItsChanges) {
  const auto& t = Shizuishan();
  const std::string city = t.root().id();
  const std::string county = "pl";
  const std::string town = FirstTownshipOf(county);
  ASSERT_FALSE(town.empty());
  LocalFederation fed(LocalFederation::ThreeLevel(town));  // city -> county -> township
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  const std::string id =
      IssueAt(fed.node(town), Leader(town), town, v1::LEVEL_GRID, "乡镇自行下发");
  ASSERT_FALSE(id.empty());
  std::vector<std::string> grids;
  for (const auto* j : t.Subtree(town)) {
    if (j->level() == v1::LEVEL_GRID) grids.push_back(j->id());
  }
  ASSERT_FALSE(grids.empty());
  std::atomic<int> retries{0};
  for (const auto& g : grids) ASSERT_TRUE(Answer(fed, id, g, Step::kSign, &retries));
  {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(town));
    v1::AmendDirectiveRequest req;
    req.set_directive_id(id);
    req.mutable_amend()->set_deadline_unix_ms(NowMs() + 7200 * 1000);
    v1::Directive out;
    grpc::Status s = Stub(fed.node(town))->Amend(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const auto n = static_cast<int64_t>(grids.size());
  const std::vector<int64_t> both = {1, 2};
  for (const std::string& at : {county, city}) {
    Watched w = WatchDirective(fed.node(at), Leader(at), at, id, [&](const Watched& w) {
      return w.versions.size() >= 2 && w.signed_ >= n;
    });
    EXPECT_EQ(w.versions, both) << "watch of " << at;
    EXPECT_EQ(w.signed_, n) << "watch of " << at;
  }
  // Another county's watch at the city does not see it.
  Watched other = WatchDirective(
      fed.node(city), Leader("dwk"), "dwk", id,
      [](const Watched& w) { return !w.versions.empty(); }, 2);
  EXPECT_TRUE(other.versions.empty());
  // Still listed once at every level, and read where it is held.
  for (const std::string& at : {city, county, town}) {
    EXPECT_EQ(ListedIds(fed.node(city), Leader(city), at, 50)[id], 1) << at;
  }
  v1::GetProgressResponse p;
  grpc::Status s = ProgressAs(fed.node(city), Leader(city), id, city, &p);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(p.total().counts().signed_(), n);
  // Amended only where it was issued: the nodes above say where.
  for (const std::string& at : {city, county}) {
    grpc::ClientContext ctx;
    Prepare(ctx, Leader(city));
    v1::AmendDirectiveRequest req;
    req.set_directive_id(id);
    req.mutable_amend()->set_text("改");
    v1::Directive out;
    s = Stub(fed.node(at))->Amend(&ctx, req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << at << ": " << s.error_message();
    EXPECT_NE(s.error_message().find("amend and cancel it there"), std::string::npos)
        << s.error_message();
  }
  // A leader of another county is refused as at the issuing node, not pointed there.
  grpc::ClientContext ctx;
  Prepare(ctx, Leader("dwk"));
  v1::AmendDirectiveRequest req;
  req.set_directive_id(id);
  req.mutable_amend()->set_text("改");
  v1::Directive out;
  s = Stub(fed.node(city))->Amend(&ctx, req, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

}  // namespace
}  // namespace whistle::testing
