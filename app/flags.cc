#include "app/flags.h"

#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/clock.h"

namespace whistle::app {

namespace {

using google::protobuf::FieldDescriptor;

struct FlagDoc {
  const char* field;
  const char* help;
};

// One line per NodeConfig field; the proto is the schema, this is the prose.
constexpr FlagDoc kDocs[] = {
    {"node_id", "prefix of case ids created here ([a-z0-9], 1..16)"},
    {"listen", "gRPC listen address host:port"},
    {"metrics_listen", "Prometheus /metrics address host:port; empty disables"},
    {"data_dir", "RocksDB directory (created if missing)"},
    {"topology_file", "JSON or text-format Topology; empty = embedded Shizuishan"},
    {"policy_file", "JSON or text-format Policy; empty = embedded default"},
    {"hosted_jurisdiction",
     "root of the subtree this node hosts; empty = topology root. Without --parent-address, "
     "cases cannot move above it"},
    {"parent_address",
     "host:port of the parent node: this node dials it and holds one link (cases and their "
     "updates travel over it, queued durably while it is down)"},
    {"child_jurisdictions",
     "comma-separated roots hosted by child nodes (they dial this node); this node hosts its "
     "subtree minus theirs"},
    {"link_keepalive_ms",
     "node link ping period in ms (50..60000); a link silent for 3 periods is dropped and "
     "redialled"},
    {"timer_interval_ms",
     "longest the deadline timer sleeps, in ms (0..60000; 0 disables deadlines): it wakes when "
     "the next deadline passes; this bounds how late one fires after the system clock jumps"},
    {"log_level", "debug | info | warn | error"},
    {"shutdown_grace_ms", "SIGTERM drain time for in-flight calls in ms (0..600000)"},
    {"tls_cert_file",
     "PEM certificate of this node (CN or DNS SAN = the hosted jurisdiction); with key and CA, the "
     "gRPC port "
     "serves TLS and node links use mutual TLS"},
    {"tls_key_file", "PEM private key of --tls-cert-file"},
    {"tls_ca_file", "PEM CA bundle that signs every node's certificate"},
    {"max_inflight_writes",
     "writes (reports, actions) in flight at once (1..1000000); past it callers get "
     "RESOURCE_EXHAUSTED instead of an ever longer queue"},
    {"change_log_max_entries",
     "live watch: change-log entries kept (1..1000000000); older resume tokens get OUT_OF_RANGE"},
    {"change_log_max_age_s",
     "live watch: change-log entries older than this many seconds are trimmed (1..315360000)"},
    {"watch_max_lag",
     "live watch: a stream this many changes behind ends with RESOURCE_EXHAUSTED "
     "(1..100000000)"},
    {"drain_delay_ms",
     "SIGTERM: serve NOT_SERVING this long (ms, 0..60000) before closing, so load balancers "
     "stop routing first"},
    {"grpc_memory_limit_mb",
     "memory the gRPC server may use for connections and calls (MiB, 16..65536); under "
     "pressure it shrinks flow-control windows, then cancels streams"},
    {"max_connection_age_ms",
     "close every client connection after this long (ms, 1000..86400000; GOAWAY, clients and "
     "node links reconnect): bounds how long a stalled request holds memory"},
    {"max_connection_age_grace_ms",
     "calls in flight on a connection past --max-connection-age-ms get this long (ms, "
     "0..600000)"},
    {"rate_limit_per_user",
     "requests per second one caller (user) may make (0..1000000; 0 = no limit); past it "
     "RESOURCE_EXHAUSTED"},
    {"rate_limit_burst", "requests one caller may make at once above the rate (1..1000000)"},
    {"init_data_dir",
     "initialise a new store in an EXISTING EMPTY --data-dir (a missing dir is always created); "
     "without it an empty dir is refused: it may be a volume that failed to mount"},
    {"accept_data_loss",
     "start even though the store lost acknowledged data or is damaged (WAL or SST); the loss is "
     "logged and exported as whistle_storage_data_loss_*. Without it such a start is refused"},
    {"jwks_file",
     "JWKS (JSON Web Key Set) of the token issuers: callers send \"authorization: Bearer <JWT>\" "
     "signed ES256 or RS256 by one of its keys (by kid). Required unless --dev-header-identity; "
     "SIGHUP reloads it (a bad file keeps the old keys)"},
    {"dev_header_identity",
     "DEVELOPMENT ONLY: take identity from plain x-whistle-user/-role/-jurisdiction/-department "
     "headers, unauthenticated (anyone can claim anyone); a bare --dev-header-identity = true"},
    {"test_clock_start_ms",
     "TESTS ONLY: run business time (deadlines, history stamps) on a manual clock starting at "
     "this many ms since the epoch, moved only by AdminService.SetClock/AdvanceClock (whistlectl "
     "clock), within 2000-01-01..2200-01-01 UTC; 0 = the system clock"},
};

std::string FlagName(const std::string& field) {
  std::string out = field;
  for (char& ch : out) {
    if (ch == '_') ch = '-';
  }
  return out;
}

// "dev-header-identity" -> "dev_header_identity".
std::string FieldName(const std::string& flag) {
  std::string out = flag;
  for (char& ch : out) {
    if (ch == '-') ch = '_';
  }
  return out;
}

std::string EnvName(const std::string& field) {
  std::string out = "WHISTLE_";
  for (char ch : field) out += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

Status SetField(v1::NodeConfig& config, const FieldDescriptor* field, const std::string& value,
                const std::string& source) {
  const auto* reflection = config.GetReflection();
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    reflection->SetString(&config, field, value);
    return Status::Ok();
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
    if (value != "true" && value != "false" && value != "1" && value != "0") {
      return Status::InvalidArgument(source + ": want true or false, got \"" + value + "\"");
    }
    reflection->SetBool(&config, field, value == "true" || value == "1");
    return Status::Ok();
  }
  char* end = nullptr;
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
    errno = 0;
    long long wide = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno == ERANGE) {
      return Status::InvalidArgument(source + ": want an integer, got \"" + value + "\"");
    }
    reflection->SetInt64(&config, field, static_cast<int64_t>(wide));
    return Status::Ok();
  }
  long parsed = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || parsed < INT32_MIN || parsed > INT32_MAX) {
    return Status::InvalidArgument(source + ": want an integer, got \"" + value + "\"");
  }
  reflection->SetInt32(&config, field, static_cast<int32_t>(parsed));
  return Status::Ok();
}

