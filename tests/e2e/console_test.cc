// whistle-console against a real whistled: the JSON API answers what gRPC answers,
// the watch stream carries transitions made over gRPC and resumes once, the node
// decides every permission, hostile requests get their status and change nothing,
// static files stay inside --assets, a node that goes away is 503 until it is back,
// bounded streams, SIGTERM, and the command line.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "core/topology.h"
#include "tests/e2e/certs.h"
#include "tests/e2e/console_process.h"
#include "tests/e2e/link_support.h"
#include "tests/e2e/scenario.h"
#include "tests/e2e/whistled_process.h"
#include "whistle/v1/service.grpc.pb.h"
#include "whistle/v1/watch.pb.h"

namespace whistle::testing {
namespace {

namespace pb = google::protobuf;
using Clock = std::chrono::steady_clock;

const std::string kJson = "Content-Type: application/json";

std::string Bearer(const Identity& who) {
  return "Authorization: Bearer " + MintTestToken(who.user, who.role, who.jurisdiction, "");
}

// The body as `T`, or a test failure naming it.
template <class T>
T Parse(const std::string& json) {
  T out;
  auto s = pb::util::JsonStringToMessage(json, &out);
  EXPECT_TRUE(s.ok()) << s.ToString() << " in " << json.substr(0, 300);
  return out;
}

// The "code" of a JSON error body.
std::string ErrorCode(const HttpResponse& r) {
  size_t at = r.body.find("\"code\":\"");
  if (at == std::string::npos) return "";
  at += 8;
  return r.body.substr(at, r.body.find('"', at) - at);
}

// A grid of another county (惠农区) than DawukouIds()'s.
std::string HuinongGrid() {
  auto topology = core::Topology::Build(core::ShizuishanTopology());
  for (const auto& j : (*topology)->config().jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID && (*topology)->IsWithin(j.id(), "hn")) return j.id();
  }
  return "";
}

class ConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    assets_ = std::make_unique<TempDir>();
    const std::string& a = assets_->path();
    std::filesystem::create_directories(a + "/assets");
    std::ofstream(a + "/index.html") << "<!doctype html><title>console</title>";
    std::ofstream(a + "/assets/app-1a2b.js") << "console.log('ok');";
    std::ofstream(a + "/.env") << "SECRET=1";
    std::filesystem::create_symlink("/etc/passwd", a + "/assets/out.js");
    data_ = std::make_unique<TempDir>();
    node_ = std::make_unique<WhistledProcess>(data_->path() + "/node");
    ASSERT_TRUE(node_->running()) << node_->LogTail();
    console_ = std::make_unique<ConsoleProcess>(
        node_->address(), std::vector<std::string>{"--keepalive-ms", "300", "--assets", a});
    ASSERT_TRUE(console_->running()) << console_->LogText();
    cases_ = node_->cases();
  }

  int port() const { return console_->port(); }

  HttpResponse Rpc(const std::string& method, const Identity& who, const std::string& body) {
    return Http(port(), "POST", "/api/rpc/" + method, {Bearer(who), kJson}, body);
  }

  // A case reported over gRPC by the Dawukou grid worker: REPORTED, owned by the community.
  v1::Case ReportOverGrpc(const std::string& request_id) {
    grpc::ClientContext ctx;
    GridWorker(ids_).Apply(ctx);
    v1::ReportCaseRequest req;
    *req.mutable_report() = NeighbourDispute(ids_, request_id);
    v1::Case out;
    grpc::Status s = cases_->Report(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  v1::Case ActOverGrpc(const Identity& who, const std::string& case_id, v1::Command command) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::CaseActionRequest req;
    req.set_case_id(case_id);
    *req.mutable_command() = std::move(command);
    v1::Case out;
    grpc::Status s = cases_->Act(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  v1::Case GetOverGrpc(const std::string& case_id) {
    grpc::ClientContext ctx;
    leader_.Apply(ctx);
    v1::GetCaseRequest req;
    req.set_case_id(case_id);
    v1::Case out;
    grpc::Status s = cases_->Get(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  v1::CountCasesResponse CountOverGrpc(const std::string& jurisdiction) {
    grpc::ClientContext ctx;
    leader_.Apply(ctx);
    v1::CountCasesRequest req;
    req.set_jurisdiction_id(jurisdiction);
    v1::CountCasesResponse out;
    grpc::Status s = cases_->Count(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  std::unique_ptr<TempDir> assets_, data_;
  std::unique_ptr<WhistledProcess> node_;
  std::unique_ptr<ConsoleProcess> console_;
  std::unique_ptr<v1::CaseService::Stub> cases_;
  ScenarioIds ids_ = DawukouIds();
  Identity leader_{"mayor", "leader", "szs", ""};
  Identity community_{"li.community", "staff", ids_.community, ""};
};

TEST_F(ConsoleTest, RpcAnswersWhatGrpcAnswers) {
  ReportOverGrpc("console-rpc-0");
  // Count and GetJurisdiction: the same message either way.
  HttpResponse count = Rpc("CaseService/Count", leader_, R"({"jurisdictionId":"dwk"})");
  ASSERT_EQ(count.status, 200) << count.body;
  EXPECT_EQ(count.header("content-type"), "application/json");
  EXPECT_NE(count.body.find("\"state\":\"CASE_STATE_REPORTED\",\"count\":\"1\""), std::string::npos)
      << count.body;
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(Parse<v1::CountCasesResponse>(count.body),
                                                   CountOverGrpc("dwk")));
  HttpResponse view =
      Rpc("TopologyService/GetJurisdiction", leader_, "{\"id\":\"" + ids_.township + "\"}");
  ASSERT_EQ(view.status, 200) << view.body;
  {
    grpc::ClientContext ctx;
    leader_.Apply(ctx);
    v1::GetJurisdictionRequest req;
    req.set_id(ids_.township);
    v1::JurisdictionView grpc_view;
    ASSERT_TRUE(node_->topology()->GetJurisdiction(&ctx, req, &grpc_view).ok());
    EXPECT_TRUE(
        pb::util::MessageDifferencer::Equals(Parse<v1::JurisdictionView>(view.body), grpc_view));
    EXPECT_GT(grpc_view.departments_size(), 0);
  }

  // A report and an accept through the console change the case as gRPC sees it.
  HttpResponse reported =
      Rpc("CaseService/Report", GridWorker(ids_),
          "{\"report\":{\"requestId\":\"console-rpc-1\",\"category\":\"dispute.neighbour\","
          "\"severity\":\"SEVERITY_GENERAL\",\"place\":{\"gridId\":\"" +
              ids_.grid + "\",\"address\":\"3号楼\"},\"text\":\"楼上漏水\"}}");
  ASSERT_EQ(reported.status, 200) << reported.body;
  v1::Case made = Parse<v1::Case>(reported.body);
  EXPECT_EQ(made.state(), v1::CASE_STATE_REPORTED);
  EXPECT_EQ(made.text(), "楼上漏水");
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(made, GetOverGrpc(made.id())));

  HttpResponse accepted =
      Rpc("CaseService/Act", community_,
          "{\"caseId\":\"" + made.id() + "\",\"command\":{\"accept\":{\"note\":\"收到\"}}}");
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_EQ(Parse<v1::Case>(accepted.body).state(), v1::CASE_STATE_ACCEPTED);
  EXPECT_EQ(GetOverGrpc(made.id()).state(), v1::CASE_STATE_ACCEPTED);

  HttpResponse history = Rpc("CaseService/History", leader_, "{\"caseId\":\"" + made.id() + "\"}");
  ASSERT_EQ(history.status, 200) << history.body;
  EXPECT_EQ(Parse<v1::GetHistoryResponse>(history.body).entries_size(), 2);
  HttpResponse after = Rpc("CaseService/Count", leader_, R"({"jurisdictionId":"dwk"})");
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(Parse<v1::CountCasesResponse>(after.body),
                                                   CountOverGrpc("dwk")));
  // The node's own refusals come back with their status and message.
  HttpResponse again = Rpc("CaseService/Act", community_,
                           "{\"caseId\":\"" + made.id() + "\",\"command\":{\"accept\":{}}}");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_EQ(ErrorCode(again), "FAILED_PRECONDITION") << again.body;
  HttpResponse missing = Rpc("CaseService/Get", leader_, R"({"caseId":"szs-999999999999"})");
  EXPECT_EQ(missing.status, 404) << missing.body;

  // Calls on one kept-alive connection (as a browser makes them) answer at once: no
  // Nagle/delayed-ACK stall (it was ~40 ms a call when headers went out line by line).
  {
    HttpConnection connection(port());
    const std::string body = R"({"jurisdictionId":"dwk"})";
    const std::string request =
        "POST /api/rpc/CaseService/Count HTTP/1.1\r\nHost: x\r\n" + Bearer(leader_) + "\r\n" +
        kJson + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    std::vector<double> ms;
    for (int i = 0; i < 21; ++i) {
      auto t = Clock::now();
      HttpResponse r = connection.Send(request);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      ASSERT_EQ(r.status, 200) << i << ": " << r.body;
      EXPECT_TRUE(pb::util::MessageDifferencer::Equals(Parse<v1::CountCasesResponse>(r.body),
                                                       Parse<v1::CountCasesResponse>(after.body)));
    }
    std::sort(ms.begin(), ms.end());
    EXPECT_LT(ms[10], 20.0) << "median of 21 calls on one connection";
  }

  HttpResponse links = Http(port(), "GET", "/api/links", {Bearer(leader_)});
  ASSERT_EQ(links.status, 200) << links.body;
  EXPECT_NE(links.body.find("\"nodeId\""), std::string::npos) << links.body;
  // One log line a request, never the token.
  std::string log = console_->LogText();
  EXPECT_NE(log.find("\"path\":\"/api/rpc/CaseService/Act\""), std::string::npos) << log;
  EXPECT_EQ(log.find(MintTestToken(leader_.user, leader_.role, leader_.jurisdiction, "")),
            std::string::npos);
}

TEST_F(ConsoleTest, WatchCarriesGrpcTransitionsAndResumesOnce) {
  SseStream watch(port(), "/api/watch?jurisdictionId=dwk", {Bearer(leader_)});
  ASSERT_EQ(watch.Open(), 200) << watch.response().body;
  EXPECT_EQ(watch.response().header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(watch.response().header("x-content-type-options"), "nosniff");

  auto start = Clock::now();
  v1::Case made = ReportOverGrpc("console-watch-1");
  SseEvent first;
  do {
    ASSERT_TRUE(watch.Next(&first, 3000)) << "no change event";
  } while (first.ping);
  auto latency = Clock::now() - start;
  EXPECT_LT(latency, std::chrono::seconds(1));
  EXPECT_EQ(first.event, "change");
  v1::Change change = Parse<v1::Change>(first.data);
  EXPECT_EQ(change.token(), first.id);
  EXPECT_EQ(change.case_change().case_id(), made.id());
  EXPECT_EQ(change.case_change().kind(), v1::TRANSITION_KIND_REPORT);
  // Idle: ": ping" keeps it open (--keepalive-ms 300).
  SseEvent ping;
  ASSERT_TRUE(watch.Next(&ping, 2000));
  EXPECT_TRUE(ping.ping);
  watch.Close();

  // Two transitions while nobody watches; resuming after the first event gets them once.
  v1::Command accept;
  accept.mutable_accept();
  ActOverGrpc(community_, made.id(), accept);
  v1::Command escalate;
  escalate.mutable_escalate()->set_reason("调解未果");
  ActOverGrpc(community_, made.id(), escalate);

  auto resumed_seqs = [&](const std::string& path, const std::vector<std::string>& headers) {
    SseStream resumed(port(), path, headers);
    EXPECT_EQ(resumed.Open(), 200) << resumed.response().body;
    std::vector<int64_t> seqs;
    SseEvent e;
    auto until = Clock::now() + std::chrono::milliseconds(1500);
    while (Clock::now() < until && resumed.Next(&e, 300)) {
      if (e.ping) continue;
      v1::Change c = Parse<v1::Change>(e.data);
      EXPECT_EQ(c.token(), e.id);
      if (c.case_change().case_id() == made.id()) seqs.push_back(c.case_change().seq());
    }
    return seqs;
  };
  EXPECT_EQ(resumed_seqs("/api/watch?jurisdictionId=dwk",
                         {Bearer(leader_), "Last-Event-ID: " + first.id}),
            (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(resumed_seqs("/api/watch?jurisdictionId=dwk&fromToken=" + first.id, {Bearer(leader_)}),
            (std::vector<int64_t>{2, 3}));

  // Refusals the node gives at once are HTTP errors; bad queries never reach it.
  SseStream stale(port(), "/api/watch?jurisdictionId=dwk&fromToken=99999999", {Bearer(leader_)});
  EXPECT_EQ(stale.Open(), 400);
  EXPECT_EQ(ErrorCode(stale.response()), "OUT_OF_RANGE") << stale.response().body;
  SseStream latin1(port(), "/api/watch", {Bearer(leader_), "Last-Event-ID: 1\xe9"});
  EXPECT_EQ(latin1.Open(), 400);
  EXPECT_NE(latin1.response().body.find("Last-Event-ID"), std::string::npos);
  SseStream unknown(port(), "/api/watch?jurisdiction=dwk", {Bearer(leader_)});
  EXPECT_EQ(unknown.Open(), 400);
  EXPECT_NE(unknown.response().body.find("jurisdiction"), std::string::npos);
}

TEST_F(ConsoleTest, TheNodeDecidesEveryPermission) {
  v1::Case made = ReportOverGrpc("console-auth-1");
  v1::CountCasesResponse before = CountOverGrpc("szs");
  const std::string act =
      "{\"caseId\":\"" + made.id() + "\",\"command\":{\"accept\":{\"note\":\"x\"}}}";
  const std::string token = MintTestToken(community_.user, community_.role, ids_.community, "");

  struct Case {
    const char* name;
    std::vector<std::string> headers;
    std::string code;
  };
  std::vector<Case> unauthenticated = {
      {"no token", {kJson}, "UNAUTHENTICATED"},
      {"not a JWT (the node says so)",
       {kJson, "Authorization: Bearer not-a-jwt"},
       "UNAUTHENTICATED"},
      {"another scheme", {kJson, "Authorization: Basic " + token}, "UNAUTHENTICATED"},
      {"a space in the token", {kJson, "Authorization: Bearer ab cd"}, "UNAUTHENTICATED"},
      {"a token over 8 KiB",
       {kJson, "Authorization: Bearer " + std::string(9000, 'a')},
       "UNAUTHENTICATED"},
      {"two tokens",
       {kJson, "Authorization: Bearer " + token, "Authorization: Bearer " + token},
       "UNAUTHENTICATED"},
      {"a tampered token",
       {kJson, "Authorization: Bearer " + token.substr(0, token.size() - 4) + "AAAA"},
       "UNAUTHENTICATED"},
  };
  for (const auto& c : unauthenticated) {
    HttpResponse r = Http(port(), "POST", "/api/rpc/CaseService/Act", c.headers, act);
    EXPECT_EQ(r.status, 401) << c.name << ": " << r.body;
    EXPECT_EQ(ErrorCode(r), c.code) << c.name << ": " << r.body;
    EXPECT_NE(r.body.find("\"message\":\""), std::string::npos) << c.name;
  }
  EXPECT_EQ(Http(port(), "GET", "/api/links", {}).status, 401);
  EXPECT_EQ(Http(port(), "GET", "/api/links", {"Authorization: Bearer x.y.z"}).status, 401);
  SseStream anonymous(port(), "/api/watch?jurisdictionId=dwk", {});
  EXPECT_EQ(anonymous.Open(), 401);

  // A grid worker of 惠农区 sees and does nothing in 大武口区.
  Identity outsider{"liu.grid", "grid_worker", HuinongGrid(), ""};
  ASSERT_FALSE(outsider.jurisdiction.empty());
  HttpResponse count = Rpc("CaseService/Count", outsider, R"({"jurisdictionId":"dwk"})");
  EXPECT_EQ(count.status, 403) << count.body;
  EXPECT_EQ(ErrorCode(count), "PERMISSION_DENIED");
  HttpResponse get = Rpc("CaseService/Get", outsider, "{\"caseId\":\"" + made.id() + "\"}");
  EXPECT_EQ(get.status, 403) << get.body;
  HttpResponse acted = Rpc("CaseService/Act", outsider, act);
  EXPECT_EQ(acted.status, 403) << acted.body;
  SseStream watch(port(), "/api/watch?jurisdictionId=dwk", {Bearer(outsider)});
  EXPECT_EQ(watch.Open(), 403) << watch.response().body;
  // Nothing changed.
  EXPECT_EQ(GetOverGrpc(made.id()).state(), v1::CASE_STATE_REPORTED);
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(before, CountOverGrpc("szs")));
  // The same body with the owner's token does act (the refusals above could have failed).
  HttpResponse ok = Http(port(), "POST", "/api/rpc/CaseService/Act",
                         {kJson, "Authorization: Bearer " + token}, act);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(GetOverGrpc(made.id()).state(), v1::CASE_STATE_ACCEPTED);
}

TEST_F(ConsoleTest, HostileRequestsGetTheirStatusAndChangeNothing) {
  v1::Case made = ReportOverGrpc("console-hostile-1");
  v1::CountCasesResponse before = CountOverGrpc("szs");
  const std::string id = made.id();
  const std::string act = "{\"caseId\":\"" + id + "\",\"command\":{\"accept\":{\"note\":\"x\"}}}";
  const std::string auth = Bearer(community_);
  struct Case {
    const char* name;
    std::string method, path;
    std::vector<std::string> headers;
    std::string body;
    int status;
    std::string mentions;  // in the body
  };
  std::vector<Case> cases = {
      {"malformed JSON",
       "POST",
       "/api/rpc/CaseService/Act",
       {auth, kJson},
       act.substr(0, act.size() - 3),
       400,
       "INVALID_ARGUMENT"},
      {"unknown field",
       "POST",
       "/api/rpc/CaseService/Act",
       {auth, kJson},
       "{\"caseId\":\"" + id + "\",\"sneaky\":1,\"command\":{\"accept\":{}}}",
       400,
       "sneaky"},
      {"wrong type",
       "POST",
       "/api/rpc/CaseService/Act",
       {auth, kJson},
       "{\"caseId\":7,\"command\":{\"accept\":{}}}",
       400,
       "case_id"},
      {"unknown enum",
       "POST",
       "/api/rpc/CaseService/List",
       {auth, kJson},
       R"({"state":"CASE_STATE_BOGUS"})",
       400,
       "INVALID_ARGUMENT"},
      {"invalid UTF-8",
       "POST",
       "/api/rpc/CaseService/Act",
       {auth, kJson},
       "{\"caseId\":\"" + id + "\",\"command\":{\"accept\":{\"note\":\"\xff\xfe\"}}}",
       400,
       "UTF-8"},
      {"over 1 MiB",
       "POST",
       "/api/rpc/CaseService/Act",
       {auth, kJson},
       "{\"caseId\":\"" + id + "\",\"command\":{\"accept\":{\"note\":\"" +
           std::string((1 << 20) + 10, 'a') + "\"}}}",
       413,
       "1 MiB"},
      {"not JSON",
       "POST",
       "/api/rpc/CaseService/Act",
       {auth, "Content-Type: text/plain"},
       act,
       415,
       "application/json"},
      {"unknown service", "POST", "/api/rpc/NoService/Act", {auth, kJson}, act, 404, "NoService"},
      {"unknown method", "POST", "/api/rpc/CaseService/Erase", {auth, kJson}, act, 404, "Erase"},
      {"admin",
       "POST",
       "/api/rpc/AdminService/SetClock",
       {auth, kJson},
       R"({"nowMs":"1"})",
       404,
       "NOT_FOUND"},
      {"admin backup",
       "POST",
       "/api/rpc/AdminService/Backup",
       {auth, kJson},
       "{}",
       404,
       "NOT_FOUND"},
      {"node link", "POST", "/api/rpc/LinkService/Connect", {auth, kJson}, "{}", 404, "NOT_FOUND"},
      {"streaming", "POST", "/api/rpc/WatchService/Watch", {auth, kJson}, "{}", 404, "NOT_FOUND"},
      {"node service beyond GetLinks",
       "POST",
       "/api/rpc/NodeService/Other",
       {auth, kJson},
       "{}",
       404,
       "NOT_FOUND"},
      {"extra segment", "POST", "/api/rpc/CaseService/Act/x", {auth, kJson}, act, 404, "NOT_FOUND"},
      {"escaped method",
       "POST",
       "/api/rpc/CaseService/%41ct",
       {auth, kJson},
       act,
       404,
       "NOT_FOUND"},
      {"GET an rpc", "GET", "/api/rpc/CaseService/Act", {auth}, "", 405, "POST"},
      {"POST a watch", "POST", "/api/watch", {auth, kJson}, "{}", 405, "GET"},
      {"PUT a file", "PUT", "/index.html", {}, "x", 405, "GET"},
      {"DELETE healthz", "DELETE", "/healthz", {}, "", 405, "GET"},
      {"no such API", "GET", "/api/cases", {auth}, "", 404, "NOT_FOUND"},
      {"traversal", "GET", "/../etc/passwd", {}, "", 400, "path"},
      {"encoded traversal", "GET", "/%2e%2e/etc/passwd", {}, "", 400, "path"},
      {"encoded slashes", "GET", "/%2E%2E%2Fetc%2Fpasswd", {}, "", 400, "path"},
      {"traversal from assets", "GET", "/assets/..%2f..%2f..%2fetc/passwd", {}, "", 400, "path"},
      {"NUL", "GET", "/index.html%00.js", {}, "", 400, "control"},
      {"bad escape", "GET", "/%zz", {}, "", 400, "escape"},
      {"backslash", "GET", "/..%5c..%5cetc/passwd", {}, "", 400, "path"},
      {"hidden file", "GET", "/.env", {}, "", 400, "path"},
      {"symlink out of assets", "GET", "/assets/out.js", {}, "", 404, "no such file"},
  };
  for (const auto& c : cases) {
    HttpResponse r = Http(port(), c.method, c.path, c.headers, c.body);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body.substr(0, 300);
    EXPECT_NE(r.body.find(c.mentions), std::string::npos) << c.name << ": " << r.body;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << c.name;
    if (c.status == 405) {
      EXPECT_FALSE(r.header("allow").empty()) << c.name;
    }
  }
  // Bytes no browser sends: civetweb or the console refuses them with 400 (a header over
  // 16 KiB may also be 413/431).
  const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  EXPECT_EQ(HttpRaw(port(), head + "X-A: a\rb\r\n\r\n").status, 400) << "bare CR";
  EXPECT_EQ(HttpRaw(port(), head + std::string("X-A: a\0b\r\n\r\n", 12)).status, 400) << "NUL";
  EXPECT_EQ(HttpRaw(port(), "POST /api/rpc/CaseService/Act HTTP/1.1\r\nHost: x\r\n" + auth +
                                "\x01\r\n" + kJson + "\r\nContent-Length: " +
                                std::to_string(act.size()) + "\r\n\r\n" + act)
                .status,
            400)
      << "control byte in Authorization";
  int huge = HttpRaw(port(), head + "X-A: " + std::string(20000, 'a') + "\r\n\r\n").status;
  EXPECT_TRUE(huge == 400 || huge == 413 || huge == 431) << huge;
  EXPECT_EQ(HttpRaw(port(), "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status / 100, 4);

  // Nothing changed; the console still serves; the same valid body does act.
  EXPECT_EQ(GetOverGrpc(id).state(), v1::CASE_STATE_REPORTED);
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(before, CountOverGrpc("szs")));
  HttpResponse ok = Http(port(), "POST", "/api/rpc/CaseService/Act", {auth, kJson}, act);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(GetOverGrpc(id).state(), v1::CASE_STATE_ACCEPTED);
}

TEST_F(ConsoleTest, ServesThePageWithSecurityHeaders) {
  HttpResponse root = Http(port(), "GET", "/");
  ASSERT_EQ(root.status, 200);
  EXPECT_EQ(root.body, "<!doctype html><title>console</title>");
  EXPECT_EQ(root.header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(root.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(root.header("cache-control"), "no-cache");
  std::string csp = root.header("content-security-policy");
  EXPECT_EQ(csp.rfind("default-src 'self'", 0), 0u) << csp;
  EXPECT_NE(csp.find("script-src 'self';"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;

  HttpResponse js = Http(port(), "GET", "/assets/app-1a2b.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_NE(js.header("cache-control").find("immutable"), std::string::npos);
  // A route of the page is the page; a missing file is not.
  EXPECT_EQ(Http(port(), "GET", "/tree/dwk-s01").body, root.body);
  EXPECT_EQ(Http(port(), "GET", "/assets/missing-1.js").status, 404);
  HttpResponse head = HttpRaw(port(), "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(root.body.size()));
  // Probes and API answers carry the same headers.
  HttpResponse healthz = Http(port(), "GET", "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(healthz.body, "ok\n");
  EXPECT_EQ(healthz.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(Http(port(), "GET", "/readyz").status, 200);
  HttpResponse api = Http(port(), "GET", "/api/links", {});
  EXPECT_EQ(api.header("cache-control"), "no-store");
  EXPECT_FALSE(api.header("content-security-policy").empty());
}

TEST_F(ConsoleTest, NodeDownIsUnavailableUntilItIsBack) {
  SseStream watch(port(), "/api/watch?jurisdictionId=dwk", {Bearer(leader_)});
  ASSERT_EQ(watch.Open(), 200);
  node_->Kill();
  // The open stream ends with one error event.
  SseEvent e;
  do {
    ASSERT_TRUE(watch.Next(&e, 5000)) << "the stream neither erred nor ended";
  } while (e.ping);
  EXPECT_EQ(e.event, "error");
  EXPECT_NE(e.data.find("\"code\":\"UNAVAILABLE\""), std::string::npos) << e.data;
  EXPECT_FALSE(watch.Next(&e, 2000));
  EXPECT_TRUE(watch.ended());

  HttpResponse count = Rpc("CaseService/Count", leader_, "{}");
  EXPECT_EQ(count.status, 503) << count.body;
  EXPECT_EQ(ErrorCode(count), "UNAVAILABLE");
  EXPECT_EQ(Http(port(), "GET", "/readyz").status, 503);
  EXPECT_EQ(Http(port(), "GET", "/healthz").status, 200);  // the console itself is fine
  SseStream refused(port(), "/api/watch", {Bearer(leader_)});
  EXPECT_EQ(refused.Open(), 503);

  ASSERT_TRUE(node_->Restart()) << node_->LogTail();
  auto until = Clock::now() + std::chrono::seconds(10);
  int ready = 0;
  while (Clock::now() < until && (ready = Http(port(), "GET", "/readyz").status) != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready, 200);
  EXPECT_EQ(Rpc("CaseService/Count", leader_, "{}").status, 200);
}

TEST_F(ConsoleTest, StreamsAreBoundedAndEndOnSigterm) {
  ConsoleProcess small(node_->address(), {"--max-watch-streams", "2", "--keepalive-ms", "200"});
  ASSERT_TRUE(small.running()) << small.LogText();
  auto one = std::make_unique<SseStream>(small.port(), "/api/watch", std::vector{Bearer(leader_)});
  SseStream two(small.port(), "/api/watch", {Bearer(leader_)});
  ASSERT_EQ(one->Open(), 200);
  ASSERT_EQ(two.Open(), 200);
  SseStream three(small.port(), "/api/watch", {Bearer(leader_)});
  EXPECT_EQ(three.Open(), 503);
  EXPECT_EQ(three.response().header("retry-after"), "5");
  // Unary calls are not held up by the streams.
  EXPECT_EQ(Http(small.port(), "POST", "/api/rpc/CaseService/Count", {Bearer(leader_), kJson}, "{}")
                .status,
            200);
  // A browser that goes away frees its stream at the next write (a ping).
  one.reset();
  auto until = Clock::now() + std::chrono::seconds(3);
  int status = 0;
  while (Clock::now() < until) {
    SseStream again(small.port(), "/api/watch", {Bearer(leader_)});
    if ((status = again.Open()) == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200);

  // SIGTERM: the open stream is ended cleanly (its last chunk) and the process exits 0.
  auto start = Clock::now();
  EXPECT_EQ(small.Terminate(), 0);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  SseEvent e;
  while (two.Next(&e, 2000)) {
  }
  EXPECT_TRUE(two.ended());
}

TEST(ConsoleTlsTest, SpeaksTlsToTheNodeWithTheTlsFlags) {
  TempDir dir;
  TestCa ca(dir.path(), "whistle");
  CertFiles node_cert = ca.Issue("szs", "szs", {"szs"});
  CertFiles console_cert = ca.Issue("console", "console", {"console"});
  TestCa stranger(dir.path(), "stranger");
  ASSERT_TRUE(ca.ok() && stranger.ok()) << ca.error() << stranger.error();
  NodeProcess node(dir.path() + "/node",
                   {"--node-id", "szs", "--tls-cert-file", node_cert.cert, "--tls-key-file",
                    node_cert.key, "--tls-ca-file", ca.ca_file()},
                   TlsCredentials(ca.ca_file(), console_cert.cert, console_cert.key));
  ASSERT_TRUE(node.running()) << node.LogTail();
  const std::string auth = "Authorization: Bearer " + MintTestToken("mayor", "leader", "szs", "");

  ConsoleProcess tls(node.address(),
                     {"--tls-ca-file", ca.ca_file(), "--tls-cert-file", console_cert.cert,
                      "--tls-key-file", console_cert.key, "--tls-server-name", "szs"});
  ASSERT_TRUE(tls.running()) << tls.LogText();
  EXPECT_EQ(Http(tls.port(), "GET", "/readyz").status, 200);
  HttpResponse count = Http(tls.port(), "POST", "/api/rpc/CaseService/Count", {auth, kJson}, "{}");
  EXPECT_EQ(count.status, 200) << count.body;
  HttpResponse links = Http(tls.port(), "GET", "/api/links", {auth});
  EXPECT_NE(links.body.find("\"tls\":true"), std::string::npos) << links.body;

  // Plaintext, or a CA that did not sign the node: the node is unreachable.
  ConsoleProcess plain(node.address());
  ConsoleProcess untrusting(node.address(),
                            {"--tls-ca-file", stranger.ca_file(), "--tls-server-name", "szs"});
  for (ConsoleProcess* c : {&plain, &untrusting}) {
    ASSERT_TRUE(c->running()) << c->LogText();
    EXPECT_EQ(Http(c->port(), "GET", "/readyz").status, 503);
    HttpResponse refused =
        Http(c->port(), "POST", "/api/rpc/CaseService/Count", {auth, kJson}, "{}");
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(ErrorCode(refused), "UNAVAILABLE") << refused.body;
  }
}

TEST(ConsoleUsageTest, HelpVersionAndBadFlags) {
  auto [help_rc, help] = RunConsole({"--help"});
  EXPECT_EQ(help_rc, 0);
  EXPECT_NE(help.find("--node HOST:PORT"), std::string::npos) << help;
  EXPECT_NE(help.find("--assets DIR"), std::string::npos) << help;
  auto [version_rc, version] = RunConsole({"--version"});
  EXPECT_EQ(version_rc, 0);
  EXPECT_EQ(version.rfind("whistle-console ", 0), 0u) << version;

  struct Bad {
    std::vector<std::string> flags;
    std::string names;
  };
  std::vector<Bad> bad = {
      {{"--bogus"}, "--bogus"},
      {{"--node"}, "--node"},
      {{"--listen", "no-port"}, "--listen"},
      {{"--node", "127.0.0.1:99999"}, "--node"},
      {{"--max-watch-streams", "0"}, "--max-watch-streams"},
      {{"--rpc-timeout-ms", "ten"}, "--rpc-timeout-ms"},
      {{"--assets", "/nonexistent-whistle-assets"}, "--assets"},
      {{"--tls-cert-file", "/nonexistent.pem"}, "--tls-key-file"},
      {{"--tls-ca-file", "/nonexistent.pem"}, "--tls-ca-file"},
  };
  for (const auto& b : bad) {
    auto [rc, out] = RunConsole(b.flags);
    EXPECT_EQ(rc, 2) << b.flags[0] << ": " << out;
    EXPECT_NE(out.find(b.names), std::string::npos) << b.flags[0] << ": " << out;
  }
}

}  // namespace
}  // namespace whistle::testing
