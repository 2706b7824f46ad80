#include "link/link_manager.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <prometheus/registry.h>

#include <cstdio>
#include <random>

#include "core/log.h"
#include "core/placement.h"
#include "core/text.h"
#include "link/peer.h"
#include "link/session.h"

namespace whistle::link {

namespace {

constexpr auto kBackoffMin = std::chrono::milliseconds(100);
constexpr auto kBackoffMax = std::chrono::milliseconds(500);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void LogLink(LogLevel level, std::string_view msg, const std::string& peer,
             const std::string& detail) {
  Log(level, msg, {{"peer", peer}, {"detail", detail}});
}

template <class ReaderWriter, class Context>
class StreamOf final : public FrameStream {
 public:
  StreamOf(ReaderWriter* rw, Context* ctx) : rw_(rw), ctx_(ctx) {}
  bool Read(v1::LinkFrame* frame) override { return rw_->Read(frame); }
  bool Write(const v1::LinkFrame& frame) override { return rw_->Write(frame); }
  void Cancel() override { ctx_->TryCancel(); }

 private:
  ReaderWriter* rw_;
  Context* ctx_;
};

// Cancels `cancel` unless disarmed within `timeout`: bounds a handshake
// against a peer (or a black hole) that never answers.
class Watchdog {
 public:
  Watchdog(std::chrono::milliseconds timeout, std::function<void()> cancel)
      : thread_([this, timeout, cancel = std::move(cancel)] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, timeout, [&] { return disarmed_; })) cancel();
        }) {}
  ~Watchdog() { Disarm(); }
  void Disarm() {
    {
      std::lock_guard lock(mu_);
      disarmed_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;
};

bool Names(const grpc::AuthContext* auth, const std::string& name) {
  if (auth == nullptr) return false;
  for (const auto& n : CertificateNames(*auth)) {
    if (n == name) return true;
  }
  return false;
}

// A peer's word in a message: a plain short id as it is, anything else
// quoted (bounded, escaped) by core::Quote.
std::string Shown(const std::string& v) {
  return core::CheckId("", v, 64).ok() ? v : core::Quote(v);
}

// At most `max` bytes of `v` (valid UTF-8, as every parsed proto3 string is),
// cut at a character boundary.
std::string Bounded(const std::string& v, size_t max) {
  if (v.size() <= max) return v;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  return v.substr(0, n) + "…";
}

}  // namespace

std::string Fingerprint(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<std::string> CertificateNames(const grpc::AuthContext& auth) {
  std::vector<std::string> names;
  for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
    for (const auto& v : auth.FindPropertyValues(property)) names.emplace_back(v.data(), v.size());
  }
  return names;
}

namespace {

prometheus::Family<prometheus::Counter>& RefusalFamily(prometheus::Registry& registry) {
  return prometheus::BuildCounter()
      .Name("whistle_link_refusals_total")
      .Help("Node link hellos refused, by reason.")
      .Register(registry);
}

}  // namespace

LinkManager::LinkManager(LinkOptions options, actors::Node& node, storage::Store& store,
                         prometheus::Registry* registry)
    : options_(std::move(options)), node_(node), store_(store), registry_(registry) {
  std::lock_guard lock(mu_);
  if (!options_.parent_address.empty()) {
    Peer& p = PeerFor(std::string(core::kParentPeer));
    p.address = options_.parent_address;
  }
  for (const auto& child : node_.placement().child_roots()) PeerFor(child);
  // A parent's refusal counters exist from start-up at 0 (rate() sees the first).
  if (registry_ != nullptr && !node_.placement().child_roots().empty()) {
    for (const char* reason : {"version", "topology", "policy", "unexpected_child", "certificate",
                               "duplicate", "invalid"}) {
      RefusalFamily(*registry_).Add({{"reason", reason}});
    }
  }
}

LinkManager::~LinkManager() { Stop(); }