Status LoadConfigFile(const std::string& path, v1::NodeConfig& config) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("--config: cannot read \"" + path + "\"");
  std::stringstream text;
  text << in.rdbuf();
  v1::NodeConfig file;
  auto status = google::protobuf::util::JsonStringToMessage(text.str(), &file);
  if (!status.ok()) {
    return Status::InvalidArgument("--config " + path + ": " + std::string(status.message()));
  }
  config.MergeFrom(file);
  return Status::Ok();
}

bool ValidAddress(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  char* end = nullptr;
  long port = std::strtol(address.c_str() + colon + 1, &end, 10);
  return *end == '\0' && port >= 0 && port <= 65535;
}

// "--log-level (WHISTLE_LOG_LEVEL)": errors name both ways of setting a field.
std::string Named(const std::string& field) {
  return "--" + FlagName(field) + " (" + EnvName(field) + ")";
}

}  // namespace

v1::NodeConfig DefaultConfig() {
  v1::NodeConfig c;
  c.set_node_id("szs");
  c.set_listen("127.0.0.1:7400");
  c.set_metrics_listen("127.0.0.1:7401");
  c.set_data_dir("./whistle-data");
  c.set_timer_interval_ms(60000);
  c.set_log_level("info");
  c.set_shutdown_grace_ms(20000);
  c.set_max_inflight_writes(10000);
  c.set_link_keepalive_ms(1000);
  c.set_grpc_memory_limit_mb(256);
  c.set_max_connection_age_ms(600000);
  c.set_max_connection_age_grace_ms(30000);
  c.set_rate_limit_per_user(1000);
  c.set_rate_limit_burst(2000);
  c.set_change_log_max_entries(1000000);
  c.set_change_log_max_age_s(7 * 24 * 3600);
  c.set_watch_max_lag(50000);
  return c;
}

