// Signed identities against a real whistled: every bad token is UNAUTHENTICATED
// with its reason (and counted), every caller outside the role and jurisdiction
// its issuer signed is PERMISSION_DENIED, and none of it changes anything
// (Get, History, Count and List compared before and after). Key rotation by
// SIGHUP; development header identity; start-up without keys.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/topology.h"
#include "services/token.h"
#include "tests/e2e/raw_h2.h"
#include "tests/e2e/scenario.h"
#include "whistle/v1/watch.grpc.pb.h"

namespace whistle::testing {
namespace {

using services::Base64UrlEncode;
using services::Claims;

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// The object inside {"keys": [ ... ]} of a one-key JWKS.
std::string KeyOf(const std::string& jwks) {
  size_t open = jwks.find('[');
  size_t close = jwks.rfind(']');
  return jwks.substr(open + 1, close - open - 1);
}

std::string JwksOf(const std::vector<std::string>& docs) {
  std::string out = "{\"keys\": [";
  for (size_t i = 0; i < docs.size(); ++i) out += (i ? "," : "") + KeyOf(docs[i]);
  return out + "]}";
}

// The body of GET /metrics (HTTP/1.0); "" on error.
std::string Metrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
  (void)write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

double MetricValue(int port, const std::string& series) {
  std::string page = Metrics(port);
  size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::atof(page.c_str() + at + series.size() + 2);
}

// Calls with exactly the given authorization value (none when empty) and extra headers.
struct Raw {
  std::string authorization;
  std::vector<std::pair<std::string, std::string>> headers;
  void Apply(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    for (const auto& [k, v] : headers) ctx.AddMetadata(k, v);
  }
};

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // The test issuer (ES256) and a second issuer (RS256) in one JWKS.
    auto rsa = services::GenerateKeyPair(services::KeyType::kRsa, "rsa-2");
    ASSERT_TRUE(rsa.ok());
    rsa_pem_ = new std::string(rsa->private_pem);
    jwks_path_ = new std::string(dir_->path() + "/jwks.json");
    WriteAll(*jwks_path_, JwksOf({ReadAll(TestJwksFile()), rsa->jwks_json}));
    node_ = new WhistledProcess(dir_->path() + "/node", {"--jwks-file", *jwks_path_});
  }
  static void TearDownTestSuite() {
    delete node_;
    delete rsa_pem_;
    delete jwks_path_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_TRUE(node_->running()) << node_->LogTail();
    stub_ = node_->cases();
    topo_ = core::Topology::Build(core::ShizuishanTopology()).value();
    // Another county than the case's, and a township department of it.
    for (const auto* c : topo_->Children(topo_->root().id())) {
      if (c->id() != ids_.county) {
        other_county_ = c->id();
        break;
      }
    }
    for (const auto& d : topo_->config().departments()) {
      if (topo_->IsWithin(d.jurisdiction_id(), other_county_)) {
        other_department_ = d.id();
        break;
      }
    }
    ASSERT_FALSE(other_county_.empty());
    ASSERT_FALSE(other_department_.empty());
  }

  std::string TestPem() const { return ReadAll(TestIssuerKeyFile()); }

  std::string Mint(const std::string& pem, const std::string& kid, const Claims& claims,
                   int64_t now, int64_t ttl = 3600) {
    auto token = services::MintToken(pem, kid, claims, now, ttl);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    return token.ok() ? *token : "";
  }

  static Claims Leader() {
    Claims c;
    c.user = "sun.city";
    c.role = v1::ROLE_LEADER;
    c.jurisdiction = "szs";
    return c;
  }