LinkManager::Peer& LinkManager::PeerFor(const std::string& name) {
  auto& slot = peers_[name];
  if (slot) return *slot;
  slot = std::make_unique<Peer>();
  Peer& p = *slot;
  p.name = name;
  p.direction = name == core::kParentPeer ? "up" : "down";
  if (registry_ == nullptr) {
    static prometheus::Registry unused;  // metrics off: record into a registry nobody reads
    registry_ = &unused;
  }
  const std::map<std::string, std::string> labels = {{"peer", name}, {"direction", p.direction}};
  auto& r = *registry_;
  p.metrics.connected = &prometheus::BuildGauge()
                             .Name("whistle_link_connected")
                             .Help("1 while the node link to the peer is established.")
                             .Register(r)
                             .Add(labels);
  p.metrics.sent = &prometheus::BuildCounter()
                        .Name("whistle_link_messages_sent_total")
                        .Help("Durable envelopes sent to the peer, resends included.")
                        .Register(r)
                        .Add(labels);
  p.metrics.received = &prometheus::BuildCounter()
                            .Name("whistle_link_messages_received_total")
                            .Help("Durable envelopes received from the peer.")
                            .Register(r)
                            .Add(labels);
  p.metrics.depth = &prometheus::BuildGauge()
                         .Name("whistle_link_outbox_depth")
                         .Help("Messages written for the peer and not yet acknowledged.")
                         .Register(r)
                         .Add(labels);
  p.metrics.oldest =
      &prometheus::BuildGauge()
           .Name("whistle_link_outbox_oldest_age_seconds")
           .Help("Age of the oldest unacknowledged message for the peer; 0 when empty.")
           .Register(r)
           .Add(labels);
  p.metrics.resends = &prometheus::BuildCounter()
                           .Name("whistle_link_resends_total")
                           .Help("Envelopes sent again after a reconnect.")
                           .Register(r)
                           .Add(labels);
  p.metrics.reconnects = &prometheus::BuildCounter()
                              .Name("whistle_link_reconnects_total")
                              .Help("Sessions established after an earlier one ended.")
                              .Register(r)
                              .Add(labels);
  p.metrics.rtt = &prometheus::BuildHistogram()
                       .Name("whistle_link_rtt_seconds")
                       .Help("Ping round trip over the node link.")
                       .Register(r)
                       .Add(labels, prometheus::Histogram::BucketBoundaries{
                                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05, 0.1, 0.25, 0.5, 1});
  return p;
}

void LinkManager::Update(const std::string& name, const std::function<void(Peer&)>& fn) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(name);
  if (it != peers_.end()) fn(*it->second);
}

void LinkManager::CountRefusal(const std::string& reason) {
  if (registry_ == nullptr) return;
  RefusalFamily(*registry_).Add({{"reason", reason}}).Increment();
}

void LinkManager::Start() {
  refresher_ = std::thread([this] { RefreshLoop(); });
  if (!options_.parent_address.empty()) dialer_ = std::thread([this] { DialLoop(); });
}

void LinkManager::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(dial_mu_);
    if (dial_context_) dial_context_->TryCancel();
  }
  dial_cv_.notify_all();
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, p] : peers_) {
      if (p->session) sessions.push_back(p->session);
    }
  }
  for (auto& s : sessions) s->Close();
  if (dialer_.joinable()) dialer_.join();
  if (refresher_.joinable()) refresher_.join();
}

void LinkManager::OutboxWritten(const std::string& peer, uint64_t seq) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(peer);
    if (it != peers_.end()) session = it->second->session;
  }
  if (session) session->Notify(seq);
}

void LinkManager::Forward(const std::string& peer, const std::string& owner,
                          actors::CaseRequest req) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(peer);
    if (it != peers_.end()) session = it->second->session;
  }
  if (!session) {
    return req.reply(Status::Unavailable("case " + req.case_id + " is owned by " + owner +
                                         " on another node, and node link " + peer +
                                         " is down; retry later"));
  }
  session->Forward(std::move(req), owner);
}

void LinkManager::Call(const std::string& peer, actors::LinkCall call) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(peer);
    if (it != peers_.end()) session = it->second->session;
  }
  if (!session) {
    if (call.unsent) return call.unsent();
    return call.reply(Status::Unavailable("node link " + peer +
                                          " towards the node that holds it is down; retry"));
  }
  session->Call(std::move(call));
}

