// A parent refuses a child node that does not fit: another topology or policy,
// a jurisdiction it does not expect, another link protocol, or garbage on the
// wire. What a user notices: the child's GetLinks last_error and log line name
// what differs, the parent counts whistle_link_refusals_total{reason}, no link
// comes up, and nothing crosses: a case the child routes up stays on the child.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>

#include "core/policy.h"
#include "core/topology.h"
#include "tests/e2e/certs.h"
#include "tests/e2e/link_support.h"
#include "tests/e2e/scenario.h"
#include "tests/e2e/whistled_process.h"

#ifndef WHISTLE_SOURCE_DIR
#error "WHISTLE_SOURCE_DIR must name the source tree"
#endif

namespace whistle::testing {
namespace {

// `text` with its one occurrence of `from` replaced by `to` ("" when it occurs 0 or 2+ times).
std::string ReplaceOnce(const std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) return "";
  return text.substr(0, at) + to + text.substr(at + from.size());
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

// A well-formed copy of a case owned by the city, reported in a dwk grid: what a
// real dwk node would send. Tests break one thing in it at a time.
v1::CaseSync WellFormedSync(const std::string& case_id) {
  const auto ids = DawukouIds();
  v1::CaseSync sync;
  v1::Case* c = sync.mutable_case_();
  c->set_id(case_id);
  c->set_owner_id("szs");
  c->set_state(v1::CASE_STATE_REPORTED);
  c->set_category("dispute.neighbour");
  c->set_severity(v1::SEVERITY_EXTRAORDINARY);
  c->mutable_place()->set_grid_id(ids.grid);
  c->set_reporter("wang.grid");
  c->set_history_length(1);
  c->add_touched_ids(ids.grid);
  v1::HistoryEntry* e = sync.add_history();
  e->set_case_id(case_id);
  e->set_seq(1);
  e->set_kind(v1::TRANSITION_KIND_REPORT);
  e->set_to_state(v1::CASE_STATE_REPORTED);
  e->set_jurisdiction_id("szs");
  return sync;
}

v1::LinkFrame EnvelopeFrame(uint64_t seq, const v1::CaseSync& sync) {
  v1::LinkFrame f;
  f.mutable_envelope()->set_seq(seq);
  f.mutable_envelope()->set_written_at_ms(1);
  *f.mutable_envelope()->mutable_payload()->mutable_case_sync() = sync;
  return f;
}

class LinkRefusalTest : public ::testing::Test {
 protected:
  std::unique_ptr<WhistledProcess> StartParent(const std::string& children,
                                               std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {
        "--node-id", "szs", "--child-jurisdictions", children, "--link-keepalive-ms", "200"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return std::make_unique<WhistledProcess>(dir_.path() + "/szs", flags);
  }

  std::unique_ptr<WhistledProcess> StartChild(const WhistledProcess& parent,
                                              std::vector<std::string> extra = {},
                                              const std::string& name = "dwk") {
    std::vector<std::string> flags = {"--node-id",
                                      "dwk",
                                      "--hosted-jurisdiction",
                                      "dwk",
                                      "--parent-address",
                                      parent.address(),
                                      "--link-keepalive-ms",
                                      "200"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return std::make_unique<WhistledProcess>(dir_.path() + "/" + name, flags);
  }

  // The child's link to its parent ends refused with `reason`; returns the message.
  std::string ExpectRefused(WhistledProcess& parent, WhistledProcess& child,
                            const std::string& reason) {
    const std::string prefix = "refused (" + reason + "): ";
    v1::LinkStatus link;
    bool refused = WaitFor([&] {
      link = LinkOf(child.channel(), "parent");
      return link.last_error().rfind(prefix, 0) == 0;
    });
    EXPECT_TRUE(refused) << "child's last_error: \"" << link.last_error() << "\"\n"
                         << child.LogTail() << parent.LogTail();
    EXPECT_FALSE(link.connected());
    EXPECT_EQ(link.peer_address(), parent.address());
    const std::string message =
        link.last_error().substr(std::min(prefix.size(), link.last_error().size()));
    // The child says so in its log, once per distinct error rather than once per redial.
    auto lines = LogLines(child.log_path(), {"node link to parent failed", prefix});
    EXPECT_EQ(lines.size(), 1u) << child.LogTail();
    std::string escaped;  // as the JSON log line carries it
    for (char ch : message) escaped += ch == '"' ? std::string("\\\"") : std::string(1, ch);
    if (!lines.empty()) EXPECT_NE(lines[0].find(escaped), std::string::npos) << lines[0];
    // The parent counts it by reason and logs it.
    const std::string series = "whistle_link_refusals_total{reason=\"" + reason + "\"}";
    EXPECT_TRUE(WaitFor([&] { return Metric(parent.metrics_address(), series) >= 1; }))
        << series << " on the parent:\n"
        << HttpGet(parent.metrics_address(), "/metrics").substr(0, 2000);
    EXPECT_FALSE(
        LogLines(parent.log_path(), {"node link refused", "\"reason\":\"" + reason + "\""}).empty())
        << parent.LogTail();
    // The child keeps redialling (with backoff) and is refused each time.
    double first = Metric(parent.metrics_address(), series);
    EXPECT_TRUE(WaitFor([&] { return Metric(parent.metrics_address(), series) > first; }))
        << "no second refusal: the child stopped redialling?";
    return message;
  }

  // A case the child routes above itself stays on the child: it waits in the
  // child's outbox, and the parent never hears of it.
  void ExpectNothingCrosses(WhistledProcess& parent, WhistledProcess& child) {
    v1::Case reported;
    auto status =
        ReportCase(child.channel(), GridWorker(DawukouIds()),
                   ExtraordinaryReport("refused-" + std::to_string(child.port())), &reported);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(reported.owner_id(), "szs");
    v1::LinkStatus link;
    EXPECT_TRUE(WaitFor([&] {
      link = LinkOf(child.channel(), "parent");
      return link.outbox_depth() >= 1;
    })) << "the case did not wait in the child's outbox (depth "
        << link.outbox_depth() << ")";
    EXPECT_FALSE(link.connected());
    EXPECT_EQ(link.sent(), 0u);
    v1::Case on_child;
    ASSERT_TRUE(GetCase(child.channel(), kCityLeader, reported.id(), &on_child).ok());
    EXPECT_EQ(on_child.owner_id(), "szs");
    v1::Case on_parent;
    status = GetCase(parent.channel(), kCityLeader, reported.id(), &on_parent);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND)
        << "the parent has " << reported.id() << ": " << on_parent.ShortDebugString();
    EXPECT_EQ(CountedCases(parent.channel()), 0);
    // And the parent shows its expected child as not connected.
    v1::GetLinksResponse links;
    ASSERT_TRUE(GetLinks(parent.channel(), &links).ok());
    for (const auto& l : links.links()) EXPECT_FALSE(l.connected()) << l.ShortDebugString();
  }

  TempDir dir_;
};

TEST_F(LinkRefusalTest, TopologyMismatchIsRefusedNamingBothFingerprints) {
  const std::string shipped = ReadText(WHISTLE_SOURCE_DIR "/config/shizuishan.json");
  ASSERT_FALSE(shipped.empty());
  // One jurisdiction renamed: 大武口区 -> 大武口新区.
  const std::string renamed =
      ReplaceOnce(shipped, "\"name\": \"大武口区\"", "\"name\": \"大武口新区\"");
  ASSERT_FALSE(renamed.empty()) << "config/shizuishan.json no longer names 大武口区 once";
  const std::string file = dir_.path() + "/renamed-topology.json";
  ASSERT_TRUE(WriteFile(file, renamed));
  auto parsed = core::ParseTopology(renamed, file);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const std::string child_fp = TopologyFingerprint(*parsed);
  const std::string parent_fp = DefaultTopologyFingerprint();
  ASSERT_NE(child_fp, parent_fp);

  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto child = StartChild(*parent, {"--topology-file", file});
  ASSERT_TRUE(child->running()) << child->LogTail();

  const std::string message = ExpectRefused(*parent, *child, "topology");
  EXPECT_NE(message.find("child dwk has " + child_fp), std::string::npos) << message;
  EXPECT_NE(message.find("parent szs has " + parent_fp), std::string::npos) << message;
  EXPECT_NE(message.find("--topology-file"), std::string::npos) << message;
  ExpectNothingCrosses(*parent, *child);
}

TEST_F(LinkRefusalTest, PolicyMismatchIsRefusedNamingBothFingerprints) {
  const std::string shipped = ReadText(WHISTLE_SOURCE_DIR "/config/policy.json");
  ASSERT_FALSE(shipped.empty());
  // One time limit changed: 30 minutes to accept becomes 20.
  const std::string changed =
      ReplaceOnce(shipped, "\"accept_seconds\": \"1800\"", "\"accept_seconds\": \"1200\"");
  ASSERT_FALSE(changed.empty()) << "config/policy.json no longer has accept_seconds 1800 once";
  const std::string file = dir_.path() + "/changed-policy.json";
  ASSERT_TRUE(WriteFile(file, changed));
  auto parsed = core::ParsePolicy(changed, file);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const std::string child_fp = PolicyFingerprint(*parsed);
  const std::string parent_fp = DefaultPolicyFingerprint();
  ASSERT_NE(child_fp, parent_fp);

  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto child = StartChild(*parent, {"--policy-file", file});
  ASSERT_TRUE(child->running()) << child->LogTail();

  const std::string message = ExpectRefused(*parent, *child, "policy");
  EXPECT_NE(message.find("child dwk has " + child_fp), std::string::npos) << message;
  EXPECT_NE(message.find("parent szs has " + parent_fp), std::string::npos) << message;
  EXPECT_NE(message.find("--policy-file"), std::string::npos) << message;
  ExpectNothingCrosses(*parent, *child);
}

TEST_F(LinkRefusalTest, UnexpectedChildIsRefusedNamingItsClaimAndTheExpectedChildren) {
  auto parent = StartParent("hn");  // expects 惠农区 only
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto child = StartChild(*parent);  // hosts 大武口区
  ASSERT_TRUE(child->running()) << child->LogTail();

  const std::string message = ExpectRefused(*parent, *child, "unexpected_child");
  EXPECT_NE(message.find("node dwk claims jurisdiction \"dwk\""), std::string::npos) << message;
  EXPECT_NE(message.find("expects children [hn]"), std::string::npos) << message;
  EXPECT_NE(message.find("this node (szs)"), std::string::npos) << message;
  // The parent never made a link for the stranger.
  v1::GetLinksResponse links;
  ASSERT_TRUE(GetLinks(parent->channel(), &links).ok());
  EXPECT_EQ(LinkTo(links, "dwk").peer(), "");
  EXPECT_FALSE(LinkTo(links, "hn").connected());
  ExpectNothingCrosses(*parent, *child);
}

// Case ids start with the node id, so two nodes with one id would mint the same
// ids: a child with its parent's id must not link.
TEST_F(LinkRefusalTest, ChildWithTheParentsNodeIdIsRefused) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto child = StartChild(*parent, {"--node-id", "szs"});  // a later flag wins
  ASSERT_TRUE(child->running()) << child->LogTail();