  // A new case in REPORTED, reported by the grid worker.
  std::string NewCase(const std::string& request_id) {
    v1::Case c;
    auto s = Report(*stub_, GridWorker(ids_), NeighbourDispute(ids_, request_id), &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return c.id();
  }

  // Everything a user could see of the node: the cases, their histories, the
  // city's counts and listing.
  std::string Snapshot(const std::vector<std::string>& case_ids) {
    Identity leader{"sun.city", "leader", "szs", ""};
    std::string out;
    for (const auto& id : case_ids) {
      v1::Case c;
      EXPECT_TRUE(Get(*stub_, leader, id, &c).ok());
      v1::GetHistoryResponse h;
      EXPECT_TRUE(History(*stub_, leader, id, &h).ok());
      out += c.SerializeAsString() + "|" + h.SerializeAsString() + "|";
    }
    grpc::ClientContext count_ctx;
    leader.Apply(count_ctx);
    v1::CountCasesRequest count_req;
    count_req.set_jurisdiction_id("szs");
    v1::CountCasesResponse counts;
    EXPECT_TRUE(stub_->Count(&count_ctx, count_req, &counts).ok());
    grpc::ClientContext list_ctx;
    leader.Apply(list_ctx);
    v1::ListCasesRequest list_req;
    list_req.set_jurisdiction_id("szs");
    list_req.set_page_size(500);
    v1::ListCasesResponse list;
    EXPECT_TRUE(stub_->List(&list_ctx, list_req, &list).ok());
    return out + counts.SerializeAsString() + "|" + list.SerializeAsString();
  }

  // Tries a report, an accept of `case_id`, a Get, a List and a Count with `who`;
  // returns the codes.
  template <class Who>
  std::vector<grpc::StatusCode> TryAll(const Who& who, const std::string& case_id,
                                       const std::string& tag) {
    std::vector<grpc::StatusCode> codes;
    {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::ReportCaseRequest req;
      *req.mutable_report() = NeighbourDispute(ids_, "auth-" + tag);
      v1::Case resp;
      codes.push_back(stub_->Report(&ctx, req, &resp).error_code());
    }
    {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::CaseActionRequest req;
      req.set_case_id(case_id);
      req.mutable_command()->mutable_accept()->set_note("taken");
      v1::Case resp;
      codes.push_back(stub_->Act(&ctx, req, &resp).error_code());
    }
    {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::GetCaseRequest req;
      req.set_case_id(case_id);
      v1::Case resp;
      codes.push_back(stub_->Get(&ctx, req, &resp).error_code());
    }
    {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::ListCasesRequest req;
      req.set_jurisdiction_id("szs");
      v1::ListCasesResponse resp;
      codes.push_back(stub_->List(&ctx, req, &resp).error_code());
    }
    {
      grpc::ClientContext ctx;
      who.Apply(ctx);
      v1::CountCasesRequest req;
      req.set_jurisdiction_id("szs");
      v1::CountCasesResponse resp;
      codes.push_back(stub_->Count(&ctx, req, &resp).error_code());
    }
    return codes;
  }

  static inline TempDir* dir_ = nullptr;
  static inline WhistledProcess* node_ = nullptr;
  static inline std::string* rsa_pem_ = nullptr;
  static inline std::string* jwks_path_ = nullptr;
  ScenarioIds ids_ = DawukouIds();
  std::unique_ptr<v1::CaseService::Stub> stub_;
  std::shared_ptr<const core::Topology> topo_;
  std::string other_county_, other_department_;
};

TEST_F(AuthTest, BadTokensAreUnauthenticatedCountedAndChangeNothing) {
  const std::string id = NewCase("auth-bad-tokens");
  const std::string before = Snapshot({id});
  const std::string pem = TestPem();
  const std::string good = Mint(pem, kTestKid, Leader(), Now());
  const size_t dot1 = good.find('.');
  const size_t dot2 = good.rfind('.');
  const std::string header = good.substr(0, dot1);
  const std::string signature = good.substr(dot2 + 1);
  const std::string leader_payload =
      "{\"sub\":\"sun.city\",\"role\":\"leader\",\"jurisdiction\":\"szs\",\"exp\":" +
      std::to_string(Now() + 600) + "}";
  auto stranger = services::GenerateKeyPair(services::KeyType::kEc256, kTestKid);
  ASSERT_TRUE(stranger.ok());
  // HS256 keyed with the PEM of the test issuer's public key (what a JWKS reader would hold).
  auto keys = services::KeySet::Parse(ReadAll(TestJwksFile()), "test");
  ASSERT_TRUE(keys.ok());
  const std::string& public_pem = (*keys)->Find(kTestKid)->public_pem;
  std::string hs_input = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT","kid":"whistle-test"})") +
                         "." + Base64UrlEncode(leader_payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), public_pem.data(), static_cast<int>(public_pem.size()),
       reinterpret_cast<const unsigned char*>(hs_input.data()), hs_input.size(), mac, &mac_len);
  std::string hs256 =
      hs_input + "." + Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), mac_len));

  struct Bad {
    std::string name;
    std::string authorization;  // "" = no header
    std::string reason;
  };
  const std::vector<Bad> bad = {
      {"forged signature",
       "Bearer " + header + "." + Base64UrlEncode(leader_payload) + "." + signature, "signature"},
      {"expired", "Bearer " + Mint(pem, kTestKid, Leader(), Now() - 7200, 3600), "expired"},
      {"not yet valid", "Bearer " + Mint(pem, kTestKid, Leader(), Now() + 3600, 3600),
       "not_yet_valid"},
      {"key not in the JWKS", "Bearer " + Mint(stranger->private_pem, kTestKid, Leader(), Now()),
       "signature"},
      {"unknown kid", "Bearer " + Mint(pem, "nobody", Leader(), Now()), "unknown_key"},
      {"alg none",
       "Bearer " + Base64UrlEncode(R"({"alg":"none","kid":"whistle-test"})") + "." +
           Base64UrlEncode(leader_payload) + ".",
       "algorithm"},
      {"HS256 with the public key", "Bearer " + hs256, "algorithm"},
      {"two parts", "Bearer " + header + "." + signature, "malformed"},
      {"bad base64", "Bearer " + header + ".%%%." + signature, "malformed"},
      {"bad JSON",
       "Bearer " + Base64UrlEncode("{\"alg\":") + "." + Base64UrlEncode(leader_payload) + "." +
           signature,
       "malformed"},
      {"missing header", "", "missing"},
      {"wrong scheme", "Basic " + good, "scheme"},
      {"no scheme", good, "scheme"},
  };
  for (const Bad& b : bad) {
    const std::string series = "whistle_auth_denied_total{reason=\"" + b.reason + "\"}";
    const double counted = MetricValue(node_->metrics_port(), series);
    auto codes = TryAll(Raw{b.authorization, {}}, id, "bad");
    for (auto code : codes) EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED) << b.name;
    EXPECT_EQ(MetricValue(node_->metrics_port(), series), counted + codes.size()) << b.name;
    // The reason, never the token.
    grpc::ClientContext ctx;
    Raw{b.authorization, {}}.Apply(ctx);
    v1::GetCaseRequest req;
    req.set_case_id(id);
    v1::Case resp;
    auto status = stub_->Get(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << b.name;
    EXPECT_LT(status.error_message().size(), 200u) << b.name;
    if (b.authorization.size() > 40) {
      EXPECT_EQ(status.error_message().find(b.authorization.substr(7, 30)), std::string::npos)
          << b.name << ": " << status.error_message();
    }
  }
  // Identity headers without a token are no identity at all.
  auto codes = TryAll(Raw{"",
                          {{"x-whistle-user", "sun.city"},
                           {"x-whistle-role", "leader"},
                           {"x-whistle-jurisdiction", "szs"}}},
                      id, "headers");
  for (auto code : codes) EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Snapshot({id}), before);
  // The log names reasons (at most 10 lines a second), never tokens.
  std::string log = ReadAll(node_->log_path());
  EXPECT_NE(log.find("\"msg\":\"caller not authenticated\""), std::string::npos);
  EXPECT_NE(log.find("\"reason\":\"signature\""), std::string::npos);
  EXPECT_EQ(log.find(signature), std::string::npos);
  EXPECT_EQ(log.find(good.substr(0, 40)), std::string::npos);
}

