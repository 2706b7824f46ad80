// whistle-console: the leaders' console. Serves the built page and a JSON/SSE API
// over one node's gRPC API (see gateway.h and README.md). Runs until SIGTERM or
// SIGINT, then ends open watch streams, finishes in-flight requests and exits 0.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "app/build_info.h"
#include "app/console/gateway.h"
#include "app/console/options.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace whistle;
  // Blocked in every thread (civetweb's and gRPC's inherit the mask); taken by sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A browser that goes away mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  StatusOr<console::Options> options = console::ParseOptions(args);
  if (!options.ok()) {
    std::fprintf(stderr, "whistle-console: %s\n(see whistle-console --help)\n",
                 options.status().message().c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(console::HelpText().c_str(), stdout);
    return 0;
  }
  if (options->version) {
    std::printf("whistle-console %s (revision %s)\n", app::kBuildVersion, app::kBuildRevision);
    return 0;
  }
  auto channel = console::DialNode(*options);
  if (!channel.ok()) {
    std::fprintf(stderr, "whistle-console: %s\n", channel.status().message().c_str());
    return 2;
  }
  console::Gateway gateway(*options, *channel);
  if (Status s = gateway.Start(); !s.ok()) {
    std::fprintf(stderr, "whistle-console: %s\n", s.message().c_str());
    return 2;
  }
  Log(LogLevel::kInfo, "whistle-console serving",
      {{"listen", options->listen},
       {"port", std::to_string(gateway.port())},
       {"node", options->node},
       {"tls", options->tls() ? "on" : "off"},
       {"assets", options->assets.empty() ? "(none: API only)" : options->assets},
       {"version", app::kBuildVersion}});
  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  Log(LogLevel::kInfo, "whistle-console stopping", {{"signal", std::to_string(sig)}});
  gateway.Stop();
  Log(LogLevel::kInfo, "whistle-console stopped");
  return 0;
}