StatusOr<v1::NodeConfig> ParseFlags(int argc, char** argv, bool* help) {
  v1::NodeConfig config = DefaultConfig();
  const auto* descriptor = v1::NodeConfig::descriptor();
  *help = false;
  // --config first, so the environment and flags override the file.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") {
      if (Status s = LoadConfigFile(argv[i + 1], config); !s.ok()) return s;
    }
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (const char* env = std::getenv(EnvName(field->name()).c_str())) {
      if (Status s = SetField(config, field, env, EnvName(field->name())); !s.ok()) return s;
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return config;
    }
    if (arg.rfind("--", 0) != 0) return Status::InvalidArgument(arg + ": unexpected argument");
    std::string name = arg.substr(2);
    std::string value;
    const auto* bool_field = descriptor->FindFieldByName(FieldName(name));
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (bool_field != nullptr && bool_field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
      value = "true";  // a bare switch: --dev-header-identity
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Status::InvalidArgument("--" + name + ": needs a value");
    }
    if (name == "config") continue;
    std::string field_name = name;
    for (char& ch : field_name) {
      if (ch == '-') ch = '_';
    }
    const auto* field = descriptor->FindFieldByName(field_name);
    if (field == nullptr) return Status::InvalidArgument("--" + name + ": unknown flag");
    if (Status s = SetField(config, field, value, "--" + name); !s.ok()) return s;
  }
  return config;
}

