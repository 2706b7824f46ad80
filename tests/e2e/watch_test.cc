// Live watch and case inboxes against a real whistled (one process): a
// watcher that disconnects and resumes from its token, across a SIGKILL and
// restart, sees every case transition and directive change exactly once and
// in order; a township does not see another township's changes; tokens that
// are not in the log are refused; departments and grid workers read their
// inboxes.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "tests/e2e/scenario.h"
#include "whistle/v1/directive_service.grpc.pb.h"
#include "whistle/v1/inbox.grpc.pb.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

struct Collected {
  std::vector<v1::Change> changes;
  grpc::Status status;
  std::string last_token;
};

// Reads a watch until `stop` says so (then cancels), the stream ends, or
// `timeout` passes.
Collected Watch(std::shared_ptr<grpc::Channel> channel, const Identity& who,
                const std::string& root, const std::string& from,
                const std::function<bool(const Collected&)>& stop,
                std::chrono::milliseconds timeout = 20s) {
  auto stub = v1::WatchService::NewStub(channel);
  grpc::ClientContext ctx;
  who.Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::WatchRequest req;
  req.set_jurisdiction_id(root);
  req.set_from_token(from);
  Collected out;
  out.last_token = from;
  auto reader = stub->Watch(&ctx, req);
  v1::Change c;
  bool cancelled = false;
  while (reader->Read(&c)) {
    out.last_token = c.token();
    out.changes.push_back(c);
    if (stop(out)) {
      ctx.TryCancel();
      cancelled = true;
      break;
    }
  }
  out.status = reader->Finish();
  if (cancelled) out.status = grpc::Status::OK;
  return out;
}

class Ids {
 public:
  explicit Ids(WhistledProcess& node) : node_(node) {}
  // Another township of the same county and a grid of it (walks the topology).
  std::pair<std::string, std::string> OtherTownshipAndGrid(const ScenarioIds& ids) {
    auto view = Get(ids.county);
    for (const auto& t : view.children()) {
      if (t.id() == ids.township) continue;
      std::string at = t.id();
      for (;;) {
        auto v = Get(at);
        if (v.children().empty()) return {t.id(), at};
        at = v.children(0).id();
      }
    }
    return {};
  }

 private:
  v1::JurisdictionView Get(const std::string& id) {
    auto stub = node_.topology();
    grpc::ClientContext ctx;
    Identity{"u", "staff", id, ""}.Apply(ctx);
    v1::GetJurisdictionRequest req;
    req.set_id(id);
    v1::JurisdictionView view;
    EXPECT_TRUE(stub->GetJurisdiction(&ctx, req, &view).ok());
    return view;
  }
  WhistledProcess& node_;
};

class WatchTest : public ::testing::Test {
 protected:
  ScenarioIds ids = DawukouIds();
  TempDir dir;
  Identity county_leader{"chen.county", "leader", "", ""};
  Identity county_staff{"sun.county", "staff", "", ""};

  void SetUp() override {
    county_leader.jurisdiction = ids.county;
    county_staff.jurisdiction = ids.county;
  }

  // Reports a case and runs the first `steps` scenario steps; returns its id
  // and adds its history length to *expected.
  std::string Drive(WhistledProcess& node, const std::string& request_id, size_t steps,
                    std::map<std::string, int64_t>* expected) {
    auto stub = node.cases();
    v1::Case c;
    auto st = Report(*stub, GridWorker(ids), NeighbourDispute(ids, request_id), &c);
    EXPECT_TRUE(st.ok()) << st.error_message();
    auto all = ScenarioSteps(ids, c.id());
    for (size_t i = 0; i < steps && i < all.size(); ++i) {
      v1::Case after;
      st = Act(*stub, all[i].who, c.id(), all[i].command, &after);
      EXPECT_TRUE(st.ok()) << all[i].name << ": " << st.error_message();
    }
    v1::Case now;
    EXPECT_TRUE(Get(*stub, GridWorker(ids), c.id(), &now).ok());
    (*expected)[c.id()] = now.history_length();
    return c.id();
  }

