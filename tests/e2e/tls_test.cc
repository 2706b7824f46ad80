// TLS: a city node and a county node with certificates from one test CA link
// over mutual TLS and carry cases both ways; a child with a certificate from
// another CA, or one naming another jurisdiction, never links; a parent whose
// certificate does not name its root is not accepted by the child; plaintext
// clients cannot talk to a TLS node; a plaintext node warns once; whistlectl
// talks TLS. Certificates are made with the openssl CLI in a TempDir.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <regex>
#include <tuple>

#include "tests/e2e/certs.h"
#include "tests/e2e/link_support.h"
#include "tests/e2e/scenario.h"
#include "tests/e2e/whistled_process.h"

#ifndef WHISTLECTL_PATH
#error "WHISTLECTL_PATH must name the whistlectl binary"
#endif

namespace whistle::testing {
namespace {

const Identity kCityStaff{"chen.city", "staff", "szs", ""};
constexpr char kPlaintextWarning[] = "plaintext: the gRPC port and node links are not encrypted";

// True if `channel`'s link to `peer` stays down for `span` (checked every 50 ms).
bool StaysDown(const std::shared_ptr<grpc::Channel>& channel, const std::string& peer,
               std::chrono::milliseconds span) {
  return !WaitFor([&] { return LinkOf(channel, peer).connected(); }, span);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = std::make_unique<TestCa>(dir_.path(), "whistle");
    szs_ = ca_->Issue("szs", "szs", {"szs"});
    dwk_ = ca_->Issue("dwk", "dwk", {"dwk"});
    ASSERT_TRUE(ca_->ok()) << ca_->error();
  }

  static std::vector<std::string> Tls(const CertFiles& cert, const std::string& ca) {
    return {"--tls-cert-file", cert.cert, "--tls-key-file", cert.key, "--tls-ca-file", ca};
  }

  // The city node: hosts szs, expects the child dwk.
  std::unique_ptr<NodeProcess> StartCity(const CertFiles& cert,
                                         const std::string& node_id = "szs") {
    std::vector<std::string> flags = {
        "--node-id", node_id, "--child-jurisdictions", "dwk", "--link-keepalive-ms", "200"};
    auto tls = Tls(cert, ca_->ca_file());
    flags.insert(flags.end(), tls.begin(), tls.end());
    return std::make_unique<NodeProcess>(dir_.path() + "/city-" + node_id, flags,
                                         TlsCredentials(ca_->ca_file()));
  }

  // A county node hosting dwk under `parent`, with `cert` and trusting `ca`.
  std::unique_ptr<NodeProcess> StartCounty(const NodeProcess& parent, const CertFiles& cert,
                                           const std::string& ca, const std::string& node_id) {
    std::vector<std::string> flags = {
        "--node-id",        node_id,          "--hosted-jurisdiction", "dwk",
        "--parent-address", parent.address(), "--link-keepalive-ms",   "200"};
    auto tls = Tls(cert, ca);
    flags.insert(flags.end(), tls.begin(), tls.end());
    return std::make_unique<NodeProcess>(dir_.path() + "/county-" + node_id, flags,
                                         TlsCredentials(ca));
  }

  // A case the child routes up never reaches the parent.
  void ExpectNothingCrosses(NodeProcess& parent, NodeProcess& child) {
    v1::Case reported;
    auto status = ReportCase(child.channel(), GridWorker(DawukouIds()),
                             ExtraordinaryReport("stuck-1"), &reported);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(WaitFor([&] { return LinkOf(child.channel(), "parent").outbox_depth() >= 1; }))
        << "the case did not wait in the child's outbox";
    v1::Case on_parent;
    EXPECT_EQ(GetCase(parent.channel(), kCityLeader, reported.id(), &on_parent).error_code(),
              grpc::StatusCode::NOT_FOUND)
        << on_parent.ShortDebugString();
  }

