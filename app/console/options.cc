#include "app/console/options.h"

#include <cctype>
#include <cstdlib>
#include <string_view>

#include "core/text.h"

namespace whistle::console {

namespace {

struct StringFlag {
  const char* flag;
  const char* env;
  std::string Options::*field;
};

struct IntFlag {
  const char* flag;
  const char* env;
  int Options::*field;
  int min, max;
};

constexpr StringFlag kStringFlags[] = {
    {"--listen", "WHISTLE_CONSOLE_LISTEN", &Options::listen},
    {"--node", "WHISTLE_CONSOLE_NODE", &Options::node},
    {"--assets", "WHISTLE_CONSOLE_ASSETS", &Options::assets},
    {"--tls-ca-file", "WHISTLE_TLS_CA_FILE", &Options::tls_ca_file},
    {"--tls-cert-file", "WHISTLE_TLS_CERT_FILE", &Options::tls_cert_file},
    {"--tls-key-file", "WHISTLE_TLS_KEY_FILE", &Options::tls_key_file},
    {"--tls-server-name", "WHISTLE_TLS_SERVER_NAME", &Options::tls_server_name},
};

constexpr IntFlag kIntFlags[] = {
    {"--max-watch-streams", "WHISTLE_CONSOLE_MAX_WATCH_STREAMS", &Options::max_watch_streams, 1,
     1000},
    {"--rpc-timeout-ms", "WHISTLE_CONSOLE_RPC_TIMEOUT_MS", &Options::rpc_timeout_ms, 100, 120000},
    {"--keepalive-ms", "WHISTLE_CONSOLE_KEEPALIVE_MS", &Options::keepalive_ms, 100, 300000},
};

bool ParseInt(const std::string& text, int min, int max, int* out) {
  if (text.empty() || text.size() > 9) return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) return false;
  *out = value;
  return true;
}

// HOST:PORT with a port 1..65535 (0 allowed for --listen: any free port).
bool ValidAddress(const std::string& text, bool allow_zero_port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || text.size() > 255) return false;
  for (char c : text.substr(0, colon)) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '[' ||
          c == ']' || c == ':' || c == '_')) {
      return false;
    }
  }
  int port = 0;
  if (!ParseInt(text.substr(colon + 1), allow_zero_port ? 0 : 1, 65535, &port)) return false;
  return true;
}

Status Check(const Options& o) {
  if (!ValidAddress(o.listen, true)) {
    return Status::InvalidArgument("--listen: expected HOST:PORT, got " + core::Quote(o.listen));
  }
  if (!ValidAddress(o.node, false)) {
    return Status::InvalidArgument("--node: expected HOST:PORT, got " + core::Quote(o.node));
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return Status::InvalidArgument(
        "--tls-cert-file and --tls-key-file go together (a client certificate and its key)");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Options> ParseOptions(const std::vector<std::string>& args) {
  Options o;
  for (const auto& f : kStringFlags) {
    if (const char* v = std::getenv(f.env)) o.*f.field = v;
  }
  for (const auto& f : kIntFlags) {
    if (const char* v = std::getenv(f.env); v && !ParseInt(v, f.min, f.max, &(o.*f.field))) {
      return Status::InvalidArgument(std::string(f.env) + ": expected an integer in [" +
                                     std::to_string(f.min) + ", " + std::to_string(f.max) + "]");
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos && name.rfind("--", 0) == 0) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "--help" || name == "-h") {
      o.help = true;
      continue;
    }
    if (name == "--version") {
      o.version = true;
      continue;
    }
    auto take = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    bool known = false;
    for (const auto& f : kStringFlags) {
      if (name != f.flag) continue;
      known = true;
      if (!take()) return Status::InvalidArgument(name + ": needs a value");
      o.*f.field = value;
    }
    for (const auto& f : kIntFlags) {
      if (name != f.flag) continue;
      known = true;
      if (!take()) return Status::InvalidArgument(name + ": needs a value");
      if (!ParseInt(value, f.min, f.max, &(o.*f.field))) {
        return Status::InvalidArgument(name + ": expected an integer in [" + std::to_string(f.min) +
                                       ", " + std::to_string(f.max) + "], got " +
                                       core::Quote(value));
      }
    }
    if (!known) return Status::InvalidArgument("unknown flag " + core::Quote(name));
  }
  if (Status s = Check(o); !s.ok()) return s;
  return o;
}

std::string HelpText() {
  return "whistle-console: the leaders' console. Serves the built page and a JSON/SSE API,\n"
         "and speaks gRPC to one node, passing each caller's token on (the node decides).\n"
         "\n"
         "Usage: whistle-console [flags]\n"
         "  --listen HOST:PORT        (WHISTLE_CONSOLE_LISTEN) HTTP address; default "
         "127.0.0.1:7480\n"
         "  --node HOST:PORT          (WHISTLE_CONSOLE_NODE) the node's gRPC address; default "
         "127.0.0.1:7400\n"
         "  --assets DIR              (WHISTLE_CONSOLE_ASSETS) the built page (index.html, "
         "assets/);\n"
         "                            none: only the API and probes are served\n"
         "  --tls-ca-file PEM         (WHISTLE_TLS_CA_FILE) talk TLS to the node; trust this CA\n"
         "  --tls-cert-file PEM       (WHISTLE_TLS_CERT_FILE) client certificate, with "
         "--tls-key-file\n"
         "  --tls-key-file PEM        (WHISTLE_TLS_KEY_FILE)\n"
         "  --tls-server-name NAME    (WHISTLE_TLS_SERVER_NAME) name the node's certificate "
         "must carry\n"
         "  --max-watch-streams N     (WHISTLE_CONSOLE_MAX_WATCH_STREAMS) open /api/watch "
         "streams,\n"
         "                            503 beyond; default 64, 1..1000\n"
         "  --rpc-timeout-ms N        (WHISTLE_CONSOLE_RPC_TIMEOUT_MS) deadline of each call to "
         "the\n"
         "                            node; default 10000\n"
         "  --keepalive-ms N          (WHISTLE_CONSOLE_KEEPALIVE_MS) \": ping\" on an idle watch "
         "stream;\n"
         "                            default 15000\n"
         "  --help, --version\n"
         "\n"
         "Endpoints: POST /api/rpc/<Service>/<Method>, GET /api/watch, GET /api/links,\n"
         "GET /healthz, GET /readyz, and the page from --assets. See app/console/README.md.\n"
         "Bad flags exit 2. SIGTERM/SIGINT: stop accepting, end open streams, exit 0.\n";
}

}  // namespace whistle::console