  const std::string message = ExpectRefused(*parent, *child, "duplicate");
  EXPECT_NE(message.find("node id \"szs\""), std::string::npos) << message;
  EXPECT_NE(message.find("--node-id"), std::string::npos) << message;
  ExpectNothingCrosses(*parent, *child);
}

// A second node claiming a jurisdiction whose link is up is refused; the first keeps it.
TEST_F(LinkRefusalTest, SecondChildForALinkedJurisdictionIsRefused) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto first = StartChild(*parent);
  ASSERT_TRUE(first->running()) << first->LogTail();
  ASSERT_TRUE(WaitFor([&] { return LinkOf(first->channel(), "parent").connected(); }))
      << first->LogTail();
  auto second = StartChild(*parent, {"--node-id", "dwkb"}, "dwk-second");
  ASSERT_TRUE(second->running()) << second->LogTail();

  const std::string message = ExpectRefused(*parent, *second, "duplicate");
  EXPECT_NE(message.find("node dwkb claims jurisdiction \"dwk\""), std::string::npos) << message;
  EXPECT_NE(message.find("already linked to node dwk"), std::string::npos) << message;
  // The first link never flapped.
  v1::LinkStatus link = LinkOf(parent->channel(), "dwk");
  EXPECT_TRUE(link.connected());
  EXPECT_EQ(link.peer_node_id(), "dwk");
  EXPECT_EQ(link.reconnects(), 0u);
  link = LinkOf(first->channel(), "parent");
  EXPECT_TRUE(link.connected());
  EXPECT_EQ(link.reconnects(), 0u);
  // And the first still carries cases up; the second's stay with it.
  v1::Case reported;
  ASSERT_TRUE(ReportCase(first->channel(), GridWorker(DawukouIds()), ExtraordinaryReport("first-1"),
                         &reported)
                  .ok());
  v1::Case on_parent;
  EXPECT_TRUE(WaitFor(
      [&] { return GetCase(parent->channel(), kCityLeader, reported.id(), &on_parent).ok(); }));
  ASSERT_TRUE(ReportCase(second->channel(), GridWorker(DawukouIds()),
                         ExtraordinaryReport("second-1"), &reported)
                  .ok());
  EXPECT_TRUE(WaitFor([&] { return LinkOf(second->channel(), "parent").outbox_depth() >= 1; }));
  EXPECT_EQ(GetCase(parent->channel(), kCityLeader, reported.id(), &on_parent).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// The control for the two mismatches above: the shipped config files, given
// explicitly to the child, are the parent's embedded defaults, and the link comes up.
TEST_F(LinkRefusalTest, SameTopologyAndPolicyFromFilesLink) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto child = StartChild(*parent, {"--topology-file", WHISTLE_SOURCE_DIR "/config/shizuishan.json",
                                    "--policy-file", WHISTLE_SOURCE_DIR "/config/policy.json"});
  ASSERT_TRUE(child->running()) << child->LogTail();
  v1::LinkStatus link;
  ASSERT_TRUE(WaitFor([&] {
    link = LinkOf(child->channel(), "parent");
    return link.connected();
  })) << link.ShortDebugString()
      << "\n"
      << child->LogTail() << parent->LogTail();
  EXPECT_EQ(link.peer_node_id(), "szs");
  EXPECT_EQ(link.last_error(), "");
  EXPECT_TRUE(LinkOf(parent->channel(), "dwk").connected());
  EXPECT_LT(Metric(parent->metrics_address(), "whistle_link_refusals_total{reason=\"topology\"}"),
            1);

  // And a case routed up does cross.
  v1::Case reported;
  ASSERT_TRUE(
      ReportCase(child->channel(), GridWorker(DawukouIds()), ExtraordinaryReport("ok-1"), &reported)
          .ok());
  v1::Case on_parent;
  EXPECT_TRUE(WaitFor([&] {
    return GetCase(parent->channel(), kCityLeader, reported.id(), &on_parent).ok();
  })) << parent->LogTail();
  EXPECT_EQ(on_parent.owner_id(), "szs");
}

TEST_F(LinkRefusalTest, OtherProtocolVersionGetsARefusalFrame) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();

