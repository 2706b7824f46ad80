// Options: whistle-console's command line (flags, and WHISTLE_CONSOLE_* variables for
// the same settings; flags win). Parsed once in main.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace whistle::console {

struct Options {
  std::string listen = "127.0.0.1:7480";  // HOST:PORT the HTTP server binds
  std::string node = "127.0.0.1:7400";    // the node's gRPC address
  std::string assets;                     // the built page; "" = no page, API only
  // TLS to the node: on when any is set. No CA file = the system's roots.
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  int max_watch_streams = 64;  // open /api/watch streams; 503 beyond
  int rpc_timeout_ms = 10000;  // deadline of every unary call to the node
  int keepalive_ms = 15000;    // ": ping" interval on an idle watch stream
  bool help = false;
  bool version = false;

  bool tls() const {
    return !tls_ca_file.empty() || !tls_cert_file.empty() || !tls_key_file.empty() ||
           !tls_server_name.empty();
  }
};

// Parses argv (argv[0] skipped) over the environment and the defaults.
// INVALID_ARGUMENT names the flag (or variable) at fault.
StatusOr<Options> ParseOptions(const std::vector<std::string>& args);

// The --help text.
std::string HelpText();

}  // namespace whistle::console