  // Runs whistlectl (optionally under `env` VAR=value pairs); returns (exit code, output).
  static std::pair<int, std::string> Whistlectl(const std::vector<std::string>& args,
                                                const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {"env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(WHISTLECTL_PATH);
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  std::unique_ptr<TestCa> ca_;
  CertFiles szs_, dwk_;
};

TEST_F(TlsTest, CityAndCountyLinkOverMutualTlsAndCarryACaseBothWays) {
  auto city = StartCity(szs_);
  ASSERT_TRUE(city->running()) << city->LogTail();
  auto county = StartCounty(*city, dwk_, ca_->ca_file(), "dwk");
  ASSERT_TRUE(county->running()) << county->LogTail();

  v1::GetLinksResponse links;
  ASSERT_TRUE(WaitFor([&] {
    return GetLinks(county->channel(), &links).ok() && LinkTo(links, "parent").connected();
  })) << links.ShortDebugString()
      << "\n"
      << county->LogTail() << city->LogTail();
  EXPECT_TRUE(links.tls());
  EXPECT_EQ(LinkTo(links, "parent").peer_node_id(), "szs");
  ASSERT_TRUE(WaitFor([&] {
    return GetLinks(city->channel(), &links).ok() && LinkTo(links, "dwk").connected();
  })) << links.ShortDebugString();
  EXPECT_TRUE(links.tls());
  EXPECT_EQ(LinkTo(links, "dwk").peer_node_id(), "dwk");

  // Up: an extraordinary report in a dwk grid is the city's; the county hands it up.
  v1::Case reported;
  auto status = ReportCase(county->channel(), GridWorker(DawukouIds()),
                           ExtraordinaryReport("tls-1"), &reported);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reported.owner_id(), "szs");
  v1::Case on_city;
  ASSERT_TRUE(WaitFor([&] {
    return GetCase(city->channel(), kCityLeader, reported.id(), &on_city).ok();
  })) << city->LogTail();
  EXPECT_EQ(on_city.owner_id(), "szs");
  EXPECT_EQ(on_city.state(), v1::CASE_STATE_REPORTED);
  EXPECT_FALSE(on_city.read_only());

  // Down: the city accepts it; the county's copy (its grid touched the case) follows.
  v1::Command accept;
  accept.mutable_accept()->set_note("市级受理");
  v1::Case accepted;
  status = ActOnCase(city->channel(), kCityStaff, reported.id(), accept, &accepted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(accepted.state(), v1::CASE_STATE_ACCEPTED);
  v1::Case on_county;
  EXPECT_TRUE(WaitFor([&] {
    return GetCase(county->channel(), kCityLeader, reported.id(), &on_county).ok() &&
           on_county.state() == v1::CASE_STATE_ACCEPTED;
  })) << on_county.ShortDebugString();
  EXPECT_TRUE(on_county.read_only());

  // No refusals, and neither TLS node warns about plaintext.
  const std::string metrics = HttpGet(city->metrics_address(), "/metrics");
  ASSERT_FALSE(metrics.empty());
  for (const char* reason : {"certificate", "unexpected_child", "topology", "policy", "version"}) {
    EXPECT_LT(
        MetricValue(metrics, std::string("whistle_link_refusals_total{reason=\"") + reason + "\"}"),
        1)
        << reason;
  }
  EXPECT_TRUE(LogLines(city->log_path(), {kPlaintextWarning}).empty());
  EXPECT_TRUE(LogLines(county->log_path(), {kPlaintextWarning}).empty());
}

TEST_F(TlsTest, ChildWithACertificateFromAnotherCaNeverLinks) {
  TestCa rogue(dir_.path(), "rogue");
  // Names exactly what a real dwk node's certificate names; only the signer differs.
  CertFiles rogue_dwk = rogue.Issue("rogue-dwk", "dwk", {"dwk"});
  ASSERT_TRUE(rogue.ok()) << rogue.error();
  // The rogue child trusts the real CA too, so it is the parent that says no.
  const std::string bundle = dir_.path() + "/rogue-bundle.crt";
  ASSERT_TRUE(WriteBundle(bundle, {rogue.ca_file(), ca_->ca_file()}));

  auto city = StartCity(szs_);
  ASSERT_TRUE(city->running()) << city->LogTail();
  auto county = StartCounty(*city, rogue_dwk, bundle, "dwk");
  ASSERT_TRUE(county->running()) << county->LogTail();

  v1::LinkStatus link;
  ASSERT_TRUE(WaitFor([&] {
    link = LinkOf(county->channel(), "parent");
    return !link.last_error().empty();
  })) << county->LogTail();
  EXPECT_FALSE(link.connected());
  EXPECT_EQ(link.last_error().rfind("dial " + city->address() + ": ", 0), 0u) << link.last_error();
  EXPECT_TRUE(StaysDown(county->channel(), "parent", std::chrono::seconds(2)))
      << county->LogTail() << city->LogTail();
  EXPECT_TRUE(StaysDown(city->channel(), "dwk", std::chrono::milliseconds(200)));
  EXPECT_TRUE(LogLines(city->log_path(), {"node link up"}).empty()) << city->LogTail();
  ExpectNothingCrosses(*city, *county);
}

TEST_F(TlsTest, ChildWhoseCertificateNamesAnotherJurisdictionIsRefused) {
  // Signed by the right CA, but for 惠农区 (hn), while the node claims dwk.
  CertFiles impostor = ca_->Issue("impostor", "impostor", {"hn"});
  ASSERT_TRUE(ca_->ok()) << ca_->error();
  auto city = StartCity(szs_);
  ASSERT_TRUE(city->running()) << city->LogTail();
  auto county = StartCounty(*city, impostor, ca_->ca_file(), "impostor");
  ASSERT_TRUE(county->running()) << county->LogTail();

  v1::LinkStatus link;
  ASSERT_TRUE(WaitFor([&] {
    link = LinkOf(county->channel(), "parent");
    return link.last_error().rfind("refused (certificate): ", 0) == 0;
  })) << link.ShortDebugString()
      << "\n"
      << county->LogTail() << city->LogTail();
  EXPECT_NE(link.last_error().find("node impostor claims jurisdiction \"dwk\", but its certificate "
                                   "does not name it"),
            std::string::npos)
      << link.last_error();
  EXPECT_FALSE(LogLines(county->log_path(), {"node link to parent failed", "refused (certificate)"})
                   .empty());
  EXPECT_TRUE(WaitFor([&] {
    return Metric(city->metrics_address(), "whistle_link_refusals_total{reason=\"certificate\"}") >=
           1;
  }));
  EXPECT_FALSE(
      LogLines(city->log_path(), {"node link refused", "\"reason\":\"certificate\""}).empty());
  EXPECT_TRUE(StaysDown(county->channel(), "parent", std::chrono::milliseconds(500)));
  EXPECT_FALSE(LinkOf(city->channel(), "dwk").connected());
  ExpectNothingCrosses(*city, *county);
}

// The TLS port accepts clients without a certificate (operators' tools); such a
// client speaking LinkService cannot pose as a child, whatever its hello says.
TEST_F(TlsTest, LinkClientWithoutACertificateIsRefused) {
  auto city = StartCity(szs_);
  ASSERT_TRUE(city->running()) << city->LogTail();
  for (const auto& credentials :
       {TlsCredentials(ca_->ca_file()),
        // With a valid certificate for another jurisdiction, claiming dwk.
        TlsCredentials(ca_->ca_file(), szs_.cert, szs_.key)}) {
    RawLink link(grpc::CreateChannel(city->address(), credentials));
    ASSERT_TRUE(link.Write(HelloFrame(ValidHello("dwk", "dwk"))));
    v1::LinkFrame answer;
    ASSERT_TRUE(link.Read(&answer)) << link.Finish().error_message();
    ASSERT_TRUE(answer.has_refusal()) << answer.ShortDebugString();
    EXPECT_EQ(answer.refusal().reason(), "certificate");
    EXPECT_EQ(answer.refusal().message(),
              "node dwk claims jurisdiction \"dwk\", but its certificate does not name it");
    EXPECT_EQ(link.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  EXPECT_EQ(Metric(city->metrics_address(), "whistle_link_refusals_total{reason=\"certificate\"}"),
            2);
  EXPECT_FALSE(LinkOf(city->channel(), "dwk").connected());
}

TEST_F(TlsTest, ChildRefusesAParentWhoseCertificateDoesNotNameItsRoot) {
  // The city node's certificate names only "city" (its CN), not the szs it hosts.
  CertFiles city_only = ca_->Issue("city-only", "city", {"city"});
  ASSERT_TRUE(ca_->ok()) << ca_->error();
  auto city = StartCity(city_only, "city");
  ASSERT_TRUE(city->running()) << city->LogTail();
  auto county = StartCounty(*city, dwk_, ca_->ca_file(), "dwk");
  ASSERT_TRUE(county->running()) << county->LogTail();

  v1::LinkStatus link;
  ASSERT_TRUE(WaitFor([&] {
    link = LinkOf(county->channel(), "parent");
    return !link.last_error().empty();
  })) << county->LogTail();
  EXPECT_EQ(link.last_error(), "parent city's certificate does not name \"szs\"");
  EXPECT_TRUE(StaysDown(county->channel(), "parent", std::chrono::seconds(1)));
  ExpectNothingCrosses(*city, *county);
}

TEST_F(TlsTest, PlaintextPeersCannotTalkToATlsNode) {
  auto city = StartCity(szs_);
  ASSERT_TRUE(city->running()) << city->LogTail();

  // A plaintext client: every call fails.
  auto plaintext = grpc::CreateChannel(city->address(), grpc::InsecureChannelCredentials());
  v1::GetLinksResponse links;
  grpc::Status status = GetLinks(plaintext, &links, /*wait_for_ready=*/false);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  v1::Case c;
  status = Get(*v1::CaseService::NewStub(plaintext), kCityLeader, "szs-000000000001", &c);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // A TLS client that does not trust the node's CA: fails too.
  TestCa other(dir_.path(), "other");
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_FALSE(GetLinks(grpc::CreateChannel(city->address(), TlsCredentials(other.ca_file())),
                        &links,
                        /*wait_for_ready=*/false)
                   .ok());
  // A TLS client trusting the CA, with or without a client certificate: served.
  EXPECT_TRUE(GetLinks(city->channel(), &links).ok());
  EXPECT_TRUE(GetLinks(grpc::CreateChannel(city->address(),
                                           TlsCredentials(ca_->ca_file(), dwk_.cert, dwk_.key)),
                       &links)
                  .ok());
  // A client certificate from another CA is checked and refused.
  CertFiles stranger = other.Issue("stranger", "stranger", {"stranger"});
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_FALSE(
      GetLinks(grpc::CreateChannel(city->address(),
                                   TlsCredentials(ca_->ca_file(), stranger.cert, stranger.key)),
               &links, /*wait_for_ready=*/false)
          .ok());

  // A plaintext child node dialing the TLS city never links.
  WhistledProcess county(dir_.path() + "/plain-dwk",
                         {"--node-id", "dwk", "--hosted-jurisdiction", "dwk", "--parent-address",
                          city->address(), "--link-keepalive-ms", "200"});
  ASSERT_TRUE(county.running()) << county.LogTail();
  v1::LinkStatus link;
  ASSERT_TRUE(WaitFor([&] {
    link = LinkOf(county.channel(), "parent");
    return !link.last_error().empty();
  })) << county.LogTail();
  EXPECT_EQ(link.last_error().rfind("dial " + city->address() + ": ", 0), 0u) << link.last_error();
  EXPECT_TRUE(StaysDown(county.channel(), "parent", std::chrono::seconds(1)));
  EXPECT_FALSE(LinkOf(city->channel(), "dwk").connected());
}

TEST_F(TlsTest, PlaintextNodesWarnExactlyOnce) {
  // A plaintext parent and child, linked: each logs the warning once, at start.
  WhistledProcess city(dir_.path() + "/plain-szs", {"--node-id", "szs", "--child-jurisdictions",
                                                    "dwk", "--link-keepalive-ms", "200"});
  ASSERT_TRUE(city.running()) << city.LogTail();
  WhistledProcess county(dir_.path() + "/plain-dwk",
                         {"--node-id", "dwk", "--hosted-jurisdiction", "dwk", "--parent-address",
                          city.address(), "--link-keepalive-ms", "200"});
  ASSERT_TRUE(county.running()) << county.LogTail();
  ASSERT_TRUE(WaitFor([&] { return LinkOf(county.channel(), "parent").connected(); }))
      << county.LogTail();
  v1::GetLinksResponse links;
  ASSERT_TRUE(GetLinks(city.channel(), &links).ok());
  EXPECT_FALSE(links.tls());
  // A few keepalive periods and a redial later, still once.
  county.Kill();
  ASSERT_TRUE(county.Restart()) << county.LogTail();
  ASSERT_TRUE(WaitFor([&] { return LinkOf(county.channel(), "parent").connected(); }));
  EXPECT_EQ(LogLines(city.log_path(), {kPlaintextWarning}).size(), 1u) << city.LogTail();
  // The county's log holds both of its runs: one warning each.
  EXPECT_EQ(LogLines(county.log_path(), {kPlaintextWarning}).size(), 2u) << county.LogTail();
  EXPECT_EQ(LogLines(county.log_path(), {"\"msg\":\"serving\""}).size(), 2u) << county.LogTail();
  // The warning says what to do.
  auto lines = LogLines(city.log_path(), {kPlaintextWarning});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("--tls-cert-file"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"level\":\"warn\""), std::string::npos) << lines[0];
}

TEST_F(TlsTest, WhistlectlTalksTls) {
  auto city = StartCity(szs_);
  ASSERT_TRUE(city->running()) << city->LogTail();
  auto county = StartCounty(*city, dwk_, ca_->ca_file(), "dwk");
  ASSERT_TRUE(county->running()) << county->LogTail();
  ASSERT_TRUE(WaitFor([&] { return LinkOf(county->channel(), "parent").connected(); }))
      << county->LogTail();
  const std::string token_file = dir_.path() + "/leader.token";
  {
    std::ofstream out(token_file);
    out << MintTestToken("p", "leader", "szs", "") << "\n";
  }
  const std::vector<std::string> who = {"--server", city->address(), "--token-file", token_file};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = who;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };

  // Plaintext: fails, and the hint says what to pass.
  auto [code, out] = Whistlectl(with({"topology", "szs"}));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("error: UNAVAILABLE"), std::string::npos) << out;
  EXPECT_NE(out.find("--tls-ca-file"), std::string::npos) << out;

  // The CA: served.
  std::tie(code, out) = Whistlectl(with({"--tls-ca-file", ca_->ca_file(), "topology", "szs"}));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("石嘴山市"), std::string::npos) << out;
  // From the environment, as whistled's own variables.
  std::tie(code, out) =
      Whistlectl(with({"topology", "dwk"}), {"WHISTLE_TLS_CA_FILE=" + ca_->ca_file()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("大武口区"), std::string::npos) << out;
  // With a client certificate too (whistlectl next to a node, with the node's variables).
  std::tie(code, out) = Whistlectl(
      with({"links"}), {"WHISTLE_TLS_CA_FILE=" + ca_->ca_file(),
                        "WHISTLE_TLS_CERT_FILE=" + szs_.cert, "WHISTLE_TLS_KEY_FILE=" + szs_.key});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("node szs  hosts szs  children dwk  tls on"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\ndwk +down +dwk +yes ")))
      << "the city's row for its child dwk:\n"
      << out;
  std::tie(code, out) = Whistlectl(
      {"--server", county->address(), "--tls-ca-file", ca_->ca_file(), "--json", "links"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"peer_node_id\": \"szs\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"connected\": true"), std::string::npos) << out;

  // The name the certificate must carry, when the dialled address is not in it.
  std::tie(code, out) = Whistlectl(
      with({"--tls-ca-file", ca_->ca_file(), "--tls-server-name", "szs", "topology", "szs"}));
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) = Whistlectl(
      with({"--tls-ca-file", ca_->ca_file(), "--tls-server-name", "hn", "topology", "szs"}));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("--tls-server-name"), std::string::npos) << out;