  // Continues case `id` from step `from` to `to`.
  void Continue(WhistledProcess& node, const std::string& id, size_t from, size_t to,
                std::map<std::string, int64_t>* expected) {
    auto stub = node.cases();
    auto all = ScenarioSteps(ids, id);
    for (size_t i = from; i < to && i < all.size(); ++i) {
      v1::Case after;
      auto st = Act(*stub, all[i].who, id, all[i].command, &after);
      EXPECT_TRUE(st.ok()) << all[i].name << ": " << st.error_message();
      if (st.ok()) (*expected)[id] = after.history_length();
    }
  }
};

TEST_F(WatchTest, ResumeFromTokenAcrossDisconnectAndSigkillSeesEverythingOnceInOrder) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.log_path();
  std::map<std::string, int64_t> expected;  // case -> history length

  // Phase 1: two cases partly handled, a directive to the community, signed.
  std::string a = Drive(node, "w-a", 3, &expected);
  std::string b = Drive(node, "w-b", 1, &expected);
  auto dirs = v1::DirectiveService::NewStub(node.channel());
  std::string directive_id;
  {
    grpc::ClientContext ctx;
    county_leader.Apply(ctx);
    v1::IssueDirectiveRequest req;
    auto* d = req.mutable_draft();
    d->set_title("fire check");
    d->set_text("inspect every rental house");
    d->set_deadline_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                (std::chrono::system_clock::now() + 48h).time_since_epoch())
                                .count());
    d->mutable_targets()->mutable_jurisdictions()->add_ids(ids.community);
    v1::IssueDirectiveResponse resp;
    auto st = dirs->Issue(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    directive_id = resp.directive().id();
  }
  auto sign = [&](bool complete) {
    grpc::ClientContext ctx;
    Identity{"li.community", "staff", ids.community, ""}.Apply(ctx);
    v1::ReceiptView view;
    grpc::Status st;
    if (complete) {
      v1::CompleteDirectiveRequest req;
      req.set_directive_id(directive_id);
      st = dirs->Complete(&ctx, req, &view);
    } else {
      v1::SignDirectiveRequest req;
      req.set_directive_id(directive_id);
      st = dirs->Sign(&ctx, req, &view);
    }
    EXPECT_TRUE(st.ok()) << st.error_message();
  };
  sign(false);

  // Watcher 0 reads from the start of the log and disconnects after 5 changes.
  auto w0 = Watch(node.channel(), county_staff, "", "0",
                  [](const Collected& c) { return c.changes.size() >= 5; });
  ASSERT_TRUE(w0.status.ok()) << w0.status.error_message();
  ASSERT_EQ(w0.changes.size(), 5u);

  // Changes while nobody watches.
  Continue(node, a, 3, 5, &expected);

  // Watcher 1 resumes and stays on while the node is SIGKILLed mid-traffic.
  Collected w1;
  std::thread watcher([&] {
    w1 = Watch(node.channel(), county_staff, "", w0.last_token,
               [](const Collected&) { return false; });
  });
  std::this_thread::sleep_for(300ms);
  Continue(node, b, 1, 4, &expected);
  std::string c = Drive(node, "w-c", 2, &expected);
  std::this_thread::sleep_for(300ms);
  node.Kill();
  watcher.join();
  EXPECT_FALSE(w1.status.ok()) << "the stream outlived a SIGKILL";
  EXPECT_GT(w1.changes.size(), 0u);

  ASSERT_TRUE(node.Restart()) << node.LogTail();
  Continue(node, a, 5, 11, &expected);
  Continue(node, c, 2, 5, &expected);
  sign(true);

  // Watcher 2 resumes after the restart and reads until every change arrived.
  int64_t want_cases = 0;
  for (const auto& [id, n] : expected) want_cases += n;
  auto count_cases = [](const std::vector<v1::Change>& v) {
    return std::count_if(v.begin(), v.end(),
                         [](const v1::Change& x) { return x.has_case_change(); });
  };
  auto count_done = [](const std::vector<v1::Change>& v) {
    return std::count_if(v.begin(), v.end(), [](const v1::Change& x) {
      return x.has_directive_change() && x.directive_change().delta().done() > 0;
    });
  };
  const int64_t before = count_cases(w0.changes) + count_cases(w1.changes);
  const int64_t done_before = count_done(w0.changes) + count_done(w1.changes);
  // Done at the community, its township and the county: three rows.
  auto w2 = Watch(node.channel(), county_staff, "", w1.last_token, [&](const Collected& got) {
    return before + count_cases(got.changes) >= want_cases &&
           done_before + count_done(got.changes) >= 3;
  });
  ASSERT_TRUE(w2.status.ok()) << w2.status.error_message();

  std::vector<v1::Change> all;
  for (auto* part : {&w0, &w1, &w2})
    all.insert(all.end(), part->changes.begin(), part->changes.end());
  // Tokens strictly increase: no change twice, none reordered.
  for (size_t i = 1; i < all.size(); ++i) {
    ASSERT_LT(std::stoull(all[i - 1].token()), std::stoull(all[i].token())) << i;
  }
  // Per case: seq 1..n, each once, in order.
  std::map<std::string, int64_t> last_seq;
  for (const auto& ch : all) {
    if (!ch.has_case_change()) continue;
    const auto& k = ch.case_change();
    EXPECT_EQ(k.seq(), last_seq[k.case_id()] + 1) << k.case_id();
    last_seq[k.case_id()] = k.seq();
  }
  EXPECT_EQ(last_seq, expected);

  // Per directive row: the deltas add up to the node's progress, versions in order.
  std::map<std::string, v1::ProgressCounts> sums;
  int64_t version = 0;
  for (const auto& ch : all) {
    if (!ch.has_directive_change()) continue;
    const auto& d = ch.directive_change();
    EXPECT_EQ(d.directive_id(), directive_id);
    if (d.has_delta()) {
      auto& s = sums[d.jurisdiction_id()];
      s.set_total(s.total() + d.delta().total());
      s.set_signed_(s.signed_() + d.delta().signed_());
      s.set_done(s.done() + d.delta().done());
    } else {
      EXPECT_GT(d.version(), version);
      version = d.version();
    }
  }
  EXPECT_EQ(version, 1);
  for (const std::string& j : {ids.county, ids.township, ids.community}) {
    EXPECT_EQ(sums[j].total(), 1) << j;
    EXPECT_EQ(sums[j].signed_(), 1) << j;
    EXPECT_EQ(sums[j].done(), 1) << j;
  }
}

