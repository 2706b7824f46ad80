// Shared pieces of the benchmarks: a whistled child process started from a
// path given at run time, latency statistics, /proc and /metrics readers and
// a tiny flag parser. Not part of the product; benches only.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/policy.h"
#include "core/topology.h"

namespace whistle::bench {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d);

// --name value / --name=value flags; anything else is an error.
class Flags {
 public:
  // `known` lists the accepted names (without "--"); exits with usage on errors.
  Flags(int argc, char** argv, const std::vector<std::string>& known, const std::string& usage);
  std::string Get(const std::string& name, const std::string& fallback) const;
  int64_t GetInt(const std::string& name, int64_t fallback) const;
  double GetDouble(const std::string& name, double fallback) const;

 private:
  std::map<std::string, std::string> values_;
  std::string usage_;
};

// A whistled child process on 127.0.0.1 with free ports. Killed (SIGKILL) by
// the destructor if still running.
class Whistled {
 public:
  // `extra_args` follow --listen/--metrics-listen/--data-dir on the command line.
  Whistled(std::string binary, std::string data_dir, std::string log_path,
           std::vector<std::string> extra_args = {});
  ~Whistled();
  Whistled(const Whistled&) = delete;
  Whistled& operator=(const Whistled&) = delete;

  // Forks and execs; then polls the health service every few ms. Returns the
  // time from fork to the first SERVING answer, or nullopt (process exited or
  // `timeout` passed; see the log).
  std::optional<Clock::duration> Start(std::chrono::milliseconds timeout);
  // Starts again after Kill/Terminate on the same ports and data dir (a peer
  // node may be dialling them); as Start, retrying while the ports are busy.
  std::optional<Clock::duration> Restart(std::chrono::milliseconds timeout);
  // SIGTERM and wait (graceful drain); returns the exit code or -signal.
  int Terminate();
  // SIGKILL and wait (a crash: nothing flushed); returns -9.
  int Kill();
  bool running() const { return pid_ > 0; }

  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int metrics_port() const { return metrics_port_; }
  const std::string& log_path() const { return log_path_; }
  // A new channel with its own TCP connection (no subchannel sharing).
  std::shared_ptr<grpc::Channel> NewChannel() const;

 private:
  // Forks and execs on the current ports, then polls health until SERVING.
  std::optional<Clock::duration> StartOnce(std::chrono::milliseconds timeout);

  std::string binary_, data_dir_, log_path_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  int metrics_port_ = 0;
  pid_t pid_ = -1;
};

// One grpc.health.v1.Health/Check call; true when the answer is SERVING.
bool HealthServing(grpc::Channel& channel, std::chrono::milliseconds deadline);
// The request of a Health/Check: an empty message as one empty slice (a
// default-constructed ByteBuffer aborts the client).
grpc::ByteBuffer EmptyHealthRequest();

// /proc/<pid>/status VmRSS in KiB; -1 when unreadable.
int64_t VmRssKib(pid_t pid);
// User + system CPU seconds of process `pid` (from /proc/<pid>/stat).
double ProcessCpuSeconds(pid_t pid);
// User + system CPU seconds of this process (getrusage).
double SelfCpuSeconds();
// Busy CPU seconds of the whole machine, all CPUs (from /proc/stat; steal included).
double MachineBusySeconds();

// Bytes of the regular files under `path`.
uint64_t DirBytes(const std::string& path);

// GET http://127.0.0.1:<port><path>; empty on failure.
std::string HttpGet(int port, const std::string& path);
// Sum of every sample of metric `name` (all label sets) in Prometheus text.
double MetricSum(const std::string& text, const std::string& name);
// The same over the samples whose label set contains `labels` (e.g. `peer="dwk"`).
double MetricSumWhere(const std::string& text, const std::string& name, const std::string& labels);

// Latencies in microseconds from many threads; sharded to keep locks cold.
class LatencyLog {
 public:
  void Add(size_t shard_hint, uint32_t micros);
  // Merged and sorted.
  std::vector<uint32_t> Sorted() const;

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    std::vector<uint32_t> values;
  };
  Shard shards_[kShards];
};

// Value at quantile q (0..1) of sorted samples, in milliseconds; NaN if empty.
double QuantileMs(const std::vector<uint32_t>& sorted, double q);

// Prints rows with columns padded to their widest cell; first row = header.
void PrintTable(const std::vector<std::vector<std::string>>& rows);
std::string Fixed(double v, int decimals);
std::string LoadAverage();

// The embedded Shizuishan topology and default policy, built, with the ids of
// every grid; exits the process if they do not build.
struct Shizuishan {
  std::shared_ptr<const core::Topology> topology;
  std::shared_ptr<const core::Policy> policy;
  std::vector<std::string> grids;
};
Shizuishan LoadShizuishan();

}  // namespace whistle::bench
