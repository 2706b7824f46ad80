// Directives end to end in one process: a real whistled, the embedded
// Shizuishan topology, a city leader issuing to all 1,903 grids and grid
// workers answering from a few threads. Counts are compared with a count
// made by hand from the topology at every level, across a SIGKILL.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/topology.h"
#include "tests/e2e/whistled_process.h"
#include "whistle/v1/directive_service.grpc.pb.h"

namespace whistle::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kThreads = 4;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

double Since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

const core::Topology& Shizuishan() {
  static const auto topology = *core::Topology::Build(core::ShizuishanTopology());
  return *topology;
}

std::vector<std::string> AllGrids() {
  std::vector<std::string> grids;
  for (const auto& j : Shizuishan().config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID) grids.push_back(j.id());
  }
  return grids;
}

Identity Leader(const std::string& jurisdiction) {
  return {"leader." + jurisdiction, "leader", jurisdiction, ""};
}
Identity Worker(const std::string& grid) { return {"gw." + grid, "grid_worker", grid, ""}; }

class Client {
 public:
  explicit Client(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::DirectiveService::NewStub(std::move(channel))) {}

  grpc::Status Issue(const Identity& who, const v1::DirectiveDraft& draft,
                     v1::IssueDirectiveResponse* out, const std::string& request_id = "") {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::IssueDirectiveRequest req;
    *req.mutable_draft() = draft;
    req.set_request_id(request_id);
    return stub_->Issue(&ctx, req, out);
  }
  grpc::Status Sign(const Identity& who, const std::string& id, const std::string& unit,
                    v1::ReceiptView* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::SignDirectiveRequest req;
    req.set_directive_id(id);
    req.set_unit_id(unit);
    req.mutable_sign()->set_note("收到");
    return stub_->Sign(&ctx, req, out);
  }
  grpc::Status Complete(const Identity& who, const std::string& id, v1::ReceiptView* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::CompleteDirectiveRequest req;
    req.set_directive_id(id);
    req.mutable_complete()->set_note("已排查");
    req.mutable_complete()->add_attachments()->set_uri("s3://photos/check.jpg");
    return stub_->Complete(&ctx, req, out);
  }
  grpc::Status Progress(const Identity& who, const std::string& id, const std::string& at,
                        v1::GetProgressResponse* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::GetProgressRequest req;
    req.set_directive_id(id);
    req.set_jurisdiction_id(at);
    return stub_->Progress(&ctx, req, out);
  }
  grpc::Status Inbox(const Identity& who, v1::InboxResponse* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    return stub_->Inbox(&ctx, v1::InboxRequest(), out);
  }
  grpc::Status InboxPage(const Identity& who, const std::string& token, v1::InboxResponse* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::InboxRequest req;
    req.set_page_token(token);
    return stub_->Inbox(&ctx, req, out);
  }
  grpc::Status Amend(const Identity& who, const std::string& id, const v1::AmendDirective& amend,
                     v1::Directive* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::AmendDirectiveRequest req;
    req.set_directive_id(id);
    *req.mutable_amend() = amend;
    return stub_->Amend(&ctx, req, out);
  }
  grpc::Status Cancel(const Identity& who, const std::string& id, const std::string& reason,
                      v1::Directive* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::CancelDirectiveRequest req;
    req.set_directive_id(id);
    req.mutable_cancel()->set_reason(reason);
    return stub_->Cancel(&ctx, req, out);
  }
  grpc::Status List(const Identity& who, const std::string& at, v1::ListDirectivesResponse* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::ListDirectivesRequest req;
    req.set_jurisdiction_id(at);
    return stub_->List(&ctx, req, out);
  }
  // Every receipt in `state` under `at`, all pages.
  grpc::Status Targets(const Identity& who, const std::string& id, const std::string& at,
                       v1::ReceiptState state, std::vector<v1::Receipt>* out) {
    v1::ListTargetsRequest req;
    req.set_directive_id(id);
    req.set_jurisdiction_id(at);
    req.set_state(state);
    req.set_page_size(500);
    for (;;) {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::ListTargetsResponse page;
      grpc::Status s = stub_->ListTargets(&ctx, req, &page);
      if (!s.ok()) return s;
      for (const auto& r : page.receipts()) out->push_back(r);
      if (page.next_page_token().empty()) return s;
      req.set_page_token(page.next_page_token());
    }
  }