TEST_F(WatchTest, ATownshipSeesOnlyItsSubtreeAndBadTokensAreRefused) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.log_path();
  auto [other_township, other_grid] = Ids(node).OtherTownshipAndGrid(ids);
  ASSERT_FALSE(other_grid.empty());

  std::map<std::string, int64_t> expected;
  std::string mine = Drive(node, "p-1", 1, &expected);
  auto stub = node.cases();
  v1::Case theirs;
  auto report = NeighbourDispute(ids, "p-2");
  report.mutable_place()->set_grid_id(other_grid);
  ASSERT_TRUE(
      Report(*stub, Identity{"other.grid", "grid_worker", other_grid, ""}, report, &theirs).ok());
  Drive(node, "p-3", 0, &expected);  // a last change of mine, after theirs

  Identity street{"zhao.street", "staff", ids.township, ""};
  auto w = Watch(node.channel(), street, "", "0", [](const Collected& c) {
    return c.changes.size() >= 3;  // p-1 report + accept, p-3 report
  });
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  for (const auto& ch : w.changes) {
    ASSERT_TRUE(ch.has_case_change());
    EXPECT_NE(ch.case_change().case_id(), theirs.id()) << "another township's case leaked";
  }
  // The other township's own staff does see it.
  Identity other_staff{"other.street", "staff", other_township, ""};
  auto w2 = Watch(node.channel(), other_staff, "", "0",
                  [](const Collected& c) { return c.changes.size() >= 1; });
  ASSERT_EQ(w2.changes.size(), 1u);
  EXPECT_EQ(w2.changes[0].case_change().case_id(), theirs.id());

  // Refusals: another subtree, a department, garbage and future tokens.
  auto denied =
      Watch(node.channel(), street, other_township, "", [](const Collected&) { return true; });
  EXPECT_EQ(denied.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto dept = Watch(node.channel(), Identity{"desk.police", "department", "", ids.police}, "", "",
                    [](const Collected&) { return true; });
  EXPECT_EQ(dept.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto garbage = Watch(node.channel(), street, "", "12x", [](const Collected&) { return true; });
  EXPECT_EQ(garbage.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(garbage.status.error_message().find("from_token"), std::string::npos);
  auto future = Watch(node.channel(), street, "", "999999", [](const Collected&) { return true; });
  EXPECT_EQ(future.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
}

// A directive issued above a township, addressed into it, shows its issue,
// amend and cancel on the township's watch, once each; one addressed to
// another township does not.
TEST_F(WatchTest, ATownshipSeesTheDirectivesAddressedIntoItFromAbove) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.log_path();
  auto [other_township, other_grid] = Ids(node).OtherTownshipAndGrid(ids);
  ASSERT_FALSE(other_township.empty());
  auto stub = v1::DirectiveService::NewStub(node.channel());
  const auto in_a_day = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch() + 24h)
                            .count();
  auto issue = [&](const v1::Targets& targets, const std::string& title) {
    grpc::ClientContext ctx;
    county_leader.Apply(ctx);
    v1::IssueDirectiveRequest req;
    req.mutable_draft()->set_title(title);
    req.mutable_draft()->set_deadline_unix_ms(in_a_day);
    *req.mutable_draft()->mutable_targets() = targets;
    v1::IssueDirectiveResponse out;
    EXPECT_TRUE(stub->Issue(&ctx, req, &out).ok()) << title;
    return out.directive().id();
  };
  v1::Targets every_community;  // of the county: the township's among them
  every_community.mutable_level()->set_subtree_id(ids.county);
  every_community.mutable_level()->set_level(v1::LEVEL_COMMUNITY);
  v1::Targets other;  // the other township itself, listed
  other.mutable_jurisdictions()->add_ids(other_township);
  const std::string mine = issue(every_community, "各社区排查");
  const std::string theirs = issue(other, "另一街道");
  ASSERT_FALSE(mine.empty());
  ASSERT_FALSE(theirs.empty());
  {
    grpc::ClientContext ctx;
    county_leader.Apply(ctx);
    v1::AmendDirectiveRequest req;
    req.set_directive_id(mine);
    req.mutable_amend()->set_deadline_unix_ms(in_a_day + 3600 * 1000);
    v1::Directive out;
    ASSERT_TRUE(stub->Amend(&ctx, req, &out).ok());
  }
  {
    grpc::ClientContext ctx;
    county_leader.Apply(ctx);
    v1::CancelDirectiveRequest req;
    req.set_directive_id(mine);
    req.mutable_cancel()->set_reason("改期");
    v1::Directive out;
    ASSERT_TRUE(stub->Cancel(&ctx, req, &out).ok());
  }
  Identity street{"zhao.street", "staff", ids.township, ""};
  std::vector<std::pair<std::string, int64_t>> versions;
  auto w = Watch(
      node.channel(), street, "", "0",
      [&](const Collected& c) {
        const auto& d = c.changes.back().directive_change();
        if (c.changes.back().has_directive_change() && d.version() > 0) {
          versions.emplace_back(d.directive_id(), d.version());
        }
        return versions.size() >= 3;
      },
      5s);
  const std::vector<std::pair<std::string, int64_t>> want = {{mine, 1}, {mine, 2}, {mine, 3}};
  EXPECT_EQ(versions, want);
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  for (const auto& c : w.changes) {
    EXPECT_NE(c.directive_change().directive_id(), theirs) << "another township's directive leaked";
  }
}

TEST_F(WatchTest, TrimmedTokensAreOutOfRangeAndASlowConsumerEndsResumable) {
  WhistledProcess node(dir.path(), {"--change-log-max-entries", "5", "--watch-max-lag", "3"});
  ASSERT_TRUE(node.running()) << node.log_path();
  std::map<std::string, int64_t> expected;
  Drive(node, "t-1", 8, &expected);     // 9 changes
  std::this_thread::sleep_for(1100ms);  // the commit thread trims at most once a second
  std::string id = Drive(node, "t-2", 0, &expected);

  auto gone = Watch(node.channel(), county_staff, "", "0", [](const Collected&) { return true; });
  EXPECT_EQ(gone.status.error_code(), grpc::StatusCode::OUT_OF_RANGE)
      << gone.status.error_message();
  EXPECT_NE(gone.status.error_message().find("trimmed up to"), std::string::npos)
      << gone.status.error_message();
  auto kept = Watch(node.channel(), county_staff, "", "5",
                    [](const Collected& c) { return c.changes.size() >= 5; });
  ASSERT_TRUE(kept.status.ok()) << kept.status.error_message();
  EXPECT_EQ(kept.changes.front().token(), "6");
  EXPECT_EQ(kept.changes.back().case_change().case_id(), id);

  // A caught-up stream that falls more than 3 changes behind (one directive batch
  // counts at four levels at once) ends with RESOURCE_EXHAUSTED; its token resumes.
  Collected slow;
  std::thread watcher([&] {
    slow = Watch(node.channel(), county_staff, "", kept.last_token,
                 [](const Collected&) { return false; });
  });
  std::this_thread::sleep_for(300ms);
  auto dirs = v1::DirectiveService::NewStub(node.channel());
  {
    grpc::ClientContext ctx;
    county_leader.Apply(ctx);
    v1::IssueDirectiveRequest req;
    auto* d = req.mutable_draft();
    d->set_title("drill");
    d->set_text("fire drill");
    d->set_deadline_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                (std::chrono::system_clock::now() + 48h).time_since_epoch())
                                .count());
    d->mutable_targets()->mutable_jurisdictions()->add_ids(ids.community);
    v1::IssueDirectiveResponse resp;
    ASSERT_TRUE(dirs->Issue(&ctx, req, &resp).ok());
  }
  watcher.join();
  EXPECT_EQ(slow.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << slow.status.error_message();
  EXPECT_NE(slow.status.error_message().find("resume with the last token"), std::string::npos);
  auto resumed = Watch(node.channel(), county_staff, "", slow.last_token,
                       [](const Collected& c) { return c.changes.size() >= 3; });
  ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
  EXPECT_EQ(std::stoull(resumed.changes.front().token()), std::stoull(slow.last_token) + 1);
  for (const auto& ch : resumed.changes) EXPECT_TRUE(ch.has_directive_change());
}

