// LinkManager: every node link of one whistled. The child side dials the
// parent (one long-lived bidirectional stream, redialled with exponential
// backoff and jitter); the parent side accepts child streams in
// LinkServiceImpl. Both run a Session per connected stream: durable
// envelopes from the per-peer outbox (windowed, resent from the last ack
// after a reconnect), acks, forwarded commands and their answers, pings.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/link_hub.h"
#include "actors/node.h"
#include "whistle/v1/link.grpc.pb.h"

namespace prometheus {
class Registry;
}

namespace whistle::link {

struct LinkOptions {
  std::string node_id;
  std::string parent_address;  // "" = no parent
  int keepalive_ms = 1000;
  bool tls = false;
  // Dial credentials for the parent (insecure when TLS is off).
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
  std::string topology_fingerprint;
  std::string policy_fingerprint;
};

class Session;
struct PeerMetrics;

// What a frame stream looks like to a Session, either side.
class FrameStream {
 public:
  virtual ~FrameStream() = default;
  virtual bool Read(v1::LinkFrame* frame) = 0;
  virtual bool Write(const v1::LinkFrame& frame) = 0;
  virtual void Cancel() = 0;
};

class LinkManager final : public actors::LinkHub {
 public:
  LinkManager(LinkOptions options, actors::Node& node, storage::Store& store,
              prometheus::Registry* registry);
  ~LinkManager() override;

  // Starts dialling the parent (if any). Call once the server is serving.
  void Start();
  // Ends every session and stops dialling.
  void Stop();

  void Forward(const std::string& peer, const std::string& owner, actors::CaseRequest req) override;
  void Call(const std::string& peer, actors::LinkCall call) override;
  std::string PeerNodeId(const std::string& peer) const override;
  // From the store's answer thread: outbox entry `seq` for `peer` is durable.
  void OutboxWritten(const std::string& peer, uint64_t seq);

  // Parent side: checks a child's hello. Returns the refusal (empty reason = accepted).
  v1::LinkRefusal CheckHello(const v1::LinkHello& hello, const grpc::AuthContext* auth);
  v1::LinkWelcome Welcome(const std::string& peer);
  v1::LinkHello Hello();
  // Runs a session on an accepted stream until it ends (blocks).
  void RunSession(const std::string& peer, const std::string& peer_node_id,
                  uint64_t peer_received_seq, FrameStream& stream);
  void CountRefusal(const std::string& reason);

  v1::GetLinksResponse Status() const;
  actors::Node& node() { return node_; }
  storage::Store& store() { return store_; }
  const LinkOptions& options() const { return options_; }

 private:
  friend class Session;
  struct Peer;
  Peer& PeerFor(const std::string& name);  // mu_ held
  void Update(const std::string& name, const std::function<void(Peer&)>& fn);
  void DialLoop();
  bool DialOnce();  // one connection to the parent; true if a session ran
  void RefreshLoop();

  LinkOptions options_;
  actors::Node& node_;
  storage::Store& store_;
  prometheus::Registry* registry_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Peer>> peers_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::mutex dial_mu_;
  std::condition_variable dial_cv_;
  grpc::ClientContext* dial_context_ = nullptr;  // guarded by dial_mu_
  std::shared_ptr<grpc::Channel> channel_;       // dialer thread only
  std::thread dialer_;
  std::thread refresher_;  // outbox depth and age, connected or not
};

// Stable fingerprint of a config message (FNV-1a 64 over deterministic bytes).
std::string Fingerprint(const google::protobuf::Message& message);

// Names a peer certificate carries (CN and DNS/IP SANs); empty without TLS.
std::vector<std::string> CertificateNames(const grpc::AuthContext& auth);

}  // namespace whistle::link
