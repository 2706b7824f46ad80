// The closed loop's rules over real processes: a broken policy entry stops
// start-up naming it; each anti-gaming rule refuses with PERMISSION_DENIED
// and changes nothing (case and history compared before and after); triage
// (transfer, refuse, re-dispatch) over gRPC; and a transfer down to a
// township hosted on a child node hands the case over like escalate does.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/e2e/federation.h"
#include "tests/e2e/scenario.h"
#include "whistle/v1/link.grpc.pb.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

v1::Command Cmd(const std::function<void(v1::Command&)>& fill) {
  v1::Command c;
  fill(c);
  return c;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 15s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// ---- Start-up ----

TEST(PolicyStartupTest, BrokenPolicyEntryStopsStartupNamingIt) {
  TempDir dir;
  struct Case {
    const char* rules;
    const char* message;
  } cases[] = {
      {R"([{"owner_level":"LEVEL_COUNTY","severity":"SEVERITY_MAJOR"},
           {"owner_level":"LEVEL_CITY","severity":"SEVERITY_EXTRAORDINARY"},
           {"owner_level":"LEVEL_TOWNSHIP","severity":"SEVERITY_SERIOUS"},
           {"owner_level":"LEVEL_COMMUNITY","limits":{"accept_seconds":-1}}])",
       "rules[3].limits.accept_seconds: must be >= 0, got -1"},
      {R"([{"owner_level":"LEVEL_TOWNSHIP","escalate_up_to":"LEVEL_COMMUNITY"}])",
       "rules[0].escalate_up_to: LEVEL_COMMUNITY is below owner_level LEVEL_TOWNSHIP"},
      {R"([{"owner_level":"LEVEL_TOWNSHIP"},{"owner_level":"LEVEL_COUNTY",
            "severity":"SEVERITY_MAJOR"}])",
       // (the log line escapes the quotes around the empty prefix)
       "rules[1]: never matches; rules[0] (category_prefix "},
      {R"([{"owner_level":7}])", "rules[0].owner_level: unknown level 7"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    const std::string path = dir.path() + "/policy.json";
    {
      std::ofstream out(path);
      out << R"({"categories":[{"id":"dispute.land","name":"土地纠纷"}],"rules":)" << c.rules
          << "}";
    }
    auto [code, output] = RunWhistled({"--policy-file", path, "--data-dir", dir.path() + "/d",
                                       "--listen", "127.0.0.1:0", "--metrics-listen", ""});
    EXPECT_EQ(code, 2) << output;
    EXPECT_NE(output.find(c.message), std::string::npos) << output;
  }
}

// The shipped policy file loads as it is (the default, in the new form).
TEST(PolicyStartupTest, ShippedPolicyFileStarts) {
  TempDir dir;
  WhistledProcess node(dir.path(), {"--policy-file", WHISTLE_SOURCE_DIR "/config/policy.json"});
  EXPECT_TRUE(node.running()) << node.log_path();
}

// ---- One node ----

class ClosedLoopTest : public ::testing::Test {
 protected:
  ClosedLoopTest() : node_(dir_.path()) {}

  void SetUp() override { ASSERT_TRUE(node_.running()) << node_.log_path(); }