Status ValidateConfig(const v1::NodeConfig& c) {
  const auto& id = c.node_id();
  if (id.empty() || id.size() > 16 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos) {
    return Status::InvalidArgument(Named("node_id") + ": want [a-z0-9], 1..16 characters, got \"" +
                                   id + "\"");
  }
  if (!ValidAddress(c.listen())) {
    return Status::InvalidArgument(Named("listen") + ": want host:port, got \"" + c.listen() +
                                   "\"");
  }
  if (!c.metrics_listen().empty() && !ValidAddress(c.metrics_listen())) {
    return Status::InvalidArgument(Named("metrics_listen") + ": want host:port, got \"" +
                                   c.metrics_listen() + "\"");
  }
  if (c.data_dir().empty()) return Status::InvalidArgument(Named("data_dir") + ": required");
  if (c.timer_interval_ms() < 0 || c.timer_interval_ms() > 60000) {
    return Status::InvalidArgument(Named("timer_interval_ms") + ": want 0..60000");
  }
  if (c.test_clock_start_ms() != 0 && (c.test_clock_start_ms() < core::kTestClockMinMs ||
                                       c.test_clock_start_ms() > core::kTestClockMaxMs)) {
    return Status::InvalidArgument(Named("test_clock_start_ms") +
                                   ": want ms since the epoch from " +
                                   std::to_string(core::kTestClockMinMs) + " (2000-01-01 UTC) to " +
                                   std::to_string(core::kTestClockMaxMs) +
                                   " (2200-01-01 UTC), or 0 for the system clock, got " +
                                   std::to_string(c.test_clock_start_ms()));
  }
  if (c.shutdown_grace_ms() < 0 || c.shutdown_grace_ms() > 600000) {
    return Status::InvalidArgument(Named("shutdown_grace_ms") + ": want 0..600000");
  }
  if (c.max_inflight_writes() < 1 || c.max_inflight_writes() > 1000000) {
    return Status::InvalidArgument(Named("max_inflight_writes") + ": want 1..1000000");
  }
  if (c.change_log_max_entries() < 1 || c.change_log_max_entries() > 1000000000) {
    return Status::InvalidArgument(Named("change_log_max_entries") + ": want 1..1000000000");
  }
  if (c.change_log_max_age_s() < 1 || c.change_log_max_age_s() > 315360000) {
    return Status::InvalidArgument(Named("change_log_max_age_s") + ": want 1..315360000");
  }
  if (c.watch_max_lag() < 1 || c.watch_max_lag() > 100000000) {
    return Status::InvalidArgument(Named("watch_max_lag") + ": want 1..100000000");
  }
  if (c.drain_delay_ms() < 0 || c.drain_delay_ms() > 60000) {
    return Status::InvalidArgument(Named("drain_delay_ms") + ": want 0..60000");
  }
  if (c.grpc_memory_limit_mb() < 16 || c.grpc_memory_limit_mb() > 65536) {
    return Status::InvalidArgument(Named("grpc_memory_limit_mb") + ": want 16..65536");
  }
  if (c.max_connection_age_ms() < 1000 || c.max_connection_age_ms() > 86400000) {
    return Status::InvalidArgument(Named("max_connection_age_ms") + ": want 1000..86400000");
  }
  if (c.max_connection_age_grace_ms() < 0 || c.max_connection_age_grace_ms() > 600000) {
    return Status::InvalidArgument(Named("max_connection_age_grace_ms") + ": want 0..600000");
  }
  if (c.rate_limit_per_user() < 0 || c.rate_limit_per_user() > 1000000) {
    return Status::InvalidArgument(Named("rate_limit_per_user") + ": want 0..1000000");
  }
  if (c.rate_limit_burst() < 1 || c.rate_limit_burst() > 1000000) {
    return Status::InvalidArgument(Named("rate_limit_burst") + ": want 1..1000000");
  }
  if (c.log_level() != "debug" && c.log_level() != "info" && c.log_level() != "warn" &&
      c.log_level() != "error") {
    return Status::InvalidArgument(
        Named("log_level") + ": want debug, info, warn or error, got \"" + c.log_level() + "\"");
  }
  if (!c.parent_address().empty() && !ValidAddress(c.parent_address())) {
    return Status::InvalidArgument(Named("parent_address") + ": want host:port, got \"" +
                                   c.parent_address() + "\"");
  }
  if (c.link_keepalive_ms() < 50 || c.link_keepalive_ms() > 60000) {
    return Status::InvalidArgument(Named("link_keepalive_ms") + ": want 50..60000");
  }
  const int tls_files =
      !c.tls_cert_file().empty() + !c.tls_key_file().empty() + !c.tls_ca_file().empty();
  if (tls_files != 0 && tls_files != 3) {
    return Status::InvalidArgument(Named("tls_cert_file") + ", " + Named("tls_key_file") + " and " +
                                   Named("tls_ca_file") + ": set all three or none");
  }
  return Status::Ok();
}

std::string HelpText() {
  std::string out =
      "whistled: one Whistle node (jurisdiction actors, RocksDB store, gRPC API).\n\n"
      "Usage: whistled [--config FILE.json] [--flag value | --flag=value]...\n"
      "Precedence: flag > environment variable > --config file > default.\n\n";
  v1::NodeConfig defaults = DefaultConfig();
  const auto* descriptor = v1::NodeConfig::descriptor();
  const auto* reflection = defaults.GetReflection();
  for (const auto& doc : kDocs) {
    const auto* field = descriptor->FindFieldByName(doc.field);
    std::string def = field->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                          ? reflection->GetString(defaults, field)
                      : field->cpp_type() == FieldDescriptor::CPPTYPE_BOOL
                          ? (reflection->GetBool(defaults, field) ? "true" : "false")
                      : field->cpp_type() == FieldDescriptor::CPPTYPE_INT64
                          ? std::to_string(reflection->GetInt64(defaults, field))
                          : std::to_string(reflection->GetInt32(defaults, field));
    out += "  --" + FlagName(doc.field) + " (env " + EnvName(doc.field) + ", default \"" + def +
           "\")\n      " + doc.help + "\n";
  }
  out += "  --config FILE\n      JSON NodeConfig (proto/whistle/v1/config.proto)\n";
  out += "  --help\n      this text\n";
  return out;
}

}  // namespace whistle::app