 private:
  std::unique_ptr<v1::DirectiveService::Stub> stub_;
};

v1::DirectiveDraft AllGridsDraft(const std::string& title) {
  v1::DirectiveDraft d;
  d.set_title(title);
  d.set_text("排查辖区内所有出租房屋的消防隐患");
  d.set_deadline_unix_ms(NowMs() + 3600 * 1000);
  d.mutable_targets()->mutable_level()->set_subtree_id(Shizuishan().root().id());
  d.mutable_targets()->mutable_level()->set_level(v1::LEVEL_GRID);
  return d;
}

// Runs fn(grid) for every grid on kThreads threads.
void ForAllGrids(const std::vector<std::string>& grids,
                 const std::function<void(const std::string&)>& fn) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < grids.size(); i += kThreads) fn(grids[i]);
    });
  }
  for (auto& th : threads) th.join();
}

// Hand count: grids of `done`/`signed` inside `at`.
int64_t CountWithin(const std::set<std::string>& grids, const std::string& at) {
  int64_t n = 0;
  for (const auto& g : grids) n += Shizuishan().IsWithin(g, at) ? 1 : 0;
  return n;
}

// Progress of `at` and each child equals the hand count.
void ExpectCounts(Client& client, const std::string& id, const std::string& at,
                  const std::set<std::string>& signed_, const std::set<std::string>& done) {
  v1::GetProgressResponse p;
  auto s = client.Progress(Leader(Shizuishan().root().id()), id, at, &p);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(p.total().counts().total(), Shizuishan().GridsBelow(at)) << at;
  EXPECT_EQ(p.total().counts().signed_(), CountWithin(signed_, at)) << at;
  EXPECT_EQ(p.total().counts().done(), CountWithin(done, at)) << at;
  EXPECT_EQ(p.total().overdue(), 0) << at;
  int64_t sum_total = 0, sum_signed = 0, sum_done = 0;
  for (const auto& row : p.children()) {
    EXPECT_EQ(row.counts().total(), Shizuishan().GridsBelow(row.jurisdiction_id()))
        << row.jurisdiction_id();
    EXPECT_EQ(row.counts().signed_(), CountWithin(signed_, row.jurisdiction_id()))
        << row.jurisdiction_id();
    EXPECT_EQ(row.counts().done(), CountWithin(done, row.jurisdiction_id()))
        << row.jurisdiction_id();
    sum_total += row.counts().total();
    sum_signed += row.counts().signed_();
    sum_done += row.counts().done();
  }
  if (Shizuishan().Find(at)->level() != v1::LEVEL_GRID) {
    EXPECT_EQ(sum_total, p.total().counts().total()) << at << ": children add up";
    EXPECT_EQ(sum_signed, p.total().counts().signed_()) << at;
    EXPECT_EQ(sum_done, p.total().counts().done()) << at;
  }
}

void ExpectCountsEverywhere(Client& client, const std::string& id,
                            const std::set<std::string>& signed_,
                            const std::set<std::string>& done) {
  const auto& topology = Shizuishan();
  ExpectCounts(client, id, topology.root().id(), signed_, done);
  for (const auto* county : topology.Children(topology.root().id())) {
    ExpectCounts(client, id, county->id(), signed_, done);
  }
  // A township and a community with several grids.
  const auto* township = topology.Children(topology.Children(topology.root().id())[2]->id())[0];
  ExpectCounts(client, id, township->id(), signed_, done);
  ExpectCounts(client, id, topology.Children(township->id())[0]->id(), signed_, done);
}

class DirectiveTest : public ::testing::Test {
 protected:
  TempDir dir;
};