TEST_F(WatchTest, DepartmentAndReporterInboxes) {
  WhistledProcess node(dir.path());
  ASSERT_TRUE(node.running()) << node.log_path();
  std::map<std::string, int64_t> expected;
  // Steps: 0 accept, 1 escalate, 2 whistle (police + judicial), 3 police reports in.
  std::string reported_in = Drive(node, "i-1", 4, &expected);
  std::string summoned = Drive(node, "i-2", 3, &expected);
  std::string untouched = Drive(node, "i-3", 1, &expected);

  auto inbox = v1::InboxService::NewStub(node.channel());
  auto list = [&](const Identity& who, bool departments, v1::CaseInboxResponse* out,
                  int page_size = 0, const std::string& token = "") {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::CaseInboxRequest req;
    req.set_page_size(page_size);
    req.set_page_token(token);
    return departments ? inbox->DepartmentCases(&ctx, req, out)
                       : inbox->ReportedCases(&ctx, req, out);
  };
  Identity police{"desk.police", "department", "", ids.police};
  v1::CaseInboxResponse r;
  ASSERT_TRUE(list(police, true, &r).ok());
  ASSERT_EQ(r.items_size(), 2);
  EXPECT_EQ(r.items(0).case_().id(), summoned);  // pending first
  EXPECT_TRUE(r.items(0).pending());
  EXPECT_GT(r.items(0).report_in_by_ms(), 0);
  EXPECT_EQ(r.items(1).case_().id(), reported_in);
  EXPECT_FALSE(r.items(1).pending());

  // Paged: one at a time, same order.
  v1::CaseInboxResponse p1, p2;
  ASSERT_TRUE(list(police, true, &p1, 1).ok());
  ASSERT_EQ(p1.items_size(), 1);
  ASSERT_FALSE(p1.next_page_token().empty());
  ASSERT_TRUE(list(police, true, &p2, 1, p1.next_page_token()).ok());
  ASSERT_EQ(p2.items_size(), 1);
  EXPECT_EQ(p2.items(0).case_().id(), reported_in);

  // Its inbox is what a department reads: not a township's List or Count
  // (whose cases' Get it would be refused).
  {
    auto cases = node.cases();
    grpc::ClientContext lc, cc;
    police.Apply(lc);
    police.Apply(cc);
    v1::ListCasesRequest lreq;
    lreq.set_jurisdiction_id(ids.township);
    v1::ListCasesResponse lresp;
    grpc::Status s = cases->List(&lc, lreq, &lresp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_NE(s.error_message().find("DepartmentCases"), std::string::npos) << s.error_message();
    EXPECT_EQ(lresp.cases_size(), 0);
    v1::CountCasesRequest creq;
    creq.set_jurisdiction_id(ids.township);
    v1::CountCasesResponse cresp;
    s = cases->Count(&cc, creq, &cresp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  }

  // The judicial office has both pending (it did not report in on either).
  Identity judicial{"desk.judicial", "department", "", ids.judicial};
  ASSERT_TRUE(list(judicial, true, &r).ok());
  ASSERT_EQ(r.items_size(), 2);
  EXPECT_TRUE(r.items(0).pending() && r.items(1).pending());
  // A department reads what its inbox lists.
  auto stub = node.cases();
  v1::Case got;
  EXPECT_TRUE(Get(*stub, police, summoned, &got).ok());
  EXPECT_EQ(Get(*stub, police, untouched, &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // After reporting in, the summoned case leaves the pending rows (and survives a restart).
  auto all = ScenarioSteps(ids, summoned);
  v1::Case after;
  ASSERT_TRUE(Act(*stub, all[3].who, summoned, all[3].command, &after).ok());
  node.Kill();
  ASSERT_TRUE(node.Restart()) << node.LogTail();
  ASSERT_TRUE(list(police, true, &r).ok());
  ASSERT_EQ(r.items_size(), 2);
  EXPECT_FALSE(r.items(0).pending());
  EXPECT_FALSE(r.items(1).pending());

  // The grid worker lists its three reports; someone else lists none.
  ASSERT_TRUE(list(GridWorker(ids), false, &r).ok());
  std::set<std::string> mine;
  for (const auto& item : r.items()) mine.insert(item.case_().id());
  EXPECT_EQ(mine, (std::set<std::string>{reported_in, summoned, untouched}));
  ASSERT_TRUE(list(Identity{"other.grid", "grid_worker", ids.grid, ""}, false, &r).ok());
  EXPECT_EQ(r.items_size(), 0);
  // Refusals: a staff member has no department inbox; a bad page size names the field.
  EXPECT_EQ(list(Identity{"zhao.street", "staff", ids.township, ""}, true, &r).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status bad = list(police, true, &r, 501);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("page_size"), std::string::npos);
}

}  // namespace
}  // namespace whistle::testing