std::string LinkManager::PeerNodeId(const std::string& peer) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(peer);
  return it == peers_.end() ? std::string() : it->second->node_id;
}

v1::LinkHello LinkManager::Hello() {
  v1::LinkHello h;
  h.set_protocol(v1::LINK_PROTOCOL_V1);
  h.set_node_id(options_.node_id);
  h.set_hosted_root(node_.placement().hosted_root());
  h.set_topology_fingerprint(options_.topology_fingerprint);
  h.set_policy_fingerprint(options_.policy_fingerprint);
  h.set_received_seq(node_.DurableInboxSeq(std::string(core::kParentPeer)));
  return h;
}

v1::LinkWelcome LinkManager::Welcome(const std::string& peer) {
  v1::LinkWelcome w;
  w.set_protocol(v1::LINK_PROTOCOL_V1);
  w.set_node_id(options_.node_id);
  w.set_hosted_root(node_.placement().hosted_root());
  w.set_received_seq(node_.DurableInboxSeq(peer));
  return w;
}

v1::LinkRefusal LinkManager::CheckHello(const v1::LinkHello& hello, const grpc::AuthContext* auth) {
  v1::LinkRefusal r;
  auto refuse = [&](const char* reason, std::string message) {
    r.set_reason(reason);
    r.set_message(std::move(message));
    return r;
  };
  // Everything a hello says is the peer's word: a plain short id as it is,
  // anything else quoted (bounded, escaped), never echoed raw.
  const std::string node_q = Shown(hello.node_id());
  const std::string root_q = core::Quote(hello.hosted_root());
  // Under TLS nothing else is said to a peer before its certificate checks out.
  if (options_.tls && !Names(auth, hello.hosted_root())) {
    return refuse("certificate", "node " + node_q + " claims jurisdiction " + root_q +
                                     ", but its certificate does not name it");
  }
  const std::string& id = hello.node_id();
  if (id.empty() || id.size() > 16 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos) {
    return refuse("invalid", "hello.node_id: want [a-z0-9], 1..16 characters");
  }
  if (hello.protocol() != v1::LINK_PROTOCOL_V1) {
    return refuse("version", "link protocol " + std::to_string(hello.protocol()) +
                                 " is not supported; this node (" + options_.node_id + ") speaks " +
                                 std::to_string(v1::LINK_PROTOCOL_V1));
  }
  if (hello.topology_fingerprint() != options_.topology_fingerprint) {
    return refuse("topology", "topology fingerprint differs: child " + node_q + " has " +
                                  Shown(hello.topology_fingerprint()) + ", parent " +
                                  options_.node_id + " has " + options_.topology_fingerprint +
                                  " (both nodes need the same --topology-file)");
  }
  if (hello.policy_fingerprint() != options_.policy_fingerprint) {
    return refuse("policy", "policy fingerprint differs: child " + node_q + " has " +
                                Shown(hello.policy_fingerprint()) + ", parent " + options_.node_id +
                                " has " + options_.policy_fingerprint +
                                " (both nodes need the same --policy-file)");
  }
  const auto& children = node_.placement().child_roots();
  if (std::find(children.begin(), children.end(), hello.hosted_root()) == children.end()) {
    std::string expected;
    for (const auto& c : children) expected += (expected.empty() ? "" : ",") + c;
    return refuse("unexpected_child", "node " + node_q + " claims jurisdiction " + root_q +
                                          ", but this node (" + options_.node_id +
                                          ") expects children [" + expected +
                                          "] (--child-jurisdictions)");
  }
  // Case ids start with the node id: two nodes with one id mint the same ids.
  if (hello.node_id() == options_.node_id) {
    return refuse("duplicate", "node id \"" + node_q + "\" of the child claiming " + root_q +
                                   " is this node's own; --node-id must be unique per node");
  }
  std::lock_guard lock(mu_);
  for (const auto& [name, p] : peers_) {
    if (!p->connected) continue;
    // The same node again (a redial while its old stream looks alive) replaces its session.
    if (name == hello.hosted_root() && p->node_id != hello.node_id()) {
      return refuse("duplicate", "node " + node_q + " claims jurisdiction " + root_q +
                                     ", which is already linked to node " + p->node_id);
    }
    if (name != hello.hosted_root() && p->node_id == hello.node_id()) {
      return refuse("duplicate", "node id \"" + node_q + "\" of the child claiming " + root_q +
                                     " is already used by linked peer " + name +
                                     "; --node-id must be unique per node");
    }
  }
  return r;
}