TEST_F(DirectiveTest, CityToAllGridsSignCompleteAmendCancelAcrossKill) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.LogTail();
  Client client(node.channel());
  const std::string city = Shizuishan().root().id();
  const std::vector<std::string> grids = AllGrids();
  ASSERT_EQ(grids.size(), 1903u);

  // Issue to every grid of the city.
  auto t0 = Clock::now();
  v1::IssueDirectiveResponse issued;
  auto s = client.Issue(Leader(city), AllGridsDraft("出租房屋消防隐患排查"), &issued);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const double issue_ms = Since(t0);
  const std::string id = issued.directive().id();
  EXPECT_EQ(issued.targets(), 1903);
  EXPECT_EQ(issued.directive().version(), 1);
  ExpectCountsEverywhere(client, id, {}, {});

  // Every grid signs (4 threads); the city sees all signed.
  std::atomic<int> failures{0};
  t0 = Clock::now();
  ForAllGrids(grids, [&](const std::string& g) {
    v1::ReceiptView view;
    auto st = client.Sign(Worker(g), id, "", &view);
    if (!st.ok() || view.receipt().state() != v1::RECEIPT_STATE_SIGNED) {
      if (failures++ < 3) ADD_FAILURE() << g << ": " << st.error_message();
    }
  });
  v1::GetProgressResponse progress;
  ASSERT_TRUE(client.Progress(Leader(city), id, city, &progress).ok());
  const double sign_ms = Since(t0);
  EXPECT_EQ(progress.total().counts().signed_(), 1903);
  const std::set<std::string> all(grids.begin(), grids.end());
  ExpectCountsEverywhere(client, id, all, {});

  // Two of three grids complete while the node is SIGKILLed and restarted
  // under them; answers lost to the kill are retried, and a retry refused
  // as "already reported done" means the first attempt was durable.
  std::vector<std::string> completing;
  for (size_t i = 0; i < grids.size(); ++i) {
    if (i % 3 != 0) completing.push_back(grids[i]);
  }
  std::atomic<int> completed{0};
  std::atomic<bool> killed{false};
  std::thread killer([&] {
    while (completed.load() < static_cast<int>(completing.size()) / 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    node.Kill();
    killed = true;
    EXPECT_TRUE(node.Restart()) << node.LogTail();
  });
  t0 = Clock::now();
  ForAllGrids(completing, [&](const std::string& g) {
    for (int attempt = 0; attempt < 400; ++attempt) {
      v1::ReceiptView view;
      auto st = client.Complete(Worker(g), id, &view);
      if (st.ok() || st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        if (!st.ok() && st.error_message().find("already reported done") == std::string::npos) {
          ADD_FAILURE() << g << ": " << st.error_message();
        }
        ++completed;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << g << ": never completed";
  });
  killer.join();
  const double complete_ms = Since(t0);
  EXPECT_TRUE(killed.load());
  const std::set<std::string> done(completing.begin(), completing.end());
  ExpectCountsEverywhere(client, id, all, done);
  // The receipts agree with the counters.
  std::vector<v1::Receipt> done_receipts, pending_receipts;
  ASSERT_TRUE(client.Targets(Leader(city), id, city, v1::RECEIPT_STATE_DONE, &done_receipts).ok());
  ASSERT_TRUE(
      client.Targets(Leader(city), id, city, v1::RECEIPT_STATE_PENDING, &pending_receipts).ok());
  EXPECT_EQ(done_receipts.size(), done.size());
  EXPECT_TRUE(pending_receipts.empty());
  for (const auto& r : done_receipts) {
    EXPECT_TRUE(done.count(r.unit_id())) << r.unit_id();
    EXPECT_EQ(r.done_by(), "gw." + r.unit_id());
    EXPECT_FALSE(r.done_late());
  }

  // Amend: every grid's inbox shows version 2 and the new deadline, once.
  v1::AmendDirective amend;
  const int64_t new_deadline = NowMs() + 7200 * 1000;
  amend.set_deadline_unix_ms(new_deadline);
  amend.set_text("延长一小时");
  v1::Directive amended;
  s = client.Amend(Leader(city), id, amend, &amended);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(amended.version(), 2);
  auto check_inboxes = [&](int64_t version, v1::DirectiveState state) {
    std::atomic<int> bad{0};
    ForAllGrids(grids, [&](const std::string& g) {
      v1::InboxResponse inbox;
      auto st = client.Inbox(Worker(g), &inbox);
      int seen = 0;
      for (const auto& item : inbox.items()) {
        if (item.directive().id() != id) continue;
        ++seen;
        if (item.directive().version() != version || item.directive().state() != state ||
            item.directive().draft().deadline_unix_ms() != new_deadline ||
            item.receipt().unit_id() != g) {
          ++bad;
        }
      }
      if (!st.ok() || seen != 1) ++bad;
    });
    EXPECT_EQ(bad.load(), 0) << "inboxes not at version " << version;
  };
  check_inboxes(2, v1::DIRECTIVE_STATE_ACTIVE);

  // Cancel: version 3 everywhere; nobody can answer any more; nothing overdue.
  v1::Directive cancelled;
  s = client.Cancel(Leader(city), id, "任务调整", &cancelled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cancelled.version(), 3);
  EXPECT_EQ(cancelled.state(), v1::DIRECTIVE_STATE_CANCELLED);
  check_inboxes(3, v1::DIRECTIVE_STATE_CANCELLED);
  v1::ReceiptView view;
  s = client.Complete(Worker(grids[0]), id, &view);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  ExpectCountsEverywhere(client, id, all, done);

  std::printf(
      "directive figures: issue to 1903 grids %.1f ms; 1903 signs (%d threads) until "
      "the city sees all signed %.1f ms; %zu completes across a SIGKILL %.1f ms\n",
      issue_ms, kThreads, sign_ms, completing.size(), complete_ms);
}

TEST_F(DirectiveTest, RefusalsChangeNothing) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.LogTail();
  Client client(node.channel());
  const auto& topology = Shizuishan();
  const std::string city = topology.root().id();
  const auto counties = topology.Children(city);
  const std::string dwk = counties[0]->id(), hn = counties[1]->id();

  // A county leader issues to its own grids: the reference directive.
  v1::DirectiveDraft draft = AllGridsDraft("燃气安全检查");
  draft.mutable_targets()->mutable_level()->set_subtree_id(dwk);
  v1::IssueDirectiveResponse first;
  auto s = client.Issue(Leader(dwk), draft, &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(first.targets(), topology.GridsBelow(dwk));

  // Target outside the issuer's subtree.
  v1::DirectiveDraft outside = draft;
  outside.mutable_targets()->mutable_level()->set_subtree_id(hn);
  v1::IssueDirectiveResponse out;
  s = client.Issue(Leader(dwk), outside, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("draft.targets.level.subtree_id"), std::string::npos)
      << s.error_message();
  // A department that does not exist.
  v1::DirectiveDraft unknown = draft;
  unknown.mutable_targets()->mutable_departments()->add_ids(dwk + "-no-such-bureau");
  s = client.Issue(Leader(dwk), unknown, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("draft.targets.departments.ids[0]"), std::string::npos)
      << s.error_message();
  // Staff (not a leader) issuing.
  s = client.Issue({"clerk", "staff", dwk, ""}, draft, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  // A deadline in the past.
  v1::DirectiveDraft past = draft;
  past.set_deadline_unix_ms(NowMs() - 1000);
  s = client.Issue(Leader(dwk), past, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("draft.deadline_unix_ms"), std::string::npos);
  // Amend by a leader below the issuing level.
  const std::string township = topology.Children(dwk)[0]->id();
  v1::AmendDirective amend;
  amend.set_text("x");
  v1::Directive d;
  s = client.Amend(Leader(township), first.directive().id(), amend, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  // Signing for another unit, twice, and from outside the targets.
  std::vector<std::string> mine;
  std::string outsider;
  for (const auto& g : AllGrids()) {
    if (topology.IsWithin(g, dwk)) {
      mine.push_back(g);
    } else if (outsider.empty()) {
      outsider = g;
    }
  }
  const std::string g1 = mine.at(0), g2 = mine.at(1);
  const std::string& id = first.directive().id();
  v1::ReceiptView view;
  s = client.Sign(Worker(g1), id, g2, &view);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("unit_id"), std::string::npos) << s.error_message();
  ASSERT_TRUE(client.Sign(Worker(g1), id, "", &view).ok());
  s = client.Sign(Worker(g1), id, "", &view);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("already signed"), std::string::npos) << s.error_message();
  s = client.Sign(Worker(outsider), id, "", &view);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_NE(s.error_message().find("is not a target"), std::string::npos) << s.error_message();
  s = client.Sign(Worker(g1), "szs-d-999999999999", "", &view);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("directive_id"), std::string::npos);
  // Inbox page tokens not of the node's making, whatever their shape.
  for (const std::string& bad :
       std::vector<std::string>{"abc", "9/x", "-1/a", "/", "0/" + id, "1/", "4/" + id}) {
    v1::InboxResponse inbox;
    s = client.InboxPage(Worker(g1), bad, &inbox);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.error_message().find("page_token: not a token this server issued"),
              std::string::npos)
        << bad << ": " << s.error_message();
    EXPECT_EQ(inbox.items_size(), 0) << bad;
  }
  // A deadline more than 5 years ahead, at issue and at amend.
  for (int64_t far :
       {NowMs() + int64_t{1827} * 24 * 3600 * 1000, std::numeric_limits<int64_t>::max()}) {
    v1::DirectiveDraft later = draft;
    later.set_deadline_unix_ms(far);
    s = client.Issue(Leader(dwk), later, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << far;
    EXPECT_NE(s.error_message().find("draft.deadline_unix_ms: at most 5 years"), std::string::npos)
        << s.error_message();
    v1::AmendDirective postpone;
    postpone.set_deadline_unix_ms(far);
    s = client.Amend(Leader(dwk), id, postpone, &d);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << far;
    EXPECT_NE(s.error_message().find("amend.deadline_unix_ms: at most 5 years"), std::string::npos)
        << s.error_message();
  }
  // Progress outside the caller's subtree.
  v1::GetProgressResponse p;
  s = client.Progress(Leader(dwk), id, city, &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = client.Progress(Leader(hn), id, hn, &p);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  // Nothing changed: one directive, one signature.
  v1::ListDirectivesResponse list;
  ASSERT_TRUE(client.List(Leader(city), city, &list).ok());
  ASSERT_EQ(list.directives_size(), 1);
  EXPECT_EQ(list.directives(0).progress().counts().signed_(), 1);
  ASSERT_TRUE(client.Progress(Leader(dwk), id, dwk, &p).ok());
  EXPECT_EQ(p.total().counts().signed_(), 1);
  EXPECT_EQ(p.total().counts().total(), topology.GridsBelow(dwk));
  EXPECT_EQ(p.directive().version(), 1);
  EXPECT_EQ(p.directive().draft().deadline_unix_ms(), draft.deadline_unix_ms());

  // Ids are never given out twice, across a restart either.
  node.Kill();
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  v1::IssueDirectiveResponse second;
  ASSERT_TRUE(client.Issue(Leader(dwk), draft, &second).ok());
  EXPECT_GT(second.directive().id(), id);
  ASSERT_TRUE(client.List(Leader(dwk), dwk, &list).ok());
  EXPECT_EQ(list.directives_size(), 2);
}

TEST_F(DirectiveTest, RetriedIssueReturnsTheFirstAndDepartmentsAnswer) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.LogTail();
  Client client(node.channel());
  const auto& topology = Shizuishan();
  const std::string dwk = topology.Children(topology.root().id())[0]->id();
  std::vector<std::string> departments;
  for (const auto* d : topology.DepartmentsOf(dwk)) departments.push_back(d->id());
  ASSERT_GE(departments.size(), 2u);

  v1::DirectiveDraft draft = AllGridsDraft("各部门报送安全生产检查情况");
  draft.mutable_targets()->mutable_departments()->add_ids(departments[0]);
  draft.mutable_targets()->mutable_departments()->add_ids(departments[1]);
  // The same request from four threads at once: one directive.
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      v1::IssueDirectiveResponse r;
      auto s = client.Issue(Leader(dwk), draft, &r, "req-42");
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(r.targets(), 2);
      ids[t] = r.directive().id();
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  // The same request id with another draft: refused, naming the first.
  v1::DirectiveDraft other = draft;
  other.set_title("另一项任务");
  auto expect_reused = [&] {
    v1::IssueDirectiveResponse r;
    auto s = client.Issue(Leader(dwk), other, &r, "req-42");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
    EXPECT_NE(s.error_message().find("request_id: \"req-42\""), std::string::npos)
        << s.error_message();
    EXPECT_NE(s.error_message().find(ids[0]), std::string::npos) << s.error_message();
  };
  expect_reused();

  // A department signs and completes for itself; another department cannot.
  const Identity desk{"desk", "department", "", departments[0]};
  v1::ReceiptView view;
  auto s = client.Sign(desk, ids[0], "", &view);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(view.receipt().unit_id(), departments[0]);
  s = client.Sign(desk, ids[0], departments[1], &view);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  v1::InboxResponse inbox;
  ASSERT_TRUE(client.Inbox(desk, &inbox).ok());
  ASSERT_EQ(inbox.items_size(), 1);
  EXPECT_EQ(inbox.items(0).receipt().state(), v1::RECEIPT_STATE_SIGNED);
  v1::GetProgressResponse p;
  ASSERT_TRUE(client.Progress(Leader(dwk), ids[0], dwk, &p).ok());
  EXPECT_EQ(p.total().counts().total(), 2);
  EXPECT_EQ(p.total().counts().signed_(), 1);
  ASSERT_EQ(p.children_size(), 2);  // one row per department
  for (const auto& row : p.children()) {
    EXPECT_EQ(row.counts().total(), 1) << row.jurisdiction_id();
    EXPECT_EQ(row.counts().signed_(), row.jurisdiction_id() == departments[0] ? 1 : 0);
  }

  // After a SIGKILL the retry still finds the first directive.
  node.Kill();
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  v1::IssueDirectiveResponse again;
  s = client.Issue(Leader(dwk), draft, &again, "req-42");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.directive().id(), ids[0]);
  EXPECT_EQ(again.targets(), 2);
  expect_reused();
  v1::ListDirectivesResponse list;
  ASSERT_TRUE(client.List(Leader(dwk), dwk, &list).ok());
  EXPECT_EQ(list.directives_size(), 1);
}