TEST_F(AuthTest, TokensOfBothAlgorithmsAreAccepted) {
  for (const auto& [pem, kid] : std::vector<std::pair<std::string, std::string>>{
           {TestPem(), kTestKid}, {*rsa_pem_, "rsa-2"}}) {
    grpc::ClientContext ctx;
    Raw{"Bearer " + Mint(pem, kid, Leader(), Now()), {}}.Apply(ctx);
    v1::CountCasesRequest req;
    v1::CountCasesResponse resp;
    auto status = stub_->Count(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << kid << ": " << status.error_message();
  }
}

TEST_F(AuthTest, CallersOutsideTheirRoleOrJurisdictionAreDeniedAndChangeNothing) {
  // One case in REPORTED, one IN_PROGRESS with police and judicial summoned.
  const std::string reported = NewCase("auth-roles-1");
  const std::string summoned = NewCase("auth-roles-2");
  auto steps = ScenarioSteps(ids_, summoned);
  for (int i = 0; i < 3; ++i) {
    v1::Case c;
    auto s = Act(*stub_, steps[i].who, summoned, steps[i].command, &c);
    ASSERT_TRUE(s.ok()) << steps[i].name << ": " << s.error_message();
  }
  const std::string before = Snapshot({reported, summoned});
  const auto denied = grpc::StatusCode::PERMISSION_DENIED;

  // A grid worker's token for a staff action (accept).
  v1::Command accept;
  accept.mutable_accept();
  v1::Case out;
  EXPECT_EQ(Act(*stub_, GridWorker(ids_), reported, accept, &out).error_code(), denied);
  // Another county's staff and leader: no action, no read, no listing of the city.
  Identity other_staff{"qian.other", "staff", other_county_, ""};
  Identity other_leader{"zhou.other", "leader", other_county_, ""};
  EXPECT_EQ(Act(*stub_, other_staff, reported, accept, &out).error_code(), denied);
  EXPECT_EQ(Act(*stub_, other_leader, reported, accept, &out).error_code(), denied);
  EXPECT_EQ(Get(*stub_, other_leader, reported, &out).error_code(), denied);
  v1::GetHistoryResponse h;
  EXPECT_EQ(History(*stub_, other_leader, summoned, &h).error_code(), denied);
  auto codes = TryAll(other_leader, reported, "other-leader");
  EXPECT_EQ(codes[0], denied);  // a report into a grid outside its county
  for (size_t i = 1; i < codes.size(); ++i) EXPECT_EQ(codes[i], denied) << i;
  // A department acting for another: not summoned, so it may not report in.
  v1::Command report_in;
  report_in.mutable_report_in();
  Identity other_dept{"desk.other", "department", "", other_department_};
  EXPECT_EQ(Act(*stub_, other_dept, summoned, report_in, &out).error_code(), denied);
  EXPECT_EQ(Get(*stub_, other_dept, summoned, &out).error_code(), denied);
  // A department claiming the root (or any jurisdiction not its own): denied
  // whatever it asks, its real jurisdiction is the topology's.
  Identity police_at_root{"desk.police", "department", "szs", ids_.police};
  Identity police_elsewhere{"desk.police", "department", other_county_, ids_.police};
  for (const auto& who : {police_at_root, police_elsewhere}) {
    EXPECT_EQ(Act(*stub_, who, summoned, report_in, &out).error_code(), denied);
    for (auto code : TryAll(who, summoned, "police-root")) EXPECT_EQ(code, denied);
  }
  // The same department without the claim lists only its own township.
  Identity police{"desk.police", "department", "", ids_.police};
  codes = TryAll(police, summoned, "police");
  EXPECT_EQ(codes[3], denied);  // List of the city
  EXPECT_EQ(codes[4], denied);  // Count of the city
  // The admin role operates nodes: no case work at all, not even reading.
  Identity admin{"ops", "admin", "", ""};
  for (auto code : TryAll(admin, reported, "admin")) EXPECT_EQ(code, denied);
  EXPECT_EQ(Act(*stub_, Identity{"ops", "admin", "szs", ""}, reported, accept, &out).error_code(),
            denied);

  EXPECT_EQ(Snapshot({reported, summoned}), before);
}

TEST_F(AuthTest, OnlyTheReporterInItsReportingRoleEvaluates) {
  const std::string id = NewCase("auth-evaluate");
  auto steps = ScenarioSteps(ids_, id);
  ASSERT_EQ(steps.back().command.kind_case(), v1::Command::kEvaluate);
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    v1::Case c;
    auto s = Act(*stub_, steps[i].who, id, steps[i].command, &c);
    ASSERT_TRUE(s.ok()) << steps[i].name << ": " << s.error_message();
  }
  const std::string before = Snapshot({id});
  v1::Case out;
  // The reporter's user name with another role's token: that role's rights only.
  for (const Identity& who : {Identity{"wang.grid", "staff", ids_.community, ""},
                              Identity{"wang.grid", "leader", other_county_, ""},
                              Identity{"wang.grid", "department", "", ids_.police}}) {
    auto s = Act(*stub_, who, id, steps.back().command, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << who.role << ": " << s.error_message();
  }
  EXPECT_EQ(Snapshot({id}), before);
  auto s = Act(*stub_, GridWorker(ids_), id, steps.back().command, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.state(), v1::CASE_STATE_EVALUATED);
}

TEST_F(AuthTest, TopologyNeedsAnyValidTokenButNoRole) {
  auto topology = node_->topology();
  for (const Identity& who : {GridWorker(ids_), Identity{"ops", "admin", "", ""},
                              Identity{"desk.police", "department", "", ids_.police}}) {
    grpc::ClientContext ctx;
    who.Apply(ctx);
    v1::GetJurisdictionRequest req;
    req.set_id(ids_.county);
    v1::JurisdictionView view;
    auto status = topology->GetJurisdiction(&ctx, req, &view);
    EXPECT_TRUE(status.ok()) << who.role << ": " << status.error_message();
    EXPECT_EQ(view.jurisdiction().id(), ids_.county);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetJurisdictionRequest req;
  v1::JurisdictionView view;
  EXPECT_EQ(topology->GetJurisdiction(&ctx, req, &view).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

// Two keys, tokens of both accepted; SIGHUP with a file that has only the new
// key drops the old one; a bad file keeps the keys; SIGHUP never stops the node.
TEST(AuthRotationTest, SighupReloadsTheKeysAndKeepsThemOnABadFile) {
  TempDir dir;
  auto old_key = services::GenerateKeyPair(services::KeyType::kEc256, "old");
  auto new_key = services::GenerateKeyPair(services::KeyType::kRsa, "new");
  ASSERT_TRUE(old_key.ok() && new_key.ok());
  const std::string jwks = dir.path() + "/jwks.json";
  WriteAll(jwks, JwksOf({old_key->jwks_json, new_key->jwks_json}));
  WhistledProcess node(dir.path() + "/node", {"--jwks-file", jwks});
  ASSERT_TRUE(node.running()) << node.LogTail();
  auto stub = node.cases();
  Claims leader;
  leader.user = "sun.city";
  leader.role = v1::ROLE_LEADER;
  leader.jurisdiction = "szs";
  auto count_with = [&](const std::string& pem, const std::string& kid) {
    grpc::ClientContext ctx;
    Raw{"Bearer " + services::MintToken(pem, kid, leader, Now(), 600).value(), {}}.Apply(ctx);
    v1::CountCasesRequest req;
    v1::CountCasesResponse resp;
    return stub->Count(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(count_with(old_key->private_pem, "old"), grpc::StatusCode::OK);
  EXPECT_EQ(count_with(new_key->private_pem, "new"), grpc::StatusCode::OK);
  EXPECT_EQ(MetricValue(node.metrics_port(), "whistle_auth_keys"), 2);

  auto wait_for = [&](const std::string& series, double value) {
    for (int i = 0; i < 100 && MetricValue(node.metrics_port(), series) != value; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return MetricValue(node.metrics_port(), series);
  };
  WriteAll(jwks, new_key->jwks_json);
  node.Signal(SIGHUP);
  EXPECT_EQ(wait_for("whistle_auth_jwks_reloads_total{result=\"ok\"}", 1), 1);
  EXPECT_EQ(MetricValue(node.metrics_port(), "whistle_auth_keys"), 1);
  EXPECT_EQ(count_with(old_key->private_pem, "old"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(count_with(new_key->private_pem, "new"), grpc::StatusCode::OK);

  WriteAll(jwks, "{\"keys\": [{\"kty\": \"oct\"");
  node.Signal(SIGHUP);
  EXPECT_EQ(wait_for("whistle_auth_jwks_reloads_total{result=\"failed\"}", 1), 1);
  EXPECT_EQ(count_with(new_key->private_pem, "new"), grpc::StatusCode::OK);
  EXPECT_EQ(MetricValue(node.metrics_port(), "whistle_auth_keys"), 1);
  // Many SIGHUPs in a row: still serving, and it drains normally afterwards.
  for (int i = 0; i < 5; ++i) node.Signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(node.HealthStatus(), 1);
  EXPECT_EQ(count_with(new_key->private_pem, "new"), grpc::StatusCode::OK);
  std::string log = ReadAll(node.log_path());
  EXPECT_NE(log.find("issuer keys not reloaded; keeping the old ones"), std::string::npos);

  // The key of kid "new" rotated in place (same kid, new key): a token of the
  // old key, verified and remembered before, is refused after the reload; one
  // of the rotated key is accepted.
  auto rotated = services::GenerateKeyPair(services::KeyType::kEc256, "new");
  ASSERT_TRUE(rotated.ok());
  const std::string before_rotation =
      services::MintToken(new_key->private_pem, "new", leader, Now(), 600).value();
  auto count_token = [&](const std::string& token) {
    grpc::ClientContext ctx;
    Raw{"Bearer " + token, {}}.Apply(ctx);
    v1::CountCasesRequest req;
    v1::CountCasesResponse resp;
    return stub->Count(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(count_token(before_rotation), grpc::StatusCode::OK);
  WriteAll(jwks, rotated->jwks_json);
  node.Signal(SIGHUP);
  EXPECT_EQ(wait_for("whistle_auth_jwks_reloads_total{result=\"ok\"}", 2), 2);
  EXPECT_EQ(count_token(before_rotation), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(count_with(rotated->private_pem, "new"), grpc::StatusCode::OK);
  EXPECT_EQ(node.Terminate(), 0);
}

// A watch opened with a token whose key a reload then removes: it delivers
// the change made before the reload and ends UNAUTHENTICATED before the next
// one, instead of streaming on for a caller the node no longer accepts.
TEST(AuthRotationTest, AnOpenWatchEndsWhenItsKeyIsRemoved) {
  TempDir dir;
  auto old_key = services::GenerateKeyPair(services::KeyType::kEc256, "old");
  auto new_key = services::GenerateKeyPair(services::KeyType::kEc256, "new");
  ASSERT_TRUE(old_key.ok() && new_key.ok());
  const std::string jwks = dir.path() + "/jwks.json";
  WriteAll(jwks, JwksOf({old_key->jwks_json, new_key->jwks_json}));
  WhistledProcess node(dir.path() + "/node", {"--jwks-file", jwks});
  ASSERT_TRUE(node.running()) << node.LogTail();
  const ScenarioIds ids = DawukouIds();
  Claims leader;
  leader.user = "sun.city";
  leader.role = v1::ROLE_LEADER;
  leader.jurisdiction = "szs";
  Claims worker;
  worker.user = "gw.1";
  worker.role = v1::ROLE_GRID_WORKER;
  worker.jurisdiction = ids.grid;
  auto report = [&](const std::string& request_id) {
    grpc::ClientContext ctx;
    Raw{"Bearer " + services::MintToken(new_key->private_pem, "new", worker, Now(), 600).value(),
        {}}
        .Apply(ctx);
    v1::ReportCaseRequest req;
    *req.mutable_report() = NeighbourDispute(ids, request_id);
    v1::Case out;
    grpc::Status s = node.cases()->Report(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.id();
  };

  auto watch = v1::WatchService::NewStub(node.channel());
  grpc::ClientContext ctx;
  Raw{"Bearer " + services::MintToken(old_key->private_pem, "old", leader, Now(), 600).value(), {}}
      .Apply(ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchRequest req;
  req.set_jurisdiction_id("szs");
  req.set_from_token("0");
  auto stream = watch->Watch(&ctx, req);
  const std::string first = report("watch-1");
  v1::Change change;
  ASSERT_TRUE(stream->Read(&change));  // the first case, while the key is loaded
  EXPECT_EQ(change.case_change().case_id(), first);

  WriteAll(jwks, new_key->jwks_json);
  node.Signal(SIGHUP);
  for (int i = 0; i < 100 && MetricValue(node.metrics_port(),
                                         "whistle_auth_jwks_reloads_total{result=\"ok\"}") != 1;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the stream's recheck
  const std::string second = report("watch-2");
  ASSERT_FALSE(second.empty());
  int after_reload = 0;
  while (stream->Read(&change)) after_reload += change.case_change().case_id() == second;
  grpc::Status end = stream->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAUTHENTICATED) << end.error_message();
  EXPECT_EQ(after_reload, 0) << "a change reached a caller whose key was removed";
  EXPECT_EQ(node.Terminate(), 0);
}

TEST(AuthStartTest, NoKeysNoStartUnlessDevelopmentMode) {
  TempDir dir;
  auto [code, output] =
      RunWhistled({"--data-dir", dir.path() + "/d", "--listen",
                   "127.0.0.1:" + std::to_string(FreePort()), "--metrics-listen", ""});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("--jwks-file"), std::string::npos) << output;
  EXPECT_NE(output.find("--dev-header-identity"), std::string::npos) << output;
  const std::string bad = dir.path() + "/bad.json";
  WriteAll(bad, "{\"keys\": [{\"kty\": \"EC\", \"kid\": \"a\", \"crv\": \"P-256\"}]}");
  std::tie(code, output) =
      RunWhistled({"--data-dir", dir.path() + "/d", "--jwks-file", bad, "--metrics-listen", ""});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("keys[0]"), std::string::npos) << output;
}

// --dev-header-identity: plain headers work, a warning is logged, and header
// values are checked at the door: a Latin-1 user is refused and stored nowhere.
TEST(AuthDevModeTest, HeadersAreCheckedAndNothingBadIsStored) {
  TempDir dir;
  WhistledProcess node(dir.path() + "/node", {"--dev-header-identity"});
  ASSERT_TRUE(node.running()) << node.LogTail();
  EXPECT_NE(ReadAll(node.log_path()).find("DEVELOPMENT MODE"), std::string::npos);
  auto stub = node.cases();
  ScenarioIds ids = DawukouIds();
  auto report_as = [&](const Identity& who, const std::string& request_id) {
    grpc::ClientContext ctx;
    who.ApplyHeaders(ctx);
    v1::ReportCaseRequest req;
    *req.mutable_report() = NeighbourDispute(ids, request_id);
    v1::Case resp;
    return stub->Report(&ctx, req, &resp);
  };
  Identity grid = GridWorker(ids);
  ASSERT_TRUE(report_as(grid, "dev-1").ok());
  // Tokens are not read in this mode: headers only.
  EXPECT_EQ(report_as(Identity{"", "", "", ""}, "dev-2").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(report_as(Identity{"a b", "grid_worker", ids.grid, ""}, "dev-3").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  auto s = report_as(Identity{"wang", "mayor", ids.grid, ""}, "dev-4");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("x-whistle-role"), std::string::npos);

  // A Latin-1 byte (0xfc) in x-whistle-user, as raw HTTP/2 sends it (gRPC C++
  // clients refuse to): refused, and nothing is stored.
  // The same request with an ASCII name first, as a control that the raw
  // request itself is served.
  for (const std::string user : {"Mueller", "M\xfcller"}) {
    v1::ReportCaseRequest req;
    *req.mutable_report() = NeighbourDispute(ids, "dev-raw-" + std::to_string(user.size()));
    std::string body = req.SerializeAsString();
    RawH2 raw(node.port());
    ASSERT_TRUE(raw.ok());
    uint32_t stream =
        raw.Open("/whistle.v1.CaseService/Report", {{"x-whistle-user", user},
                                                    {"x-whistle-role", "grid_worker"},
                                                    {"x-whistle-jurisdiction", ids.grid}});
    raw.Send(stream, RawH2::Prefix(static_cast<uint32_t>(body.size())) + body, true, 2000);
    for (int i = 0; i < 40 && !raw.Ended(stream); ++i) raw.Pump(50);
    EXPECT_TRUE(raw.Ended(stream));
  }

  grpc::ClientContext ctx;
  Identity{"sun.city", "leader", "szs", ""}.ApplyHeaders(ctx);
  v1::ListCasesRequest list_req;
  list_req.set_jurisdiction_id("szs");
  v1::ListCasesResponse list;
  auto listed = stub->List(&ctx, list_req, &list);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(list.cases_size(), 2);  // dev-1 and the control; not the Latin-1 one
  for (const auto& c : list.cases())
    EXPECT_TRUE(c.reporter() == "wang.grid" || c.reporter() == "Mueller");
}

}  // namespace
}  // namespace whistle::testing