void LinkManager::RunSession(const std::string& peer, const std::string& peer_node_id,
                             uint64_t peer_received_seq, FrameStream& stream) {
  auto session = std::make_shared<Session>(*this, peer, stream, peer_received_seq);
  std::shared_ptr<Session> replaced;
  {
    std::lock_guard lock(mu_);
    Peer& p = PeerFor(peer);
    replaced = std::move(p.session);  // a reconnect while the old stream looked alive
    p.session = session;
    p.connected = true;
    p.since_ms = NowMs();
    p.node_id = peer_node_id;
    p.acked = peer_received_seq;
    p.last_error.clear();
    if (p.sessions++ > 0) {
      p.reconnects++;
      p.metrics.reconnects->Increment();
    }
    p.metrics.connected->Set(1);
  }
  if (replaced) replaced->Close();
  // An entry written after the session read the outbox's end but before it was registered
  // above was announced to nobody: catch up now (later ones reach the session).
  session->Notify(store_.LastOutboxSeq(peer));
  LogLink(LogLevel::kInfo, "node link up", peer, peer_node_id);
  session->Run();
  {
    std::lock_guard lock(mu_);
    Peer& p = PeerFor(peer);
    if (p.session == session) {
      p.session.reset();
      p.connected = false;
      p.metrics.connected->Set(0);
    }
  }
  LogLink(LogLevel::kWarn, "node link down", peer, peer_node_id);
}

void LinkManager::DialLoop() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = kBackoffMin;
  while (!stopping_) {
    bool ran = DialOnce();
    if (ran) backoff = kBackoffMin;
    // Exponential backoff with jitter (0.5x..1.5x), so restarted children do not dial in step.
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    auto wait = std::chrono::milliseconds(static_cast<int64_t>(backoff.count() * jitter(rng)));
    std::unique_lock lock(dial_mu_);
    dial_cv_.wait_for(lock, wait, [&] { return stopping_.load(); });
    backoff = std::min(backoff * 2, kBackoffMax);
  }
}