// 100,000 grids (10 counties x 10 townships x 10 communities x 100 grids):
// the expansion takes ~50 chunks; a SIGKILL lands somewhere in it (before
// the first batch, mid-way or after), and after the restart the retried
// Issue returns one directive with every unit counted exactly once.
TEST_F(DirectiveTest, HundredThousandUnitsSurviveAKillMidExpansion) {
  const std::string topology_file = dir.path() + "/big.json";
  {
    std::ofstream out(topology_file);
    out << R"({"name":"big","jurisdictions":[{"id":"big","name":"big","level":"LEVEL_CITY"})";
    for (int c = 0; c < 10; ++c) {
      const std::string cid = "c" + std::to_string(c);
      out << R"(,{"id":")" << cid << R"(","name":"c","level":"LEVEL_COUNTY","parent_id":"big"})";
      for (int t = 0; t < 10; ++t) {
        const std::string tid = cid + "-t" + std::to_string(t);
        out << R"(,{"id":")" << tid << R"(","name":"t","level":"LEVEL_TOWNSHIP","parent_id":")"
            << cid << R"("})";
        for (int m = 0; m < 10; ++m) {
          const std::string mid = tid + "-m" + std::to_string(m);
          out << R"(,{"id":")" << mid << R"(","name":"m","level":"LEVEL_COMMUNITY","parent_id":")"
              << tid << R"("})";
          for (int g = 0; g < 100; ++g) {
            out << R"(,{"id":")" << mid << "-g" << g
                << R"(","name":"g","level":"LEVEL_GRID","grid_kind":"GRID_KIND_URBAN","parent_id":")"
                << mid << R"("})";
          }
        }
      }
    }
    out << "]}";
  }
  WhistledProcess node(dir.path() + "/data", {"--topology-file", topology_file});
  ASSERT_TRUE(node.running()) << node.LogTail();
  Client client(node.channel());
  v1::DirectiveDraft draft;
  draft.set_title("十万网格");
  draft.set_deadline_unix_ms(NowMs() + 3600 * 1000);
  draft.mutable_targets()->mutable_level()->set_subtree_id("big");
  draft.mutable_targets()->mutable_level()->set_level(v1::LEVEL_GRID);
  const Identity mayor = Leader("big");

  std::thread first([&] {
    v1::IssueDirectiveResponse ignored;
    (void)client.Issue(mayor, draft, &ignored, "big-1");  // cut short by the kill, or not
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  node.Kill();
  first.join();
  ASSERT_TRUE(node.Restart()) << node.LogTail();

  v1::IssueDirectiveResponse issued;
  grpc::Status s;
  for (int attempt = 0; attempt < 100; ++attempt) {
    s = client.Issue(mayor, draft, &issued, "big-1");
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(issued.targets(), 100000);
  const std::string id = issued.directive().id();
  v1::GetProgressResponse p;
  ASSERT_TRUE(client.Progress(mayor, id, "big", &p).ok());
  EXPECT_EQ(p.total().counts().total(), 100000);
  int64_t sum = 0;
  for (const auto& row : p.children()) {
    EXPECT_EQ(row.counts().total(), 10000) << row.jurisdiction_id();
    sum += row.counts().total();
  }
  EXPECT_EQ(sum, 100000);
  ASSERT_TRUE(client.Progress(mayor, id, "c7-t3", &p).ok());
  EXPECT_EQ(p.total().counts().total(), 1000);
  EXPECT_EQ(p.children_size(), 10);
  std::vector<v1::Receipt> receipts;
  ASSERT_TRUE(client.Targets(mayor, id, "c7", v1::RECEIPT_STATE_PENDING, &receipts).ok());
  EXPECT_EQ(receipts.size(), 10000u);
  v1::ListDirectivesResponse list;
  ASSERT_TRUE(client.List(mayor, "big", &list).ok());
  EXPECT_EQ(list.directives_size(), 1);
  std::printf("100,000 grids: %s\n",
              node.LogTail(200).find("resuming") != std::string::npos
                  ? "the kill landed mid-expansion; resumed"
                  : "the kill landed before the first or after the last chunk");
}

// Receipts that reach a node together are written together (one batch, their
// counts summed per row): every grid sends two Signs and, for half of them, a
// Complete at once, 256 calls in flight. Each grid is signed once, the counts
// equal the hand count at every level, and stay so across a SIGKILL.
TEST_F(DirectiveTest, ReceiptsSentTogetherCountOnceEach) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.LogTail();
  Client client(node.channel());
  const std::string city = Shizuishan().root().id();
  const std::vector<std::string> grids = AllGrids();
  v1::IssueDirectiveResponse issued;
  auto s = client.Issue(Leader(city), AllGridsDraft("同时签收"), &issued);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string id = issued.directive().id();

  struct Call {
    size_t grid = 0;
    bool complete = false;
    grpc::ClientContext ctx;
    v1::SignDirectiveRequest sign;
    v1::CompleteDirectiveRequest done;
    v1::ReceiptView view;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (size_t i = 0; i < grids.size(); ++i) {
    for (int k = 0; k < (i % 2 == 0 ? 3 : 2); ++k) {
      auto c = std::make_unique<Call>();
      c->grid = i;
      c->complete = k == 2;
      Worker(grids[i]).Apply(c->ctx);
      c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      c->sign.set_directive_id(id);
      c->done.set_directive_id(id);
      calls.push_back(std::move(c));
    }
  }
  auto stub = v1::DirectiveService::NewStub(node.channel());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> signs_ok(grids.size(), 0), completes_ok(grids.size(), 0);
  size_t answered = 0, next = 0;
  std::vector<std::string> unexpected;
  std::function<void()> start_next;
  auto on_answer = [&](Call* c, const grpc::Status& st) {
    std::lock_guard lock(mu);
    if (st.ok()) {
      ++(c->complete ? completes_ok : signs_ok)[c->grid];
    } else if (st.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
      unexpected.push_back(grids[c->grid] + ": " + st.error_message());
    }
    ++answered;
    cv.notify_all();
  };
  start_next = [&] {
    Call* c = nullptr;
    {
      std::lock_guard lock(mu);
      if (next == calls.size()) return;
      c = calls[next++].get();
    }
    auto cb = [&, c](grpc::Status st) {
      on_answer(c, st);
      start_next();
    };
    if (c->complete) {
      stub->async()->Complete(&c->ctx, &c->done, &c->view, cb);
    } else {
      stub->async()->Sign(&c->ctx, &c->sign, &c->view, cb);
    }
  };
  for (int k = 0; k < 256; ++k) start_next();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return answered == calls.size(); });
  }
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  std::set<std::string> all(grids.begin(), grids.end()), done;
  for (size_t i = 0; i < grids.size(); ++i) {
    // A Complete that came first signs too, and then both Signs are refused.
    EXPECT_EQ(signs_ok[i] + (i % 2 == 0 && signs_ok[i] == 0 ? 1 : 0), 1) << grids[i];
    EXPECT_EQ(completes_ok[i], i % 2 == 0 ? 1 : 0) << grids[i];
    if (i % 2 == 0) done.insert(grids[i]);
  }
  ExpectCountsEverywhere(client, id, all, done);
  node.Kill();
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  ExpectCountsEverywhere(client, id, all, done);
  std::vector<v1::Receipt> pending;
  ASSERT_TRUE(client.Targets(Leader(city), id, city, v1::RECEIPT_STATE_PENDING, &pending).ok());
  EXPECT_TRUE(pending.empty());
}

}  // namespace
}  // namespace whistle::testing