  RawLink link(parent->channel());
  auto hello = ValidHello("dwk", "dwk");
  hello.set_protocol(static_cast<v1::LinkProtocol>(99));
  ASSERT_TRUE(link.Write(HelloFrame(hello)));
  v1::LinkFrame answer;
  ASSERT_TRUE(link.Read(&answer)) << "no answer to the hello: " << link.Finish().error_message();
  ASSERT_TRUE(answer.has_refusal()) << answer.ShortDebugString();
  EXPECT_EQ(answer.refusal().reason(), "version");
  EXPECT_NE(answer.refusal().message().find("link protocol 99 is not supported"), std::string::npos)
      << answer.refusal().message();
  EXPECT_NE(answer.refusal().message().find("speaks 1"), std::string::npos)
      << answer.refusal().message();
  grpc::Status status = link.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(status.error_message(), answer.refusal().message());
  EXPECT_EQ(Metric(parent->metrics_address(), "whistle_link_refusals_total{reason=\"version\"}"),
            1);
  EXPECT_FALSE(LinkOf(parent->channel(), "dwk").connected());
}

TEST_F(LinkRefusalTest, GarbageHellosAreRefusedAndTheParentCarriesOn) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  // Before any hello, every refusal reason is a series at 0 (rate() sees the first).
  for (const char* reason : {"version", "topology", "policy", "unexpected_child", "certificate",
                             "duplicate", "invalid"}) {
    EXPECT_EQ(Metric(parent->metrics_address(),
                     std::string("whistle_link_refusals_total{reason=\"") + reason + "\"}"),
              0)
        << reason;
  }