bool LinkManager::DialOnce() {
  if (!channel_) {
    grpc::ChannelArguments args;
    // INITIAL, not MIN: in this gRPC the minimum backoff is also the connect
    // timeout, and 100 ms fails real connections on a busy machine.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    auto creds = options_.channel_credentials ? options_.channel_credentials
                                              : grpc::InsecureChannelCredentials();
    channel_ = grpc::CreateCustomChannel(options_.parent_address, creds, args);
  }
  auto stub = v1::LinkService::NewStub(channel_);
  grpc::ClientContext context;
  {
    std::lock_guard lock(dial_mu_);
    if (stopping_) return false;
    dial_context_ = &context;
  }
  auto clear = [&] {
    std::lock_guard lock(dial_mu_);
    dial_context_ = nullptr;
  };
  auto rw = stub->Connect(&context);
  StreamOf<grpc::ClientReaderWriter<v1::LinkFrame, v1::LinkFrame>, grpc::ClientContext> stream(
      rw.get(), &context);
  v1::LinkFrame first;
  bool answered = false;
  {
    Watchdog handshake(std::chrono::milliseconds(3 * options_.keepalive_ms),
                       [&context] { context.TryCancel(); });
    v1::LinkFrame hello;
    *hello.mutable_hello() = Hello();
    answered = rw->Write(hello) && rw->Read(&first);
  }
  bool ran = false;
  std::string error;
  if (answered && first.has_welcome()) {
    const auto& w = first.welcome();
    const core::Topology& tree = node_.topology();
    const std::string mine = node_.placement().hosted_root();
    if (w.protocol() != v1::LINK_PROTOCOL_V1) {
      error = "parent speaks link protocol " + std::to_string(w.protocol());
    } else if (tree.Find(w.hosted_root()) == nullptr || w.hosted_root() == mine ||
               !tree.IsWithin(mine, w.hosted_root())) {
      error = "parent " + Shown(w.node_id()) + " hosts " + core::Quote(w.hosted_root()) +
              ", not an ancestor of \"" + mine + "\"";
    } else if (options_.tls && !Names(context.auth_context().get(), w.hosted_root())) {
      error = "parent " + Shown(w.node_id()) + "'s certificate does not name " +
              core::Quote(w.hosted_root());
    } else {
      ran = true;
      RunSession(std::string(core::kParentPeer), w.node_id(), w.received_seq(), stream);
    }
  } else if (answered && first.has_refusal()) {
    // The parent's words, bounded: a refusal is shown in `whistlectl links` and logs.
    error = "refused (" + Shown(first.refusal().reason()) +
            "): " + Bounded(first.refusal().message(), 1024);
  }
  context.TryCancel();
  grpc::Status status = rw->Finish();
  clear();
  if (error.empty() && !ran)
    error = "dial " + options_.parent_address + ": " + status.error_message();
  if (!error.empty()) {
    bool repeat = false;
    Update(std::string(core::kParentPeer), [&](Peer& p) {
      repeat = p.last_error == error;
      p.last_error = error;
    });
    if (!repeat) {
      LogLink(LogLevel::kError, "node link to parent failed", options_.parent_address, error);
    }
  }
  return ran;
}

void LinkManager::RefreshLoop() {
  while (!stopping_) {
    std::vector<std::string> names;
    {
      std::lock_guard lock(mu_);
      for (auto& [name, p] : peers_) names.push_back(name);
    }
    for (const auto& name : names) {
      // From the acknowledged mark: deleted entries before it are never scanned.
      auto first = store_.ReadOutbox(name, store_.AckedOutboxSeq(name), 1);
      uint64_t last = store_.LastOutboxSeq(name);
      uint64_t depth = 0;
      int64_t oldest = 0;
      if (first.ok() && !first->empty()) {
        depth = last >= first->front().seq ? last - first->front().seq + 1 : 0;
        oldest = first->front().written_at_ms;
      }
      Update(name, [&](Peer& p) {
        p.depth = depth;
        p.oldest_ms = oldest;
        p.metrics.depth->Set(static_cast<double>(depth));
        p.metrics.oldest->Set(oldest == 0 ? 0.0 : std::max<int64_t>(0, NowMs() - oldest) / 1e3);
      });
    }
    std::unique_lock lock(dial_mu_);
    dial_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_.load(); });
  }
}

v1::GetLinksResponse LinkManager::Status() const {
  v1::GetLinksResponse out;
  out.set_node_id(options_.node_id);
  out.set_hosted_root(node_.placement().hosted_root());
  for (const auto& c : node_.placement().child_roots()) out.add_child_roots(c);
  out.set_tls(options_.tls);
  std::lock_guard lock(mu_);
  for (const auto& [name, p] : peers_) {
    auto* l = out.add_links();
    l->set_peer(p->name);
    l->set_direction(p->direction);
    l->set_peer_node_id(p->node_id);
    l->set_peer_address(p->address);
    l->set_connected(p->connected);
    l->set_connected_since_ms(p->connected ? p->since_ms : 0);
    l->set_last_ack_ms(p->last_ack_ms);
    l->set_outbox_depth(p->depth);
    l->set_outbox_oldest_ms(p->oldest_ms);
    l->set_sent(p->sent);
    l->set_received(p->received);
    l->set_resends(p->resends);
    l->set_reconnects(p->reconnects);
    l->set_rtt_ms(p->rtt_ms);
    l->set_last_error(p->last_error);
  }
  return out;
}

}  // namespace whistle::link
