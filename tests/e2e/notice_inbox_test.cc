// The supervision notice inbox (督办, InboxService.SupervisionNotices) on a
// real whistled running on the test clock: a case left unaccepted at its
// escalate_up_to level notices the level above; that level's leader lists
// it, the count rises with each further notice, and it leaves the list once
// resolved. Callers outside the notified level are refused; bad input names
// the field and changes nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/federation.h"
#include "tests/e2e/scenario.h"
#include "tests/e2e/whistled_process.h"
#include "whistle/v1/inbox.grpc.pb.h"
#include "whistle/v1/service.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kStart = 1'750'000'000'000;
constexpr int64_t kAcceptMs = 600'000;  // the policy's accept limit: 10 minutes

// General cases are the community's; escalation stops at the township (the
// default escalate_up_to), so the township's miss notices the county.
std::string WritePolicy(const std::string& path) {
  std::ofstream(path) << R"({
    "categories": [{"id": "dispute.neighbour", "name": "邻里纠纷"}],
    "ownership": [{"severity": "SEVERITY_GENERAL", "owner_level": "LEVEL_COMMUNITY"}],
    "limits": {"accept_seconds": 600, "accept_urgent_seconds": 600, "dispatch_seconds": 1200,
               "report_in_seconds": 1800, "report_in_emergency_seconds": 1800,
               "resolve_general_seconds": 3600, "resolve_serious_seconds": 3600,
               "resolve_major_seconds": 3600, "resolve_extraordinary_seconds": 3600,
               "verify_seconds": 7200, "evaluate_seconds": 10800}})";
  return path;
}

class NoticeInboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = WritePolicy(dir_.path() + "-policy.json");
    auto flags = WhistledProcess::TestClockFlags(kStart);
    flags.insert(flags.end(), {"--policy-file", policy_});
    node_ = std::make_unique<WhistledProcess>(dir_.path(), flags);
    ASSERT_TRUE(node_->running()) << node_->LogTail();
    stub_ = node_->cases();
    inbox_ = v1::InboxService::NewStub(node_->channel());
  }

  grpc::Status Notices(const Identity& who, const v1::NoticeInboxRequest& req,
                       v1::NoticeInboxResponse* out) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return inbox_->SupervisionNotices(&ctx, req, out);
  }
  v1::NoticeInboxResponse NoticesOf(const Identity& who, const std::string& jurisdiction = "") {
    v1::NoticeInboxRequest req;
    req.set_jurisdiction_id(jurisdiction);
    v1::NoticeInboxResponse out;
    auto s = Notices(who, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Polls (the timer runs on its own; the clock does not move meanwhile)
  // until the county's list shows case `id` with `notices` notices.
  v1::NoticeInboxResponse WaitNotices(const std::string& id, int notices) {
    v1::NoticeInboxResponse r;
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      r = NoticesOf(county_leader_);
      if (r.items_size() == 1 && r.items(0).case_().id() == id && r.items(0).notices() == notices) {
        return r;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "no notice #" << notices << " for " << id << ": " << r.DebugString()
                  << node_->LogTail();
    return r;
  }

  // Polls until case `id` is owned by `owner`.
  void WaitOwner(const std::string& id, const std::string& owner) {
    v1::Case c;
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      if (Get(*stub_, county_leader_, id, &c).ok() && c.owner_id() == owner) return;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << id << " still owned by " << c.owner_id() << node_->LogTail();
  }

  v1::Case Do(const Identity& who, const std::string& id, const v1::Command& cmd) {
    v1::Case out;
    auto s = Act(*stub_, who, id, cmd, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  TempDir dir_;
  std::string policy_;
  std::unique_ptr<WhistledProcess> node_;
  std::unique_ptr<v1::CaseService::Stub> stub_;
  std::unique_ptr<v1::InboxService::Stub> inbox_;
  ScenarioIds ids_ = DawukouIds();
  Identity county_leader_{"leader.dwk", "leader", ids_.county, ""};
  Identity city_staff_{"staff.szs", "staff", "szs", ""};
  Identity township_staff_{"zhao", "staff", ids_.township, ""};
  Identity other_county_leader_{"leader.pl", "leader", "pl", ""};
  Identity police_{"desk.police", "department", "", ids_.police};
};

TEST_F(NoticeInboxTest, TheLevelAboveListsItsNoticesUntilTheCaseIsResolved) {
  v1::Case c;
  ASSERT_TRUE(Report(*stub_, GridWorker(ids_), NeighbourDispute(ids_, "notice-1"), &c).ok());
  const std::string id = c.id();
  ASSERT_EQ(c.owner_id(), ids_.community);
  EXPECT_EQ(NoticesOf(county_leader_).items_size(), 0);

  // The community misses its accept limit: moved up to the township, no notice.
  node_->SetClock(kStart + kAcceptMs + 1);
  WaitOwner(id, ids_.township);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(NoticesOf(county_leader_).items_size(), 0) << "an escalation is not a notice";

  // The township (the escalation ceiling) misses its accept limit: the county is noticed.
  const int64_t first = node_->AdvanceClock(kAcceptMs + 1);
  auto r = WaitNotices(id, 1);
  ASSERT_EQ(r.items_size(), 1);
  const v1::NoticeItem& item = r.items(0);
  EXPECT_EQ(item.notice_to_id(), ids_.county);
  EXPECT_EQ(item.noticed_at_ms(), first);
  ASSERT_EQ(item.deadlines_missed_size(), 1);
  EXPECT_EQ(item.deadlines_missed(0), "accept");
  EXPECT_EQ(item.case_().owner_id(), ids_.township);
  EXPECT_EQ(item.case_().state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(item.case_().category(), "dispute.neighbour");
  EXPECT_EQ(item.case_().supervisions(), 1);
  EXPECT_TRUE(r.next_page_token().empty());
  // Above the county, staff read it too; the township itself got no notice.
  EXPECT_EQ(NoticesOf(city_staff_, ids_.county).items_size(), 1);
  EXPECT_EQ(NoticesOf(township_staff_).items_size(), 0);

  // Left alone another period: a second notice, the count rises.
  const int64_t second = node_->AdvanceClock(kAcceptMs + 1);
  r = WaitNotices(id, 2);
  ASSERT_EQ(r.items_size(), 1);
  EXPECT_EQ(r.items(0).noticed_at_ms(), second);
  EXPECT_EQ(r.items(0).case_().supervisions(), 2);

  // Refused: a grid worker, a department, another county's leader, the
  // township for the county's list.
  v1::NoticeInboxRequest county_req;
  county_req.set_jurisdiction_id(ids_.county);
  for (const Identity& who : {GridWorker(ids_), police_, other_county_leader_, township_staff_}) {
    v1::NoticeInboxResponse out;
    auto s = Notices(who, county_req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << who.user << ": " << s.error_message();
    EXPECT_EQ(out.items_size(), 0) << who.user;
  }

  // Bad input: INVALID_ARGUMENT naming the field.
  struct Bad {
    int32_t page_size;
    std::string token, jurisdiction, field;
  };
  for (const Bad& bad :
       {Bad{-1, "", "", "page_size"}, Bad{501, "", "", "page_size"}, Bad{0, "zz", "", "page_token"},
        Bad{0, "abc", "", "page_token"}, Bad{0, "", "no-such-place", "jurisdiction_id"}}) {
    v1::NoticeInboxRequest req;
    req.set_page_size(bad.page_size);
    req.set_page_token(bad.token);
    req.set_jurisdiction_id(bad.jurisdiction);
    v1::NoticeInboxResponse out;
    auto s = Notices(county_leader_, req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.field;
    EXPECT_NE(s.error_message().find(bad.field), std::string::npos) << s.error_message();
  }
  // ... and changed nothing.
  r = NoticesOf(county_leader_);
  ASSERT_EQ(r.items_size(), 1);
  EXPECT_EQ(r.items(0).notices(), 2);
  EXPECT_EQ(r.items(0).noticed_at_ms(), second);

  // Accepted: still open, still listed.
  v1::Command accept;
  accept.mutable_accept()->set_note("on it");
  Do(township_staff_, id, accept);
  r = NoticesOf(county_leader_);
  ASSERT_EQ(r.items_size(), 1);
  EXPECT_EQ(r.items(0).case_().state(), v1::CASE_STATE_ACCEPTED);

  // Kept and resolved: gone from the list.
  v1::Command keep;
  keep.mutable_keep()->set_note("ourselves");
  Do(township_staff_, id, keep);
  v1::Command resolve;
  resolve.mutable_resolve()->set_note("mediated");
  v1::Case done = Do(township_staff_, id, resolve);
  EXPECT_EQ(done.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(NoticesOf(county_leader_).items_size(), 0);
  EXPECT_TRUE(done.notice_to_id().empty());
}

TEST_F(NoticeInboxTest, PagesWalkEveryNoticeNewestFirst) {
  // Three cases reported 1 s apart, so each deadline passes on its own.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    v1::Case c;
    ASSERT_TRUE(
        Report(*stub_, GridWorker(ids_), NeighbourDispute(ids_, "page-" + std::to_string(i)), &c)
            .ok());
    ids.push_back(c.id());
    node_->AdvanceClock(1000);
  }
  // Each escalates to the township, then each notices the county, one at a time.
  for (int i = 0; i < 3; ++i) {
    node_->SetClock(kStart + kAcceptMs + 1000 * i + 1);
    WaitOwner(ids[i], ids_.township);
  }
  v1::NoticeInboxResponse all;
  for (int i = 0; i < 3; ++i) {
    node_->SetClock(kStart + 2 * kAcceptMs + 1000 * i + 2);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      all = NoticesOf(county_leader_);
      if (all.items_size() == i + 1) break;
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(all.items_size(), i + 1) << all.DebugString() << node_->LogTail();
  }
  std::vector<std::string> listed;
  for (const auto& item : all.items()) listed.push_back(item.case_().id());
  EXPECT_EQ(listed, (std::vector<std::string>{ids[2], ids[1], ids[0]})) << "newest notice first";

  std::vector<std::string> walked;
  v1::NoticeInboxRequest req;
  req.set_page_size(1);
  for (int pages = 0; pages < 10; ++pages) {
    v1::NoticeInboxResponse page;
    ASSERT_TRUE(Notices(county_leader_, req, &page).ok());
    EXPECT_LE(page.items_size(), 1);
    for (const auto& item : page.items()) walked.push_back(item.case_().id());
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(walked, listed) << "page by page: nothing lost or repeated";
}

// ---- Two nodes: the county node lists a notice for a case owned on the township node ----

bool Eventually(const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

TEST(NoticeFederationTest, TheCountyNodeListsANoticeForACaseOwnedOnTheTownshipNode) {
  TempDir dir;
  const std::string policy = WritePolicy(dir.path() + "-policy.json");
  ScenarioIds ids = DawukouIds();
  FederationOptions options;
  options.extra_flags = WhistledProcess::TestClockFlags(kStart);
  options.extra_flags.insert(options.extra_flags.end(), {"--policy-file", policy});
  LocalFederation fed({{"county", "dwk", ids.county, {ids.township}, ""},
                       {"township", "dwks01", ids.township, {}, "county"}},
                      options);
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  auto& county = fed.node("county");
  auto& township = fed.node("township");
  Identity county_leader{"leader.dwk", "leader", ids.county, ""};
  Identity street{"zhao.street", "staff", ids.township, ""};
  auto county_inbox = v1::InboxService::NewStub(county.channel());
  auto listed = [&](int notices) {
    grpc::ClientContext ctx;
    county_leader.Apply(ctx);
    v1::NoticeInboxResponse r;
    if (!county_inbox->SupervisionNotices(&ctx, v1::NoticeInboxRequest(), &r).ok()) return -1;
    if (r.items_size() != 1) return r.items_size() == 0 ? 0 : -1;
    return r.items(0).notices() == notices && r.items(0).case_().owner_id() == ids.township ? 1
                                                                                            : -1;
  };

  v1::Case c;
  ASSERT_TRUE(
      Report(*township.cases(), GridWorker(ids), NeighbourDispute(ids, "fed-n-1"), &c).ok());
  const std::string id = c.id();
  ASSERT_TRUE(Eventually([&] {
    v1::Case copy;
    return Get(*county.cases(), county_leader, id, &copy).ok();
  })) << "the county node never got a copy\n"
      << fed.Describe();
  EXPECT_EQ(listed(1), 0);

  // The community and then the township (the ceiling) miss their accept limits,
  // on the township node's clock: the county is noticed.
  township.SetClock(kStart + kAcceptMs + 1);
  ASSERT_TRUE(Eventually([&] {
    v1::Case got;
    return Get(*township.cases(), street, id, &got).ok() && got.owner_id() == ids.township;
  })) << fed.Describe();
  township.SetClock(kStart + 2 * kAcceptMs + 2);
  EXPECT_TRUE(Eventually([&] { return listed(1) == 1; })) << fed.Describe();

  // Resolved on the township node: the county node's copy leaves the list.
  v1::Case out;
  for (const char* step : {"accept", "keep", "resolve"}) {
    v1::Command cmd;
    if (std::string(step) == "accept") cmd.mutable_accept();
    if (std::string(step) == "keep") cmd.mutable_keep();
    if (std::string(step) == "resolve") cmd.mutable_resolve()->set_note("done");
    auto s = Act(*township.cases(), street, id, cmd, &out);
    ASSERT_TRUE(s.ok()) << step << ": " << s.error_message();
  }
  EXPECT_TRUE(Eventually([&] { return listed(1) == 0; })) << fed.Describe();
}

}  // namespace
}  // namespace whistle::testing