  {  // First frame not a hello.
    RawLink link(parent->channel());
    v1::LinkFrame ping;
    ping.mutable_ping()->set_sent_at_ns(1);
    ASSERT_TRUE(link.Write(ping));
    v1::LinkFrame answer;
    EXPECT_FALSE(link.Read(&answer)) << answer.ShortDebugString();
    grpc::Status status = link.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find("want hello"), std::string::npos)
        << status.error_message();
  }
  {  // An envelope before any hello, carrying a well-formed case: not applied.
    RawLink link(parent->channel());
    ASSERT_TRUE(link.Write(EnvelopeFrame(1, WellFormedSync("dwk-000000000901"))));
    grpc::Status status = link.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  }
  {  // An empty hello: every field missing (the node id is checked first).
    RawLink link(parent->channel());
    ASSERT_TRUE(link.Write(HelloFrame(v1::LinkHello())));
    v1::LinkFrame answer;
    ASSERT_TRUE(link.Read(&answer));
    ASSERT_TRUE(answer.has_refusal()) << answer.ShortDebugString();
    EXPECT_EQ(answer.refusal().reason(), "invalid");
    EXPECT_EQ(link.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {  // Protocol right, fingerprints empty.
    RawLink link(parent->channel());
    v1::LinkHello hello;
    hello.set_protocol(v1::LINK_PROTOCOL_V1);
    hello.set_node_id("dwk");
    hello.set_hosted_root("dwk");
    ASSERT_TRUE(link.Write(HelloFrame(hello)));
    v1::LinkFrame answer;
    ASSERT_TRUE(link.Read(&answer));
    ASSERT_TRUE(answer.has_refusal()) << answer.ShortDebugString();
    EXPECT_EQ(answer.refusal().reason(), "topology");
    EXPECT_NE(answer.refusal().message().find("parent szs has " + DefaultTopologyFingerprint()),
              std::string::npos)
        << answer.refusal().message();
    EXPECT_EQ(link.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {  // Everything right but a node id no node can have (too long, not [a-z0-9]).
    RawLink link(parent->channel());
    ASSERT_TRUE(link.Write(HelloFrame(ValidHello("x-" + std::string(40, 'y'), "dwk"))));
    v1::LinkFrame answer;
    ASSERT_TRUE(link.Read(&answer));
    ASSERT_TRUE(answer.has_refusal()) << answer.ShortDebugString();
    EXPECT_EQ(answer.refusal().reason(), "invalid");
    EXPECT_NE(answer.refusal().message().find("hello.node_id"), std::string::npos);
    EXPECT_EQ(link.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {  // A node id but no hosted root.
    RawLink link(parent->channel());
    ASSERT_TRUE(link.Write(HelloFrame(ValidHello("fake", ""))));
    v1::LinkFrame answer;
    ASSERT_TRUE(link.Read(&answer));
    ASSERT_TRUE(answer.has_refusal()) << answer.ShortDebugString();
    EXPECT_EQ(answer.refusal().reason(), "unexpected_child");
    EXPECT_NE(answer.refusal().message().find("claims jurisdiction \"\""), std::string::npos)
        << answer.refusal().message();
    EXPECT_NE(answer.refusal().message().find("expects children [dwk]"), std::string::npos)
        << answer.refusal().message();
    EXPECT_EQ(link.Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {  // A stream that ends without a word.
    RawLink link(parent->channel());
    grpc::Status status = link.Finish();
    EXPECT_FALSE(status.ok());
  }

  EXPECT_TRUE(Alive(parent->pid())) << parent->LogTail();
  v1::GetLinksResponse serving;
  EXPECT_TRUE(GetLinks(parent->channel(), &serving).ok()) << parent->LogTail();
  v1::Case c;
  EXPECT_EQ(GetCase(parent->channel(), kCityLeader, "dwk-000000000901", &c).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CountedCases(parent->channel()), 0);
  EXPECT_EQ(Metric(parent->metrics_address(), "whistle_link_refusals_total{reason=\"invalid\"}"),
            2);
  EXPECT_EQ(Metric(parent->metrics_address(), "whistle_link_refusals_total{reason=\"topology\"}"),
            1);
  EXPECT_EQ(
      Metric(parent->metrics_address(), "whistle_link_refusals_total{reason=\"unexpected_child\"}"),
      1);
  EXPECT_FALSE(LinkOf(parent->channel(), "dwk").connected());
}

// After a valid hello from a fake child, envelopes that break the protocol
// (seq 0) or carry a broken case (history not matching history_length, no
// case at all) are not stored, and the parent stays up.
TEST_F(LinkRefusalTest, GarbageEnvelopesAfterAValidHelloAreNotStored) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  auto welcome = [&](RawLink& link) {
    if (!link.Write(HelloFrame(ValidHello("fakedwk", "dwk")))) return false;
    v1::LinkFrame answer;
    if (!link.ReadSkippingPings(&answer)) return false;
    EXPECT_TRUE(answer.has_welcome()) << answer.ShortDebugString();
    EXPECT_EQ(answer.welcome().node_id(), "szs");
    EXPECT_EQ(answer.welcome().hosted_root(), "szs");
    return answer.has_welcome();
  };

  {  // seq 0 (numbering starts at 1) with a well-formed case: the parent ends the stream.
    RawLink link(parent->channel());
    // (At once: a fake child that stays silent for 3 keepalives is dropped anyway.)
    ASSERT_TRUE(welcome(link));
    ASSERT_TRUE(link.Write(EnvelopeFrame(0, WellFormedSync("dwk-000000000900"))));
    v1::LinkFrame frame;
    bool ended = !link.ReadSkippingPings(&frame);
    EXPECT_TRUE(ended) << "the parent answered an envelope with seq 0: "
                       << frame.ShortDebugString();
    link.Finish();
    v1::LinkStatus status;
    EXPECT_TRUE(WaitFor([&] {
      status = LinkOf(parent->channel(), "dwk");
      return status.peer() == "dwk" && !status.connected();
    }));
    EXPECT_EQ(status.peer_node_id(), "fakedwk");  // the session was up
  }

  // A case whose history does not match its history_length; one whose history
  // belongs to another case; an envelope without a case.
  auto short_history = WellFormedSync("dwk-000000000901");
  short_history.mutable_case_()->set_history_length(2);
  auto foreign_history = WellFormedSync("dwk-000000000902");
  foreign_history.mutable_history(0)->set_case_id("dwk-000000000999");
  auto unknown_owner = WellFormedSync("dwk-000000000903");
  unknown_owner.mutable_case_()->set_owner_id("nowhere");
  v1::LinkFrame empty;
  empty.mutable_envelope()->set_seq(4);
  {
    RawLink link(parent->channel());
    ASSERT_TRUE(welcome(link));
    ASSERT_TRUE(link.Write(EnvelopeFrame(1, short_history)));
    ASSERT_TRUE(link.Write(EnvelopeFrame(2, foreign_history)));
    ASSERT_TRUE(link.Write(EnvelopeFrame(3, unknown_owner)));
    ASSERT_TRUE(link.Write(empty));
    // The parent acknowledges them all (dropped, and the link does not stall on them).
    v1::LinkFrame frame;
    uint64_t acked = 0;
    while (acked < 4 && link.ReadSkippingPings(&frame)) {
      if (frame.has_ack()) acked = frame.ack().seq();
    }
    EXPECT_EQ(acked, 4u) << "the link ended: " << link.Finish().error_message();
    // A second hello on a running link: the parent ends the session and says why.
    ASSERT_TRUE(link.Write(HelloFrame(ValidHello("fakedwk", "dwk"))));
    EXPECT_FALSE(link.ReadSkippingPings(&frame)) << frame.ShortDebugString();
    EXPECT_TRUE(WaitFor([&] {
      return LinkOf(parent->channel(), "dwk").last_error().find("unexpected frame kind") !=
             std::string::npos;
    })) << LinkOf(parent->channel(), "dwk").ShortDebugString();
    // The error is recorded a moment before the session is marked closed.
    EXPECT_TRUE(WaitFor([&] { return !LinkOf(parent->channel(), "dwk").connected(); }));
    link.Finish();
  }
  // Every refused copy is in the parent's log.
  EXPECT_GE(LogLines(parent->log_path(), {"case copy from a peer refused"}).size(), 4u)
      << parent->LogTail();

  EXPECT_TRUE(Alive(parent->pid())) << parent->LogTail();
  v1::GetLinksResponse serving;
  EXPECT_TRUE(GetLinks(parent->channel(), &serving).ok()) << parent->LogTail();
  for (const char* id :
       {"dwk-000000000900", "dwk-000000000901", "dwk-000000000902", "dwk-000000000903"}) {
    v1::Case c;
    auto status = GetCase(parent->channel(), kCityLeader, id, &c);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND)
        << id << ": " << status.error_message() << " " << c.ShortDebugString();
  }
  EXPECT_EQ(CountedCases(parent->channel()), 0);
  // The parent still serves: a report of its own works.
  v1::Case own;
  auto status =
      ReportCase(parent->channel(), GridWorker(DawukouIds()), ExtraordinaryReport("own-1"), &own);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A forwarded command or directive receipt with garbage in it gets an error
// answer naming what is wrong, not a crash, and changes nothing.
TEST_F(LinkRefusalTest, GarbageForwardsGetErrorAnswers) {
  auto parent = StartParent("dwk");
  ASSERT_TRUE(parent->running()) << parent->LogTail();
  RawLink link(parent->channel());
  ASSERT_TRUE(link.Write(HelloFrame(ValidHello("fakedwk", "dwk"))));
  v1::LinkFrame frame;
  ASSERT_TRUE(link.ReadSkippingPings(&frame));
  ASSERT_TRUE(frame.has_welcome()) << frame.ShortDebugString();

  v1::LinkFrame no_caller;  // nobody asked
  no_caller.mutable_forward()->set_id(1);
  no_caller.mutable_forward()->set_case_id("szs-000000000001");
  no_caller.mutable_forward()->set_owner_id("szs");
  no_caller.mutable_forward()->mutable_command()->mutable_accept();
  v1::LinkFrame report = no_caller;  // reports are not forwarded
  report.mutable_forward()->set_id(2);
  auto* caller = report.mutable_forward()->mutable_caller();
  caller->set_user("wang.grid");
  caller->set_role(v1::ROLE_GRID_WORKER);
  caller->set_jurisdiction_id(DawukouIds().grid);
  *report.mutable_forward()->mutable_command()->mutable_report() = ExtraordinaryReport("fwd-1");
  v1::LinkFrame unknown_owner = no_caller;
  unknown_owner.mutable_forward()->set_id(3);
  *unknown_owner.mutable_forward()->mutable_caller() = *caller;
  unknown_owner.mutable_forward()->set_owner_id("nowhere");
  v1::LinkFrame unknown_case = unknown_owner;  // well-formed, but no such case
  unknown_case.mutable_forward()->set_id(4);
  unknown_case.mutable_forward()->set_owner_id("szs");
  caller = unknown_case.mutable_forward()->mutable_caller();
  caller->set_role(v1::ROLE_STAFF);
  caller->set_jurisdiction_id("szs");
  for (const auto* f : {&no_caller, &report, &unknown_owner, &unknown_case}) {
    ASSERT_TRUE(link.Write(*f));
  }
  // Directive receipts for units the parent hosts, each wrong in one way.
  const v1::Topology config = core::ShizuishanTopology();
  const auto topology = *core::Topology::Build(config);
  std::string own_grid;  // a grid the parent hosts (outside dwk)
  for (const auto& j : config.jurisdictions()) {
    if (j.level() == v1::LEVEL_GRID && !topology->IsWithin(j.id(), "dwk")) {
      own_grid = j.id();
      break;
    }
  }
  ASSERT_FALSE(own_grid.empty());
  auto receipt_frame = [&](uint64_t id, const std::string& unit, const std::string& directive) {
    v1::LinkFrame f;
    auto* fwd = f.mutable_forward();
    fwd->set_id(id);
    fwd->mutable_caller()->set_user("gw.x");
    fwd->mutable_caller()->set_role(v1::ROLE_GRID_WORKER);
    fwd->mutable_caller()->set_jurisdiction_id(own_grid);
    fwd->mutable_receipt()->set_directive_id(directive);
    fwd->mutable_receipt()->set_unit_id(unit);
    fwd->mutable_receipt()->mutable_sign()->set_note("ok");
    return f;
  };
  const std::map<uint64_t, std::pair<v1::LinkFrame, int>> receipts = {
      {5, {receipt_frame(5, DawukouIds().grid, "szs-d-000000000001"), 7}},  // not its unit
      {6, {receipt_frame(6, "nowhere", "szs-d-000000000001"), 3}},          // unknown unit
      {7,
       {[&] {
          auto f = receipt_frame(7, own_grid, "szs-d-000000000001");
          f.mutable_forward()->mutable_receipt()->clear_kind();
          return f;
        }(),
        3}},                                                       // no sign/complete
      {8, {receipt_frame(8, own_grid, "szs d\x01"), 3}},           // bad directive id
      {9, {receipt_frame(9, own_grid, "szs-d-000000000099"), 5}},  // no such directive
      {10,
       {[&] {  // a grid worker reading the receipts of the whole city
          auto f = receipt_frame(10, own_grid, "szs-d-000000000001");
          f.mutable_forward()->clear_receipt();
          f.mutable_forward()->mutable_targets()->set_directive_id("szs-d-000000000001");
          f.mutable_forward()->mutable_targets()->set_jurisdiction_id("szs");
          return f;
        }(),
        7}},
      {11,
       {[&] {  // an inbox of a unit that does not exist
          auto f = receipt_frame(11, own_grid, "szs-d-000000000001");
          f.mutable_forward()->clear_receipt();
          f.mutable_forward()->mutable_inbox()->set_unit_id("nowhere");
          return f;
        }(),
        3}},
  };
  for (const auto& [id, f] : receipts) ASSERT_TRUE(link.Write(f.first));
  std::map<uint64_t, int> codes;
  while (codes.size() < 4 + receipts.size() && link.ReadSkippingPings(&frame)) {
    if (frame.has_answer()) codes[frame.answer().id()] = frame.answer().code();
  }
  ASSERT_EQ(codes.size(), 4 + receipts.size());
  for (const auto& [id, code] : codes) EXPECT_NE(code, 0) << "forward " << id;
  for (const auto& [id, f] : receipts) EXPECT_EQ(codes[id], f.second) << "receipt forward " << id;
  link.Finish();
  EXPECT_TRUE(Alive(parent->pid())) << parent->LogTail();
  v1::GetLinksResponse serving;
  EXPECT_TRUE(GetLinks(parent->channel(), &serving).ok()) << parent->LogTail();
  EXPECT_EQ(CountedCases(parent->channel()), 0);
}

}  // namespace
}  // namespace whistle::testing
