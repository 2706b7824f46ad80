// Helpers for the node-link tests (refusals, TLS): what an operator looks at
// (NodeService.GetLinks, the /metrics page, the log) and a whistled started
// with any channel credentials (WhistledProcess probes in plaintext only).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/whistled_process.h"
#include "whistle/v1/link.grpc.pb.h"
#include "whistle/v1/policy.pb.h"
#include "whistle/v1/topology.pb.h"

namespace whistle::testing {

// A leader of the city (szs): may read every case.
extern const Identity kCityLeader;

// An extraordinary (特别重大) report in a 大武口区 grid: graded response makes the
// city (szs) its owner, so a dwk node creates it and hands it up its parent link.
v1::ReportCommand ExtraordinaryReport(const std::string& request_id);

// Link fingerprints as whistled computes them ("bad ..." when the config does not build).
std::string TopologyFingerprint(const v1::Topology& topology);
std::string PolicyFingerprint(const v1::Policy& policy);
// Those of the embedded defaults (no --topology-file / --policy-file).
const std::string& DefaultTopologyFingerprint();
const std::string& DefaultPolicyFingerprint();

// The hello a real child node on the default topology and policy sends.
v1::LinkHello ValidHello(const std::string& node_id, const std::string& hosted_root);
v1::LinkFrame HelloFrame(const v1::LinkHello& hello);

// Polls `done` every 50 ms until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds timeout = std::chrono::seconds(15));

// NodeService.GetLinks over `channel` (deadline 2 s). With `wait_for_ready` (for a
// node that is up) the call waits for the channel to connect instead of failing at
// once when a first connection attempt fails on a busy machine.
grpc::Status GetLinks(const std::shared_ptr<grpc::Channel>& channel, v1::GetLinksResponse* out,
                      bool wait_for_ready = true);
// The link to `peer` ("parent" or a child's root) in a GetLinks answer; an empty
// LinkStatus (peer "") when there is none.
v1::LinkStatus LinkTo(const v1::GetLinksResponse& links, const std::string& peer);
// GetLinks, then LinkTo; an empty LinkStatus when the call failed.
v1::LinkStatus LinkOf(const std::shared_ptr<grpc::Channel>& channel, const std::string& peer);

// CaseService calls as `who` (deadline 10 s), waiting for the channel to connect.
grpc::Status GetCase(const std::shared_ptr<grpc::Channel>& channel, const Identity& who,
                     const std::string& case_id, v1::Case* out);
grpc::Status ReportCase(const std::shared_ptr<grpc::Channel>& channel, const Identity& who,
                        const v1::ReportCommand& report, v1::Case* out);
grpc::Status ActOnCase(const std::shared_ptr<grpc::Channel>& channel, const Identity& who,
                       const std::string& case_id, const v1::Command& command, v1::Case* out);
// Cases the node counts in the whole city tree (as kCityLeader); -1 when the call failed.
int64_t CountedCases(const std::shared_ptr<grpc::Channel>& channel);

// True while process `pid` exists and is not a zombie (it has not crashed or exited).
bool Alive(int pid);

// The body of an HTTP/1.0 GET of `path` from `address` (host:port); "" on error.
std::string HttpGet(const std::string& address, const std::string& path);
// The value of one series (e.g. `whistle_link_refusals_total{reason="topology"}`) in a
// Prometheus text page; -1 when absent.
double MetricValue(const std::string& page, const std::string& series);
// Fetches `address`/metrics and returns MetricValue.
double Metric(const std::string& metrics_address, const std::string& series);

// Lines of the file at `path` that contain every one of `parts`.
std::vector<std::string> LogLines(const std::string& path, const std::vector<std::string>& parts);

// TLS channel credentials from PEM files: `ca` verifies the server; with `cert`
// and `key` the client presents them.
std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca,
                                                         const std::string& cert = "",
                                                         const std::string& key = "");

// A whistled on free 127.0.0.1 ports, probed (and talked to) with `credentials`:
// up once NodeService.GetLinks answers. Killed (SIGKILL) by the destructor.
class NodeProcess {
 public:
  NodeProcess(std::string data_dir, std::vector<std::string> flags,
              std::shared_ptr<grpc::ChannelCredentials> credentials);
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  bool running() const { return pid_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string metrics_address() const { return "127.0.0.1:" + std::to_string(metrics_port_); }
  const std::string& log_path() const { return log_path_; }
  std::string LogTail(int lines = 30) const;
  std::shared_ptr<grpc::Channel> channel() const;
  std::unique_ptr<v1::CaseService::Stub> cases() const;
  void Kill();

 private:
  bool StartOnce();
  std::string data_dir_, log_path_;
  std::vector<std::string> flags_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  int port_ = 0, metrics_port_ = 0;
  int pid_ = -1;
};

// A client that speaks LinkService.Connect by hand, as a (fake) child node would.
class RawLink {
 public:
  // The whole call has a 20 s deadline.
  explicit RawLink(const std::shared_ptr<grpc::Channel>& channel);
  ~RawLink();
  bool Write(const v1::LinkFrame& frame) { return stream_->Write(frame); }
  // Reads one frame; false when the stream ended.
  bool Read(v1::LinkFrame* frame) { return stream_->Read(frame); }
  // Reads frames until one that is not a ping/pong arrives (answering pings);
  // false when the stream ended first.
  bool ReadSkippingPings(v1::LinkFrame* frame);
  // Half-closes, drains what is left and returns the call's status.
  grpc::Status Finish();
  void Cancel() { context_.TryCancel(); }

 private:
  std::unique_ptr<v1::LinkService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::LinkFrame, v1::LinkFrame>> stream_;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace whistle::testing