  // Another CA: refused by the client; a client certificate from another CA: by the node.
  TestCa other(dir_.path(), "other");
  CertFiles stranger = other.Issue("stranger", "stranger", {"stranger"});
  ASSERT_TRUE(other.ok()) << other.error();
  std::tie(code, out) = Whistlectl(with({"--tls-ca-file", other.ca_file(), "topology", "szs"}));
  EXPECT_EQ(code, 1) << out;
  std::tie(code, out) =
      Whistlectl(with({"--tls-ca-file", ca_->ca_file(), "--tls-cert-file", stranger.cert,
                       "--tls-key-file", stranger.key, "topology", "szs"}));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("client certificate (--tls-cert-file) must be signed by the nodes' CA"),
            std::string::npos)
      << out;
  // A node that is not there at all: no TLS hint to mislead.
  std::tie(code, out) = Whistlectl({"--server", "127.0.0.1:" + std::to_string(FreePort()),
                                    "--token-file", token_file, "topology"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_EQ(out.find("tls"), std::string::npos) << out;

  // Bad flags: named, exit 2, nothing sent.
  std::tie(code, out) = Whistlectl(with({"--tls-ca-file", dir_.path() + "/missing.crt", "links"}));
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--tls-ca-file: cannot read"), std::string::npos) << out;
  std::tie(code, out) =
      Whistlectl(with({"--tls-ca-file", ca_->ca_file(), "--tls-cert-file", szs_.cert, "links"}));
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--tls-cert-file and --tls-key-file go together"), std::string::npos) << out;
}

}  // namespace
}  // namespace whistle::testing