  std::string NewCase(const std::string& request_id, v1::Severity severity = v1::SEVERITY_GENERAL,
                      const Identity* reporter = nullptr) {
    v1::ReportCommand r = NeighbourDispute(ids_, request_id);
    r.set_severity(severity);
    v1::Case c;
    auto s = Report(*stub_, reporter != nullptr ? *reporter : GridWorker(ids_), r, &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return c.id();
  }

  v1::Case Do(const Identity& who, const std::string& id, const v1::Command& cmd) {
    v1::Case out;
    auto s = Act(*stub_, who, id, cmd, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // The case and its history, as the reporter reads them.
  std::string Snapshot(const std::string& id) {
    v1::Case c;
    v1::GetHistoryResponse h;
    EXPECT_TRUE(Get(*stub_, GridWorker(ids_), id, &c).ok());
    EXPECT_TRUE(History(*stub_, GridWorker(ids_), id, &h).ok());
    return c.SerializeAsString() + "|" + h.SerializeAsString();
  }

  // PERMISSION_DENIED with `rule` in the message, and nothing changed.
  void ExpectDenied(const Identity& who, const std::string& id, const v1::Command& cmd,
                    const std::string& rule) {
    const std::string before = Snapshot(id);
    v1::Case out;
    auto s = Act(*stub_, who, id, cmd, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_NE(s.error_message().find(rule), std::string::npos) << s.error_message();
    EXPECT_EQ(Snapshot(id), before) << "a refused command changed the case or its history";
  }

  TempDir dir_;
  WhistledProcess node_;
  std::unique_ptr<v1::CaseService::Stub> stub_ = node_.cases();
  ScenarioIds ids_ = DawukouIds();
  Identity community_{"li.community", "staff", ids_.community, ""};
  Identity community_other_{"he.community", "staff", ids_.community, ""};
  Identity street_{"zhao.street", "staff", ids_.township, ""};
  Identity police_{"desk.police", "department", "", ids_.police};
  Identity judicial_{"desk.judicial", "department", "", ids_.judicial};
};

TEST_F(ClosedLoopTest, EachAntiGamingRuleRefusesAndChangesNothing) {
  const std::string id = NewCase("ag-1");
  Do(community_, id, Cmd([](auto& c) { c.mutable_accept(); }));
  Do(community_, id, Cmd([](auto& c) { c.mutable_keep(); }));
  Do(community_, id, Cmd([](auto& c) { c.mutable_resolve()->set_note("修好了"); }));
  auto verify = Cmd([](auto& c) { c.mutable_verify()->set_fixed(true); });
  // The staff who handled it may not verify it.
  ExpectDenied(community_, id, verify, "anti-gaming: user \"li.community\" handled case");
  // Nor may the owner's other staff: the grid worker or a higher level verifies.
  ExpectDenied(community_other_, id, verify, "is verified by the grid worker of grid");
  Do(GridWorker(ids_), id, verify);
  Do(community_, id, Cmd([](auto& c) { c.mutable_close(); }));
  auto rate = Cmd([](auto& c) { c.mutable_evaluate()->set_score(5); });
  auto on_behalf = Cmd([](auto& c) {
    c.mutable_evaluate()->set_score(5);
    c.mutable_evaluate()->set_on_behalf(true);
  });
  // The staff who handled it may not rate it, even on the resident's behalf.
  ExpectDenied(community_, id, on_behalf, "anti-gaming: user \"li.community\" handled case");
  // A grid worker's report is rated by that grid worker (it asks the
  // resident): other staff may not rate in its place, on behalf or not.
  ExpectDenied(community_other_, id, rate, "who rates it for the resident");
  ExpectDenied(community_other_, id, on_behalf, "who rates it for the resident");
  v1::Case rated = Do(GridWorker(ids_), id, rate);
  EXPECT_EQ(rated.state(), v1::CASE_STATE_EVALUATED);
  EXPECT_FALSE(rated.evaluated_on_behalf());
  EXPECT_EQ(std::vector<std::string>(rated.handler_users().begin(), rated.handler_users().end()),
            std::vector<std::string>{"li.community"});

  // A case staff took in (a hotline call): other staff rate on the
  // resident's behalf only, and are told so; it is marked and reported apart.
  const Identity desk{"xu.desk", "staff", ids_.community, ""};
  const std::string call = NewCase("ag-desk", v1::SEVERITY_GENERAL, &desk);
  Do(community_, call, Cmd([](auto& c) { c.mutable_accept(); }));
  Do(community_, call, Cmd([](auto& c) { c.mutable_keep(); }));
  Do(community_, call, Cmd([](auto& c) { c.mutable_resolve(); }));
  Do(GridWorker(ids_), call, verify);
  Do(community_, call, Cmd([](auto& c) { c.mutable_close(); }));
  ExpectDenied(community_other_, call, rate, "must set on_behalf");
  v1::Case by_staff = Do(community_other_, call, on_behalf);
  EXPECT_TRUE(by_staff.evaluated_on_behalf());
  v1::GetHistoryResponse h;
  ASSERT_TRUE(History(*stub_, desk, call, &h).ok());
  EXPECT_TRUE(h.entries(h.entries_size() - 1).on_behalf());
}

TEST_F(ClosedLoopTest, TransferRefuseAndRedispatch) {
  // Reported at the community; the street is not its owner, so it escalates
  // there first, then hands it down to a sibling community, re-categorised.
  const std::string id = NewCase("tr-1");
  Do(community_, id, Cmd([](auto& c) { c.mutable_accept(); }));
  Do(community_, id, Cmd([](auto& c) { c.mutable_escalate()->set_reason("需街道"); }));
  // The county's other township is out of the street's reach.
  v1::Case out;
  auto outside = Act(*stub_, street_, id, Cmd([](auto& c) {
    c.mutable_transfer()->set_to_jurisdiction_id("hn-s01");
    c.mutable_transfer()->set_reason("x");
  }),
                     &out);
  EXPECT_EQ(outside.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(outside.error_message().find("command.transfer.to_jurisdiction_id"), std::string::npos)
      << outside.error_message();
  auto no_reason = Act(
      *stub_, street_, id,
      Cmd([&](auto& c) { c.mutable_transfer()->set_to_jurisdiction_id(ids_.community); }), &out);
  EXPECT_EQ(no_reason.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(no_reason.error_message(), "command.transfer.reason: required");

  v1::Case t = Do(street_, id, Cmd([&](auto& c) {
                    c.mutable_transfer()->set_to_jurisdiction_id(ids_.community);
                    c.mutable_transfer()->set_category("dispute.family");
                    c.mutable_transfer()->set_reason("家庭纠纷, 社区调解");
                  }));
  EXPECT_EQ(t.owner_id(), ids_.community);
  EXPECT_EQ(t.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(t.category(), "dispute.family");
  EXPECT_EQ(t.original_category(), "dispute.neighbour");
  EXPECT_NE(t.deadlines().accept_by_ms(), 0);
  v1::GetHistoryResponse h;
  ASSERT_TRUE(History(*stub_, GridWorker(ids_), id, &h).ok());
  const auto& last = h.entries(h.entries_size() - 1);
  EXPECT_EQ(last.kind(), v1::TRANSITION_KIND_TRANSFER);
  EXPECT_EQ(last.from_category(), "dispute.neighbour");
  EXPECT_EQ(last.category(), "dispute.family");

  // A serious case at the street: dispatched, refused, re-dispatched.
  const std::string s = NewCase("tr-2", v1::SEVERITY_SERIOUS);
  Do(street_, s, Cmd([](auto& c) { c.mutable_accept(); }));
  Do(street_, s, Cmd([&](auto& c) { c.mutable_dispatch()->set_department_id(ids_.police); }));
  v1::Case refused = Do(police_, s, Cmd([](auto& c) { c.mutable_refuse()->set_reason("非治安"); }));
  EXPECT_EQ(refused.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(refused.returns(), 1);
  ASSERT_EQ(refused.summons_size(), 1);
  EXPECT_NE(refused.summons(0).refused_at_ms(), 0);
  EXPECT_EQ(refused.summons(0).refuse_reason(), "非治安");
  EXPECT_NE(refused.deadlines().dispatch_by_ms(), 0);
  v1::Case again =
      Do(street_, s, Cmd([&](auto& c) { c.mutable_dispatch()->set_department_id(ids_.judicial); }));
  EXPECT_EQ(again.handler_department_id(), ids_.judicial);
  // Replaced while still dispatched, before it reported in.
  v1::Case replaced =
      Do(street_, s,
         Cmd([&](auto& c) { c.mutable_dispatch()->set_department_id("dwk-public_security"); }));
  EXPECT_EQ(replaced.state(), v1::CASE_STATE_DISPATCHED);
  EXPECT_EQ(replaced.handler_department_id(), "dwk-public_security");
  // The replaced desk has nothing to refuse any more.
  auto gone =
      Act(*stub_, judicial_, s, Cmd([](auto& c) { c.mutable_refuse()->set_reason("x"); }), &out);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::PERMISSION_DENIED) << gone.error_message();
}

// ---- Two nodes: a transfer down to a township on its own node ----

bool AllLinksUp(LocalFederation& fed) {
  for (const auto& n : fed.plan()) {
    auto stub = v1::NodeService::NewStub(fed.node(n.name).channel());
    grpc::ClientContext ctx;
    v1::GetLinksResponse links;
    if (!stub->GetLinks(&ctx, v1::GetLinksRequest(), &links).ok()) return false;
    for (const auto& l : links.links()) {
      if (!l.connected()) return false;
    }
  }
  return true;
}

TEST(TransferFederationTest, TransferDownToAChildNodeHandsTheCaseOver) {
  ScenarioIds ids = DawukouIds();
  LocalFederation fed({{"county", "dwk", ids.county, {ids.township}, ""},
                       {"township", "dwks01", ids.township, {}, "county"}});
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); })) << fed.Describe();
  auto& county = fed.node("county");
  auto& township = fed.node("township");
  Identity county_staff{"chen.county", "staff", ids.county, ""};
  Identity street{"zhao.street", "staff", ids.township, ""};

  // A major case is the county's: reported on the township node, it moves up.
  v1::ReportCommand r = NeighbourDispute(ids, "fed-tr-1");
  r.set_severity(v1::SEVERITY_MAJOR);
  v1::Case c;
  ASSERT_TRUE(Report(*township.cases(), GridWorker(ids), r, &c).ok());
  const std::string id = c.id();
  ASSERT_TRUE(WaitFor([&] {
    v1::Case got;
    return Get(*county.cases(), county_staff, id, &got).ok() && !got.read_only() &&
           got.owner_id() == ids.county;
  })) << fed.Describe();

  // The county hands it down to the township on the child node.
  v1::Case out;
  auto s = Act(*county.cases(), county_staff, id, Cmd([&](auto& x) {
    x.mutable_transfer()->set_to_jurisdiction_id(ids.township);
    x.mutable_transfer()->set_reason("街道处置");
  }),
               &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.owner_id(), ids.township);
  EXPECT_EQ(out.state(), v1::CASE_STATE_REPORTED);
  // The township node owns it now, with an accept deadline, and acts on it.
  ASSERT_TRUE(WaitFor([&] {
    v1::Case got;
    return Get(*township.cases(), street, id, &got).ok() && !got.read_only() &&
           got.owner_id() == ids.township;
  })) << fed.Describe();
  v1::Case got;
  ASSERT_TRUE(Get(*township.cases(), street, id, &got).ok());
  EXPECT_NE(got.deadlines().accept_by_ms(), 0);
  EXPECT_EQ(got.next_deadline_ms(), got.deadlines().accept_by_ms());
  s = Act(*township.cases(), street, id, Cmd([](auto& x) { x.mutable_accept(); }), &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.state(), v1::CASE_STATE_ACCEPTED);
  // The county node's copy follows, read-only there.
  ASSERT_TRUE(WaitFor([&] {
    v1::Case copy;
    return Get(*county.cases(), county_staff, id, &copy).ok() &&
           copy.state() == v1::CASE_STATE_ACCEPTED;
  })) << fed.Describe();
  v1::GetHistoryResponse h;
  ASSERT_TRUE(History(*township.cases(), street, id, &h).ok());
  bool transferred = false;
  for (const auto& e : h.entries()) {
    transferred = transferred ||
                  (e.kind() == v1::TRANSITION_KIND_TRANSFER &&
                   e.from_jurisdiction_id() == ids.county && e.jurisdiction_id() == ids.township);
  }
  EXPECT_TRUE(transferred);
}

// Sideways across nodes: a township on one child node hands a case to its
// sibling township on another child node; the copy travels through the
// county's node and the sibling's node owns it.
TEST(TransferFederationTest, TransferSidewaysToASiblingsNodeHandsTheCaseOver) {
  ScenarioIds ids = DawukouIds();
  const std::string sibling = "dwk-s02";
  LocalFederation fed({{"county", "dwk", ids.county, {ids.township, sibling}, ""},
                       {"township", "dwks01", ids.township, {}, "county"},
                       {"sibling", "dwks02", sibling, {}, "county"}});
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  ASSERT_TRUE(WaitFor([&] { return AllLinksUp(fed); })) << fed.Describe();
  auto& township = fed.node("township");
  auto& other = fed.node("sibling");
  Identity street{"zhao.street", "staff", ids.township, ""};
  Identity sibling_staff{"sun.street", "staff", sibling, ""};

  // A serious case is the township's.
  v1::ReportCommand r = NeighbourDispute(ids, "fed-tr-2");
  r.set_severity(v1::SEVERITY_SERIOUS);
  v1::Case c;
  ASSERT_TRUE(Report(*township.cases(), GridWorker(ids), r, &c).ok());
  ASSERT_EQ(c.owner_id(), ids.township);
  v1::Case out;
  auto s = Act(*township.cases(), street, c.id(), Cmd([&](auto& x) {
    x.mutable_transfer()->set_to_jurisdiction_id(sibling);
    x.mutable_transfer()->set_reason("属相邻街道");
  }),
               &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.owner_id(), sibling);
  ASSERT_TRUE(WaitFor([&] {
    v1::Case got;
    return Get(*other.cases(), sibling_staff, c.id(), &got).ok() && !got.read_only() &&
           got.owner_id() == sibling && got.state() == v1::CASE_STATE_REPORTED;
  })) << fed.Describe();
  s = Act(*other.cases(), sibling_staff, c.id(), Cmd([](auto& x) { x.mutable_accept(); }), &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_NE(out.deadlines().dispatch_by_ms(), 0);
}

}  // namespace
}  // namespace whistle::testing
