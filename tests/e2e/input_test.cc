// Input that cannot poison the store, damaged records that never take down a
// listing, a history or the timer, and idempotency per (user, request id)
// whatever the owner; against real whistled processes.
//
// Raw HTTP/2 (tests/e2e/raw_http2.h) carries what gRPC's own client refuses to
// send: header values and message bytes that are not UTF-8.
#include <arpa/inet.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/policy.h"
#include "core/text.h"
#include "core/topology.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/raw_http2.h"
#include "tests/e2e/scenario.h"

namespace whistle::testing {
namespace {

using namespace std::chrono_literals;

const std::string kLatin1User = "M\xfcller";  // "Müller" in Latin-1
constexpr char kReportPath[] = "/whistle.v1.CaseService/Report";
constexpr char kActPath[] = "/whistle.v1.CaseService/Act";
// Bytes of an answer that quotes caller input: a short prefix, never the input.
constexpr size_t kMaxAnswerBytes = 2048;

std::string Show(const RawResponse& r) {
  std::ostringstream out;
  out << "answered=" << r.answered << " http=" << r.http_status << " grpc=" << r.grpc_status
      << " message=" << ::testing::PrintToString(r.grpc_message) << " reset=" << r.reset
      << " error=" << r.error;
  return out.str();
}

// ---- Calls with either identity (token or, with --dev-header-identity, headers) ----

struct Caller {
  Identity who;
  bool headers = false;  // the node runs with --dev-header-identity
  void Apply(grpc::ClientContext& ctx) const {
    if (headers) {
      who.ApplyHeaders(ctx);
    } else {
      who.Apply(ctx);
    }
  }
  // The same identity as raw metadata.
  RawHeaders Raw() const {
    if (!headers)
      return {{"authorization",
               "Bearer " + MintTestToken(who.user, who.role, who.jurisdiction, who.department)}};
    RawHeaders h = {{"x-whistle-user", who.user}, {"x-whistle-role", who.role}};
    if (!who.jurisdiction.empty()) h.emplace_back("x-whistle-jurisdiction", who.jurisdiction);
    if (!who.department.empty()) h.emplace_back("x-whistle-department", who.department);
    return h;
  }
};

grpc::Status DoReport(WhistledProcess& node, const Caller& c, const v1::ReportCommand& report,
                      v1::Case* out) {
  grpc::ClientContext ctx;
  c.Apply(ctx);
  v1::ReportCaseRequest req;
  *req.mutable_report() = report;
  return node.cases()->Report(&ctx, req, out);
}

grpc::Status DoAct(WhistledProcess& node, const Caller& c, const std::string& id,
                   const v1::Command& command, v1::Case* out) {
  grpc::ClientContext ctx;
  c.Apply(ctx);
  v1::CaseActionRequest req;
  req.set_case_id(id);
  *req.mutable_command() = command;
  return node.cases()->Act(&ctx, req, out);
}

grpc::Status DoGet(WhistledProcess& node, const Caller& c, const std::string& id, v1::Case* out) {
  grpc::ClientContext ctx;
  c.Apply(ctx);
  v1::GetCaseRequest req;
  req.set_case_id(id);
  return node.cases()->Get(&ctx, req, out);
}

grpc::Status DoHistory(WhistledProcess& node, const Caller& c, const std::string& id,
                       v1::GetHistoryResponse* out) {
  grpc::ClientContext ctx;
  c.Apply(ctx);
  v1::GetHistoryRequest req;
  req.set_case_id(id);
  return node.cases()->History(&ctx, req, out);
}

grpc::Status DoCount(WhistledProcess& node, const Caller& c, const std::string& where,
                     v1::CountCasesResponse* out) {
  grpc::ClientContext ctx;
  c.Apply(ctx);
  v1::CountCasesRequest req;
  req.set_jurisdiction_id(where);
  return node.cases()->Count(&ctx, req, out);
}

// Every page of a listing: readable cases and the ids of unreadable ones.
grpc::Status DoListAll(WhistledProcess& node, const Caller& c, const std::string& where,
                       std::vector<v1::Case>* cases, std::vector<std::string>* unreadable) {
  std::string token;
  for (int pages = 0; pages < 1000; ++pages) {
    grpc::ClientContext ctx;
    c.Apply(ctx);
    v1::ListCasesRequest req;
    req.set_jurisdiction_id(where);
    req.set_page_size(500);
    req.set_page_token(token);
    v1::ListCasesResponse resp;
    grpc::Status s = node.cases()->List(&ctx, req, &resp);
    if (!s.ok()) return s;
    for (auto& one : *resp.mutable_cases()) cases->push_back(std::move(one));
    for (auto& id : *resp.mutable_unreadable_case_ids()) unreadable->push_back(std::move(id));
    token = resp.next_page_token();
    if (token.empty()) return s;
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "too many pages");
}

int64_t Total(const v1::CountCasesResponse& counts) {
  int64_t n = 0;
  for (const auto& row : counts.counts()) n += row.count();
  return n;
}

// What a user sees of the whole city: counts, every listed case, and the
// history of `watched`. Equal before and after = nothing changed.
std::string CitySnapshot(WhistledProcess& node, const Caller& leader,
                         const std::vector<std::string>& watched) {
  std::string out;
  v1::CountCasesResponse counts;
  grpc::Status s = DoCount(node, leader, "szs", &counts);
  EXPECT_TRUE(s.ok()) << s.error_message();
  out += counts.SerializeAsString();
  std::vector<v1::Case> cases;
  std::vector<std::string> unreadable;
  s = DoListAll(node, leader, "szs", &cases, &unreadable);
  EXPECT_TRUE(s.ok()) << s.error_message();
  for (const auto& c : cases) out += c.SerializeAsString();
  for (const auto& id : unreadable) out += "unreadable:" + id;
  for (const auto& id : watched) {
    v1::GetHistoryResponse h;
    s = DoHistory(node, leader, id, &h);
    EXPECT_TRUE(s.ok()) << id << ": " << s.error_message();
    out += h.SerializeAsString();
  }
  return out;
}

v1::ReportCommand Dispute(const ScenarioIds& ids, const std::string& request_id) {
  v1::ReportCommand r = NeighbourDispute(ids, request_id);
  auto* a = r.add_attachments();
  a->set_uri("s3://photos/1.jpg");
  a->set_media_type("image/jpeg");
  return r;
}

// `message` serialised with the 6-byte marker replaced by "Müller" in Latin-1.
std::string WithLatin1(const google::protobuf::Message& message, const std::string& marker) {
  std::string bytes = message.SerializeAsString();
  size_t at = bytes.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  EXPECT_EQ(bytes.find(marker, at + 1), std::string::npos) << marker << " twice";
  if (at != std::string::npos) bytes.replace(at, marker.size(), kLatin1User);
  return bytes;
}

std::string WriteShortDeadlinePolicy(const std::string& dir) {
  v1::Policy policy = core::DefaultPolicy();
  policy.mutable_limits()->set_accept_seconds(2);
  policy.mutable_limits()->set_accept_urgent_seconds(2);
  std::string text;
  google::protobuf::TextFormat::PrintToString(policy, &text);
  const std::string path = dir + "/policy.txtpb";
  std::ofstream(path) << text;
  return path;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    (void)!::write(fd, req.data(), req.size());
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// The value of an unlabelled series on /metrics; -1 when absent.
double MetricValue(int port, const std::string& name) {
  std::istringstream page(HttpGet(port, "/metrics"));
  for (std::string line; std::getline(page, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

size_t LogLinesWith(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

// ============================================================================
// Raw HTTP/2: bytes that are not UTF-8 in every header and string field.
// ============================================================================

class RawInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    dev_dir_ = new TempDir();
    // Data dirs that do not exist yet: whistled initialises only a missing one.
    node_ = new WhistledProcess(dir_->path() + "/data");
    dev_ = new WhistledProcess(dev_dir_->path() + "/data", {"--dev-header-identity"});
  }
  static void TearDownTestSuite() {
    delete node_;
    delete dev_;
    delete dir_;
    delete dev_dir_;
  }
  void SetUp() override {
    ASSERT_TRUE(node_->running()) << node_->LogTail();
    ASSERT_TRUE(dev_->running()) << dev_->LogTail();
  }

  // A case on `node` with a few transitions, to watch.
  std::string WatchedCase(WhistledProcess& node, bool headers) {
    Caller worker{GridWorker(ids_), headers};
    Caller staff{{"li.community", "staff", ids_.community, ""}, headers};
    v1::Case c;
    auto s = DoReport(node, worker, Dispute(ids_, "watched-" + std::to_string(++counter_)), &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    v1::Command accept;
    accept.mutable_accept()->set_note("收到");
    s = DoAct(node, staff, c.id(), accept, &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return c.id();
  }

  static inline TempDir* dir_ = nullptr;
  static inline TempDir* dev_dir_ = nullptr;
  static inline WhistledProcess* node_ = nullptr;  // signed tokens
  static inline WhistledProcess* dev_ = nullptr;   // --dev-header-identity
  static inline int counter_ = 0;
  ScenarioIds ids_ = DawukouIds();
  Caller leader_{{"leader.szs", "leader", "szs", ""}, false};
  Caller dev_leader_{{"leader.szs", "leader", "szs", ""}, true};
};

TEST_F(RawInputTest, TheRawClientReallyTalksGrpc) {
  // A well-formed report over raw frames is accepted: the refusals below are
  // about the bytes, not the client.
  for (bool headers : {false, true}) {
    WhistledProcess& node = headers ? *dev_ : *node_;
    Caller worker{GridWorker(ids_), headers};
    v1::ReportCaseRequest req;
    *req.mutable_report() = Dispute(ids_, "raw-ok-" + std::to_string(headers));
    RawResponse r = RawGrpcCall(node.port(), kReportPath, worker.Raw(), req.SerializeAsString());
    ASSERT_TRUE(r.answered) << Show(r);
    EXPECT_EQ(r.grpc_status, 0) << Show(r);
    v1::Case c;
    ASSERT_TRUE(c.ParseFromString(r.body)) << Show(r);
    EXPECT_EQ(c.reporter(), "wang.grid");
    EXPECT_EQ(c.state(), v1::CASE_STATE_REPORTED);
  }
}

TEST_F(RawInputTest, Latin1InEveryIdentityHeaderIsRefusedAndNothingIsStored) {
  const std::string watched = WatchedCase(*dev_, true);
  const std::string before = CitySnapshot(*dev_, dev_leader_, {watched});
  const Caller worker{GridWorker(ids_), true};
  const Caller desk{{"desk.police", "department", "", ids_.police}, true};
  struct Spoil {
    std::string header;
    Caller caller;
  };
  int refused = 0;
  for (const Spoil& spoil :
       {Spoil{"x-whistle-user", worker}, Spoil{"x-whistle-role", worker},
        Spoil{"x-whistle-jurisdiction", worker}, Spoil{"x-whistle-department", worker},
        Spoil{"x-whistle-user", desk}, Spoil{"x-whistle-department", desk},
        Spoil{"x-whistle-jurisdiction", desk}}) {
    RawHeaders headers = spoil.caller.Raw();
    bool replaced = false;
    for (auto& [name, value] : headers) {
      if (name == spoil.header) {
        value = name == "x-whistle-role" ? "st\xe4"
                                           "ff"
                                         : value + "-" + kLatin1User;
        replaced = true;
      }
    }
    if (!replaced) headers.emplace_back(spoil.header, kLatin1User);
    const std::string what = spoil.header + " as " + spoil.caller.who.role;

    // A report ...
    v1::ReportCaseRequest report;
    *report.mutable_report() = Dispute(ids_, "latin1-" + std::to_string(++counter_));
    RawResponse r = RawGrpcCall(dev_->port(), kReportPath, headers, report.SerializeAsString());
    ASSERT_TRUE(r.answered) << what << ": " << Show(r);
    EXPECT_TRUE(r.grpc_status == 3 || r.grpc_status == 16) << what << ": " << Show(r);
    // The message names the header or the caller field it fills.
    EXPECT_TRUE(r.grpc_message.find(spoil.header) != std::string::npos ||
                r.grpc_message.find(spoil.header == "x-whistle-role" ? "role" : "caller.") !=
                    std::string::npos)
        << what << ": " << Show(r);
    EXPECT_TRUE(core::IsValidUtf8(r.grpc_message)) << what << ": " << Show(r);
    // ... and a supervise of an existing case (once it made every history unreadable).
    v1::CaseActionRequest act;
    act.set_case_id(watched);
    act.mutable_command()->mutable_supervise()->set_note("快办");
    r = RawGrpcCall(dev_->port(), kActPath, headers, act.SerializeAsString());
    ASSERT_TRUE(r.answered) << what << ": " << Show(r);
    EXPECT_TRUE(r.grpc_status == 3 || r.grpc_status == 16) << what << ": " << Show(r);
    refused += 2;
  }
  EXPECT_EQ(refused, 14);
  EXPECT_EQ(CitySnapshot(*dev_, dev_leader_, {watched}), before) << "a refused call changed data";
}

TEST_F(RawInputTest, BadBearerTokensAreRefusedAndNothingIsStored) {
  const std::string watched = WatchedCase(*node_, false);
  const std::string before = CitySnapshot(*node_, leader_, {watched});
  const std::string token = MintTestToken("wang.grid", "grid_worker", ids_.grid, "");
  ASSERT_FALSE(token.empty());
  std::vector<std::string> values = {
      "Bearer " + kLatin1User,
      "Bearer \xfc" + token,
      "Bearer " + token.substr(0, token.size() / 2) + "\xfc" + token.substr(token.size() / 2 + 1),
      "Bearer " + token + "\xfc",
      "B\xe9"
      "arer " +
          token,
      "Bearer " + token + "\x01",
  };
  // A token the issuer signed whose user claim is Latin-1 (when the minting
  // library lets such a claim through at all).
  std::string signed_latin1 = MintTestToken(kLatin1User, "grid_worker", ids_.grid, "");
  if (!signed_latin1.empty()) values.push_back("Bearer " + signed_latin1);
  for (const auto& value : values) {
    v1::ReportCaseRequest report;
    *report.mutable_report() = Dispute(ids_, "bearer-" + std::to_string(++counter_));
    RawResponse r = RawGrpcCall(node_->port(), kReportPath, {{"authorization", value}},
                                report.SerializeAsString());
    ASSERT_TRUE(r.answered) << Show(r);
    EXPECT_TRUE(r.grpc_status == 16 || r.grpc_status == 3) << Show(r);
    EXPECT_TRUE(core::IsValidUtf8(r.grpc_message)) << Show(r);
  }
  EXPECT_EQ(CitySnapshot(*node_, leader_, {watched}), before) << "a refused call changed data";
}

TEST_F(RawInputTest, Latin1InEveryStringFieldOfTheBodyIsRefusedAndNothingIsStored) {
  const std::string watched = WatchedCase(*node_, false);
  const std::string before = CitySnapshot(*node_, leader_, {watched});
  const Caller worker{GridWorker(ids_), false};
  const Caller staff{{"li.community", "staff", ids_.community, ""}, false};
  const std::string marker = "QQQQQQ";  // as long as "Müller" in Latin-1

  struct Body {
    std::string what;
    std::string path;
    const Caller* caller;
    std::string bytes;
  };
  std::vector<Body> bodies;
  auto report = [&](const std::string& what, auto spoil) {
    v1::ReportCaseRequest req;
    *req.mutable_report() = Dispute(ids_, "body-" + std::to_string(++counter_));
    spoil(*req.mutable_report());
    bodies.push_back({"report." + what, kReportPath, &worker, WithLatin1(req, marker)});
  };
  report("request_id", [&](auto& r) { r.set_request_id(marker); });
  report("category", [&](auto& r) { r.set_category(marker); });
  report("place.grid_id", [&](auto& r) { r.mutable_place()->set_grid_id(marker); });
  report("place.address", [&](auto& r) { r.mutable_place()->set_address(marker); });
  report("text", [&](auto& r) { r.set_text(marker); });
  report("attachments.uri", [&](auto& r) { r.mutable_attachments(0)->set_uri(marker); });
  report("attachments.media_type",
         [&](auto& r) { r.mutable_attachments(0)->set_media_type(marker); });
  auto act = [&](const std::string& what, auto spoil) {
    v1::CaseActionRequest req;
    req.set_case_id(watched);
    spoil(req);
    bodies.push_back({"act." + what, kActPath, &staff, WithLatin1(req, marker)});
  };
  act("case_id", [&](auto& r) {
    r.set_case_id(marker);
    r.mutable_command()->mutable_keep();
  });
  act("keep.note", [&](auto& r) { r.mutable_command()->mutable_keep()->set_note(marker); });
  act("escalate.reason",
      [&](auto& r) { r.mutable_command()->mutable_escalate()->set_reason(marker); });
  act("dispatch.department_id",
      [&](auto& r) { r.mutable_command()->mutable_dispatch()->set_department_id(marker); });
  act("whistle.department_ids",
      [&](auto& r) { r.mutable_command()->mutable_whistle()->add_department_ids(marker); });
  act("reject.reason", [&](auto& r) { r.mutable_command()->mutable_reject()->set_reason(marker); });
  act("return_case.reason",
      [&](auto& r) { r.mutable_command()->mutable_return_case()->set_reason(marker); });
  {
    v1::GetCaseRequest get;
    get.set_case_id(marker);
    bodies.push_back(
        {"get.case_id", "/whistle.v1.CaseService/Get", &staff, WithLatin1(get, marker)});
    v1::GetHistoryRequest history;
    history.set_case_id(marker);
    bodies.push_back({"history.case_id", "/whistle.v1.CaseService/History", &staff,
                      WithLatin1(history, marker)});
    v1::ListCasesRequest list;
    list.set_jurisdiction_id(marker);
    bodies.push_back(
        {"list.jurisdiction_id", "/whistle.v1.CaseService/List", &staff, WithLatin1(list, marker)});
    list.set_jurisdiction_id("");
    list.set_page_token(marker);
    bodies.push_back(
        {"list.page_token", "/whistle.v1.CaseService/List", &staff, WithLatin1(list, marker)});
    v1::CountCasesRequest count;
    count.set_jurisdiction_id(marker);
    bodies.push_back({"count.jurisdiction_id", "/whistle.v1.CaseService/Count", &staff,
                      WithLatin1(count, marker)});
    v1::GetJurisdictionRequest topo;
    topo.set_id(marker);
    bodies.push_back({"topology.id", "/whistle.v1.TopologyService/GetJurisdiction", &staff,
                      WithLatin1(topo, marker)});
  }
  for (const auto& body : bodies) {
    RawResponse r = RawGrpcCall(node_->port(), body.path, body.caller->Raw(), body.bytes);
    ASSERT_TRUE(r.answered) << body.what << ": " << Show(r);
    // The body does not parse as the schema says (proto3 strings are UTF-8):
    // gRPC refuses it before any service code runs. Never OK, never UNAVAILABLE
    // (a caller's mistake must not invite retries).
    EXPECT_NE(r.grpc_status, 0) << body.what << ": " << Show(r);
    EXPECT_NE(r.grpc_status, 14) << body.what << ": " << Show(r);
    EXPECT_LT(r.received_bytes, kMaxAnswerBytes) << body.what;
  }
  EXPECT_EQ(CitySnapshot(*node_, leader_, {watched}), before) << "a refused call changed data";
}

TEST_F(RawInputTest, OversizedInputInEveryFieldIsRefusedWithABoundedAnswer) {
  const std::string watched = WatchedCase(*node_, false);
  const std::string before = CitySnapshot(*node_, leader_, {watched});
  const Caller worker{GridWorker(ids_), false};
  const Caller staff{{"li.community", "staff", ids_.community, ""}, false};
  const std::string huge(100 * 1024, 'x');
  const std::string huge_text = [] {
    std::string s;
    while (s.size() < 100 * 1024) s += "很长";
    return s;
  }();

  struct Body {
    std::string field;
    std::string path;
    const Caller* caller;
    std::string bytes;
  };
  std::vector<Body> bodies;
  auto report = [&](const std::string& field, auto spoil) {
    v1::ReportCaseRequest req;
    *req.mutable_report() = Dispute(ids_, "huge-" + std::to_string(++counter_));
    spoil(*req.mutable_report());
    bodies.push_back({field, kReportPath, &worker, req.SerializeAsString()});
  };
  report("report.request_id", [&](auto& r) { r.set_request_id(huge); });
  report("report.category", [&](auto& r) { r.set_category(huge); });
  report("report.place.grid_id", [&](auto& r) { r.mutable_place()->set_grid_id(huge); });
  report("report.place.address", [&](auto& r) { r.mutable_place()->set_address(huge_text); });
  report("report.text", [&](auto& r) { r.set_text(huge_text); });
  report("report.attachments[0].uri", [&](auto& r) { r.mutable_attachments(0)->set_uri(huge); });
  report("report.attachments[0].media_type",
         [&](auto& r) { r.mutable_attachments(0)->set_media_type(huge); });
  auto act = [&](const std::string& field, auto spoil) {
    v1::CaseActionRequest req;
    req.set_case_id(watched);
    spoil(req);
    bodies.push_back({field, kActPath, &staff, req.SerializeAsString()});
  };
  act("case_id", [&](auto& r) {
    r.set_case_id(huge);
    r.mutable_command()->mutable_keep();
  });
  act("command.keep.note",
      [&](auto& r) { r.mutable_command()->mutable_keep()->set_note(huge_text); });
  act("command.escalate.reason",
      [&](auto& r) { r.mutable_command()->mutable_escalate()->set_reason(huge_text); });
  act("command.dispatch.department_id",
      [&](auto& r) { r.mutable_command()->mutable_dispatch()->set_department_id(huge); });
  act("command.whistle.department_ids[0]",
      [&](auto& r) { r.mutable_command()->mutable_whistle()->add_department_ids(huge); });
  {
    v1::GetCaseRequest get;
    get.set_case_id(huge);
    bodies.push_back({"case_id", "/whistle.v1.CaseService/Get", &staff, get.SerializeAsString()});
    v1::ListCasesRequest list;
    list.set_jurisdiction_id(huge);
    bodies.push_back(
        {"jurisdiction_id", "/whistle.v1.CaseService/List", &staff, list.SerializeAsString()});
    list.set_jurisdiction_id("");
    list.set_page_token(huge);
    bodies.push_back(
        {"page_token", "/whistle.v1.CaseService/List", &staff, list.SerializeAsString()});
    v1::CountCasesRequest count;
    count.set_jurisdiction_id(huge);
    bodies.push_back(
        {"jurisdiction_id", "/whistle.v1.CaseService/Count", &staff, count.SerializeAsString()});
    v1::GetJurisdictionRequest topo;
    topo.set_id(huge);
    bodies.push_back(
        {"id", "/whistle.v1.TopologyService/GetJurisdiction", &staff, topo.SerializeAsString()});
  }
  for (const auto& body : bodies) {
    RawResponse r = RawGrpcCall(node_->port(), body.path, body.caller->Raw(), body.bytes);
    ASSERT_TRUE(r.answered) << body.field << ": " << Show(r);
    EXPECT_EQ(r.grpc_status, 3) << body.field << ": " << Show(r);
    EXPECT_NE(r.grpc_message.find(body.field), std::string::npos) << body.field << ": " << Show(r);
    EXPECT_LT(r.grpc_message.size(), 300u) << body.field;
    EXPECT_LT(r.received_bytes, kMaxAnswerBytes) << body.field;
  }
  // Oversized identity headers (within gRPC's own metadata limit).
  const std::string long_header(4000, 'u');
  for (const std::string header : {"x-whistle-user", "x-whistle-jurisdiction"}) {
    RawHeaders headers = Caller{GridWorker(ids_), true}.Raw();
    for (auto& [name, value] : headers) {
      if (name == header) value = long_header;
    }
    v1::ReportCaseRequest req;
    *req.mutable_report() = Dispute(ids_, "long-header-" + std::to_string(++counter_));
    RawResponse r = RawGrpcCall(dev_->port(), kReportPath, headers, req.SerializeAsString());
    ASSERT_TRUE(r.answered) << header << ": " << Show(r);
    EXPECT_NE(r.grpc_status, 0) << header << ": " << Show(r);
    EXPECT_LT(r.grpc_message.size(), 300u) << header << ": " << Show(r);
    EXPECT_LT(r.received_bytes, kMaxAnswerBytes) << header;
  }
  EXPECT_EQ(CitySnapshot(*node_, leader_, {watched}), before) << "a refused call changed data";
}

// ============================================================================
// A store poisoned under the node: damaged records are skipped, counted,
// logged once and reported; nothing else suffers.
// ============================================================================

TEST(PoisonedStoreTest, DamagedRecordsNeverTakeDownListingsHistoriesOrTheTimer) {
  TempDir dir;
  const std::string policy = WriteShortDeadlinePolicy(dir.path());
  const std::string data = dir.path() + "/data";
  WhistledProcess node(data, {"--policy-file", policy});
  ASSERT_TRUE(node.running()) << node.LogTail();
  const ScenarioIds ids = DawukouIds();
  const Caller worker{GridWorker(ids), false};
  const Caller staff{{"li.community", "staff", ids.community, ""}, false};
  const Caller leader{{"leader.szs", "leader", "szs", ""}, false};

  // Two readable cases taken off the clock (accepted, then kept: no deadline
  // soon), one of which gets a damaged history entry below.
  std::vector<std::string> kept;
  for (int i = 0; i < 2; ++i) {
    v1::Case c;
    ASSERT_TRUE(DoReport(node, worker, Dispute(ids, "kept-" + std::to_string(i)), &c).ok());
    v1::Command accept;
    accept.mutable_accept();
    ASSERT_TRUE(DoAct(node, staff, c.id(), accept, &c).ok());
    kept.push_back(c.id());
  }
  v1::GetHistoryResponse kept_history;
  ASSERT_TRUE(DoHistory(node, leader, kept[1], &kept_history).ok());
  ASSERT_EQ(node.Terminate(), 0) << node.LogTail();

  // The damage: 600 cases stored as the old bug stored them (a Latin-1
  // reporter: serialises, never parses), indexed under the community, with
  // deadlines due long ago, at the head of the timers; one index entry naming
  // a case that is not there; and a Latin-1 supervise in kept[1]'s history.
  constexpr int kPoisoned = 600;
  std::set<std::string> poisoned;
  {
    google::protobuf::LogSilencer quiet;  // protobuf complains of every Latin-1 string it writes
    storage::Options options;
    options.path = data;
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const int64_t long_ago = 1'600'000'000'000;
    for (int i = 0; i < kPoisoned; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "szs-9%011d", i);
      v1::Case bad;
      bad.set_id(id);
      bad.set_reporter(kLatin1User);
      bad.set_owner_id(ids.community);
      bad.set_state(v1::CASE_STATE_REPORTED);
      bad.set_next_deadline_ms(long_ago + i);
      ASSERT_TRUE((*store)
                      ->WriteRawForTest("cases", storage::keys::Case(id), bad.SerializeAsString())
                      .ok());
      ASSERT_TRUE((*store)
                      ->WriteRawForTest(
                          "index",
                          storage::keys::OwnerIndex(ids.community, v1::CASE_STATE_REPORTED, id), "")
                      .ok());
      ASSERT_TRUE(
          (*store)->WriteRawForTest("timers", storage::keys::Timer(long_ago + i, id), "").ok());
      poisoned.insert(id);
    }
    ASSERT_TRUE((*store)
                    ->WriteRawForTest("index",
                                      storage::keys::OwnerIndex(
                                          ids.community, v1::CASE_STATE_ACCEPTED, "szs-9missing"),
                                      "")
                    .ok());
    poisoned.insert("szs-9missing");
    v1::HistoryEntry supervise;
    supervise.set_case_id(kept[1]);
    supervise.set_seq(kept_history.entries_size() + 1);
    supervise.set_kind(v1::TRANSITION_KIND_SUPERVISE);
    supervise.mutable_actor()->set_user(kLatin1User);
    ASSERT_TRUE((*store)
                    ->WriteRawForTest(
                        "history",
                        storage::keys::History(kept[1], static_cast<uint64_t>(supervise.seq())),
                        supervise.SerializeAsString())
                    .ok());
  }
  ASSERT_TRUE(node.Restart()) << node.LogTail();

  // Healthy cases reported now, behind 600 damaged ones in the timers: their
  // 2 s accept deadline must still escalate them.
  std::vector<std::string> healthy;
  for (int i = 0; i < 5; ++i) {
    v1::Case c;
    auto s = DoReport(node, worker, Dispute(ids, "healthy-" + std::to_string(i)), &c);
    ASSERT_TRUE(s.ok()) << s.error_message();
    healthy.push_back(c.id());
  }

  // Get of a damaged case: DATA_LOSS naming it.
  v1::Case got;
  auto s = DoGet(node, leader, "szs-900000000007", &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_NE(s.error_message().find("szs-900000000007"), std::string::npos) << s.error_message();

  // Listings of every level above the damage answer, with every readable case
  // and the damaged ones named.
  for (const std::string& where : {ids.community, ids.township, ids.county, std::string("szs")}) {
    std::vector<v1::Case> cases;
    std::vector<std::string> unreadable;
    s = DoListAll(node, leader, where, &cases, &unreadable);
    ASSERT_TRUE(s.ok()) << where << ": " << s.error_message();
    std::set<std::string> listed;
    for (const auto& c : cases) listed.insert(c.id());
    for (const auto& id : kept) EXPECT_EQ(listed.count(id), 1u) << where << " lost " << id;
    for (const auto& id : healthy) EXPECT_EQ(listed.count(id), 1u) << where << " lost " << id;
    EXPECT_EQ(std::set<std::string>(unreadable.begin(), unreadable.end()), poisoned) << where;
  }
  // Counts answer.
  v1::CountCasesResponse counts;
  s = DoCount(node, leader, "szs", &counts);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Total(counts), 7);  // counts are kept apart from the records: the damage is not counted

  // History: the readable entries, and the damaged one's seq.
  v1::GetHistoryResponse history;
  s = DoHistory(node, leader, kept[1], &history);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(history.entries_size(), kept_history.entries_size());
  ASSERT_EQ(history.unreadable_seqs_size(), 1);
  EXPECT_EQ(history.unreadable_seqs(0), kept_history.entries_size() + 1);
  s = DoHistory(node, leader, kept[0], &history);
  EXPECT_TRUE(s.ok()) << s.error_message();

  // The timer escalates every healthy case (2 s accept deadline, 200 ms ticks).
  const auto until = std::chrono::steady_clock::now() + 20s;
  std::set<std::string> escalated;
  while (escalated.size() < healthy.size() && std::chrono::steady_clock::now() < until) {
    for (const auto& id : healthy) {
      v1::Case c;
      if (DoGet(node, leader, id, &c).ok() && c.overdue_count() > 0 &&
          c.owner_id() != ids.community) {
        escalated.insert(id);
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(escalated.size(), healthy.size()) << node.LogTail();

  // Counted, and logged once per record, not once per tick or read.
  const double unreadable_total =
      MetricValue(node.metrics_port(), "whistle_storage_unreadable_records_total");
  EXPECT_GE(unreadable_total, static_cast<double>(poisoned.size() + 1));
  const std::string needle = "\"msg\":\"stored record is unreadable; skipped\"";
  const size_t lines = LogLinesWith(node.log_path(), needle);
  EXPECT_GE(lines, poisoned.size());
  EXPECT_LE(lines, poisoned.size() + 1);
  std::this_thread::sleep_for(3s);
  std::vector<v1::Case> again;
  std::vector<std::string> again_unreadable;
  ASSERT_TRUE(DoListAll(node, leader, "szs", &again, &again_unreadable).ok());
  EXPECT_EQ(LogLinesWith(node.log_path(), needle), lines) << "the same damage was logged again";
  EXPECT_LT(LogLinesWith(node.log_path(), "invalid UTF-8"), 2 * poisoned.size())
      << "protobuf's own complaint is repeated on every read";
}

// ============================================================================
// Idempotency per (user, request id), whatever the owner.
// ============================================================================

// Two grids of one township in different communities: one report's owner
// differs from the other's (different jurisdiction actors).
std::pair<std::string, std::string> GridsOfTwoCommunities(const std::string& township) {
  auto topology = core::Topology::Build(core::ShizuishanTopology());
  std::map<std::string, std::string> grid_of_community;
  for (const auto& j : (*topology)->config().jurisdictions()) {
    if (j.level() != v1::LEVEL_GRID || !(*topology)->IsWithin(j.id(), township)) continue;
    grid_of_community.emplace((*topology)->AncestorAt(j.id(), v1::LEVEL_COMMUNITY)->id(), j.id());
  }
  EXPECT_GE(grid_of_community.size(), 2u);
  auto it = grid_of_community.begin();
  std::string a = it->second;
  return {a, (++it)->second};
}

v1::ReportCommand ReportAt(const std::string& grid, const std::string& request_id) {
  v1::ReportCommand r;
  r.set_request_id(request_id);
  r.set_category("dispute.neighbour");
  r.set_severity(v1::SEVERITY_GENERAL);
  r.mutable_place()->set_grid_id(grid);
  r.set_text("漏水");
  return r;
}

struct RaceResult {
  int ok = 0, already_exists = 0, other = 0;
  std::set<std::string> case_ids;
  std::string detail;
};

// Sends `reports` at once (one thread each) to `node` as `who`.
RaceResult Race(WhistledProcess& node, const Caller& who,
                const std::vector<v1::ReportCommand>& reports) {
  RaceResult out;
  std::vector<grpc::Status> statuses(reports.size());
  std::vector<v1::Case> cases(reports.size());
  std::vector<std::unique_ptr<v1::CaseService::Stub>> stubs;
  for (size_t i = 0; i < reports.size(); ++i) stubs.push_back(node.cases());
  std::barrier start(static_cast<std::ptrdiff_t>(reports.size()));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < reports.size(); ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::ReportCaseRequest req;
      *req.mutable_report() = reports[i];
      start.arrive_and_wait();
      statuses[i] = stubs[i]->Report(&ctx, req, &cases[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < reports.size(); ++i) {
    if (statuses[i].ok()) {
      ++out.ok;
      out.case_ids.insert(cases[i].id());
    } else if (statuses[i].error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      ++out.already_exists;
      out.detail = statuses[i].error_message();
    } else {
      ++out.other;
      out.detail = std::to_string(statuses[i].error_code()) + " " + statuses[i].error_message();
    }
  }
  return out;
}

class IdempotencyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    node_ = new WhistledProcess(dir_->path() + "/data");
  }
  static void TearDownTestSuite() {
    delete node_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(node_->running()) << node_->LogTail(); }

  int64_t CountIn(const std::string& where) {
    v1::CountCasesResponse counts;
    auto s = DoCount(*node_, leader_, where, &counts);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return Total(counts);
  }

  static inline TempDir* dir_ = nullptr;
  static inline WhistledProcess* node_ = nullptr;
  ScenarioIds ids_ = DawukouIds();
  Caller leader_{{"leader.szs", "leader", "szs", ""}, false};
  Caller street_{{"zhao.street", "staff", ids_.township, ""}, false};
};

TEST_F(IdempotencyTest, SameRequestIdRacedToTwoOwnersMakesOneCase) {
  const auto [grid_a, grid_b] = GridsOfTwoCommunities(ids_.township);
  const int64_t before = CountIn(ids_.township);
  constexpr int kRounds = 50;
  for (int i = 0; i < kRounds; ++i) {
    const std::string rid = "race-" + std::to_string(i);
    // One user per round: the rounds stay inside the per-caller rate limit.
    const Caller racer{{"racer." + std::to_string(i), "staff", ids_.township, ""}, false};
    RaceResult r = Race(*node_, racer, {ReportAt(grid_a, rid), ReportAt(grid_b, rid)});
    ASSERT_EQ(r.ok, 1) << "round " << i << ": " << r.detail;
    ASSERT_EQ(r.already_exists, 1) << "round " << i << ": " << r.detail;
    const std::string id = *r.case_ids.begin();
    EXPECT_NE(r.detail.find("report.request_id"), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find(rid), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find(id), std::string::npos) << r.detail;
  }
  EXPECT_EQ(CountIn(ids_.township), before + kRounds) << "a race made a second case";
}

TEST_F(IdempotencyTest, IdenticalRetriesRacedGetTheSameCase) {
  const int64_t before = CountIn(ids_.township);
  for (int i = 0; i < 20; ++i) {
    const std::string rid = "same-" + std::to_string(i);
    std::vector<v1::ReportCommand> reports(4, ReportAt(ids_.grid, rid));
    const Caller racer{{"twin." + std::to_string(i), "staff", ids_.township, ""}, false};
    RaceResult r = Race(*node_, racer, reports);
    ASSERT_EQ(r.ok, 4) << r.detail;
    ASSERT_EQ(r.case_ids.size(), 1u);
  }
  EXPECT_EQ(CountIn(ids_.township), before + 20);
}

TEST_F(IdempotencyTest, RetryWithDifferentContentIsRefusedEvenAfterARestart) {
  const std::string rid = "retry-differs";
  v1::Case first;
  ASSERT_TRUE(DoReport(*node_, street_, ReportAt(ids_.grid, rid), &first).ok());
  const int64_t before = CountIn("szs");
  for (int pass = 0; pass < 2; ++pass) {
    v1::Case again;
    auto s = DoReport(*node_, street_, ReportAt(ids_.grid, rid), &again);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(again.id(), first.id());
    v1::ReportCommand changed = ReportAt(ids_.grid, rid);
    changed.set_text("燃气泄漏");  // a different report under the same request id
    s = DoReport(*node_, street_, changed, &again);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
    EXPECT_NE(s.error_message().find(rid), std::string::npos) << s.error_message();
    EXPECT_NE(s.error_message().find(first.id()), std::string::npos) << s.error_message();
    // Another user may use the same request id.
    if (pass == 0) {
      Caller other{{"qian.street", "staff", ids_.township, ""}, false};
      ASSERT_TRUE(DoReport(*node_, other, changed, &again).ok());
      EXPECT_NE(again.id(), first.id());
    }
    if (pass == 0) {
      ASSERT_TRUE(node_->Restart()) << node_->LogTail();  // the record is durable with the case
    }
  }
  EXPECT_EQ(CountIn("szs"), before + 1);  // only the other user's case
}

TEST(FederatedIdempotencyTest, SameRequestIdRacedToOwnersOnTwoNodesMakesOneCase) {
  // szs <- dwk <- dwk-s01: a county staff member reports at the county node; one
  // grid's owner lives on the township node, the other's on the county node.
  const ScenarioIds ids = DawukouIds();
  LocalFederation fed(LocalFederation::ThreeLevel(ids.township));
  ASSERT_TRUE(fed.ok()) << fed.Describe();
  auto topology = core::Topology::Build(core::ShizuishanTopology());
  std::string remote_grid, local_grid;
  for (const auto& j : (*topology)->config().jurisdictions()) {
    if (j.level() != v1::LEVEL_GRID || !(*topology)->IsWithin(j.id(), ids.county)) continue;
    if ((*topology)->IsWithin(j.id(), ids.township)) {
      if (remote_grid.empty()) remote_grid = j.id();
    } else if (local_grid.empty()) {
      local_grid = j.id();
    }
  }
  ASSERT_FALSE(remote_grid.empty());
  ASSERT_FALSE(local_grid.empty());
  WhistledProcess& county = fed.NodeHosting(ids.county);
  WhistledProcess& township = fed.NodeHosting(ids.township);
  ASSERT_NE(&county, &township);
  std::set<std::string> made;
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    const std::string rid = "fed-race-" + std::to_string(i);
    const Caller racer{{"county.racer." + std::to_string(i), "staff", ids.county, ""}, false};
    RaceResult r = Race(county, racer, {ReportAt(remote_grid, rid), ReportAt(local_grid, rid)});
    ASSERT_EQ(r.ok, 1) << "round " << i << ": " << r.detail << "\n" << fed.Describe();
    ASSERT_EQ(r.already_exists, 1) << "round " << i << ": " << r.detail;
    made.insert(*r.case_ids.begin());
  }
  EXPECT_EQ(made.size(), static_cast<size_t>(kRounds));
  // Every case exists once, wherever it ended up: the county's node, an
  // ancestor of the township's, counts each once (owned there or its copy).
  const Caller leader{{"leader.szs", "leader", "szs", ""}, false};
  const auto until = std::chrono::steady_clock::now() + 20s;
  int64_t counted = 0;
  while (std::chrono::steady_clock::now() < until) {
    v1::CountCasesResponse here;
    if (DoCount(county, leader, "szs", &here).ok()) {
      counted = Total(here);
      if (counted == kRounds) break;
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(counted, kRounds) << fed.Describe();
}

}  // namespace
}  // namespace whistle::testing
