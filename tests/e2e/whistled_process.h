// WhistledProcess: a real whistled child process on 127.0.0.1 with free
// ports and its own data directory. Always stopped by the destructor.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "whistle/v1/service.grpc.pb.h"

namespace whistle::testing {

// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int FreePort();

class WhistledProcess {
 public:
  // Ports to listen on; 0 = a free port (re-picked if start-up fails on it).
  struct Ports {
    int grpc = 0;
    int metrics = 0;
  };

  // Starts whistled with its data in `data_dir`; waits until health says SERVING.
  // running() is false when it did not come up (its log says why).
  explicit WhistledProcess(std::string data_dir, std::vector<std::string> extra_flags = {});
  // The same on the given ports (one kept fixed is not re-picked).
  WhistledProcess(std::string data_dir, std::vector<std::string> extra_flags, Ports ports);
  ~WhistledProcess();
  WhistledProcess(const WhistledProcess&) = delete;
  WhistledProcess& operator=(const WhistledProcess&) = delete;

  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string metrics_address() const { return "127.0.0.1:" + std::to_string(metrics_port_); }
  const std::string& data_dir() const { return data_dir_; }
  // Stops with SIGKILL (nothing flushed) or SIGTERM (graceful); returns the exit status
  // as from waitpid (or the signal number negated).
  int Kill();
  int Terminate();
  // Starts the process again after Kill/Terminate (or its own exit) with the same data
  // dir, flags and ports, and waits until SERVING (retrying a few times while the old
  // ports are released). Terminates it first if it still runs. Returns running().
  bool Restart();
  // Sends `signal` without waiting for the process to exit.
  void Signal(int signal);
  // The health service's answer: 1 SERVING, 2 NOT_SERVING, -1 no answer.
  int HealthStatus();
  // Waits until the gRPC health service answers SERVING; false on timeout.
  bool WaitServing(int timeout_ms);
  // Exit code if it has exited on its own (-1 if still running).
  int ExitCode(int timeout_ms);

  // Test clock (whistled --test-clock-start-ms): flags that start the node on a
  // manual clock at `start_ms`; moving it as an admin (AdminService) returns
  // the clock after the move, or -1 after ADD_FAILURE naming the status.
  static std::vector<std::string> TestClockFlags(int64_t start_ms);
  int64_t AdvanceClock(int64_t delta_ms);
  int64_t SetClock(int64_t now_ms);
  // Sets --test-clock-start-ms for the next Restart (a restart "later": the
  // time the node was down is what the clock jumps by).
  void SetTestClockStart(int64_t start_ms);

  std::shared_ptr<grpc::Channel> channel();
  std::unique_ptr<v1::CaseService::Stub> cases();
  std::unique_ptr<v1::TopologyService::Stub> topology();
  const std::string& log_path() const { return log_path_; }
  // The last `lines` lines of the log, for failure messages.
  std::string LogTail(int lines = 30) const;

 private:
  int Stop(int signal);
  // Spawns with the current ports and waits until SERVING; false (and not running) when not.
  bool StartOnce();
  std::string data_dir_;
  std::string log_path_;
  std::vector<std::string> extra_flags_;
  int port_ = 0;
  int metrics_port_ = 0;
  int pid_ = -1;
};

// Identity of a caller, as metadata on a ClientContext.
struct Identity {
  std::string user, role, jurisdiction, department;
  // A token signed by the test issuer (authorization: Bearer), as every node
  // started by WhistledProcess verifies. Nothing is sent without user and role.
  void Apply(grpc::ClientContext& ctx) const;
  // The plain x-whistle-* headers, for nodes run with --dev-header-identity.
  void ApplyHeaders(grpc::ClientContext& ctx) const;
  // An operator with the admin role (backups, the test clock).
  static Identity Admin() { return {"ops", "admin", "", ""}; }
};

// The test issuer (tests/e2e/testdata): its JWKS, its private key and kid.
inline constexpr char kTestKid[] = "whistle-test";
std::string TestJwksFile();
std::string TestIssuerKeyFile();
// A token of the test issuer for these claims ("" for an unknown role).
std::string MintTestToken(const std::string& user, const std::string& role,
                          const std::string& jurisdiction, const std::string& department);

// Runs `whistled` with `flags` and returns (exit code, combined output).
std::pair<int, std::string> RunWhistled(const std::vector<std::string>& flags);

}  // namespace whistle::testing
