// whistlectl: the command-line client. Talks gRPC only; every API verb is a
// subcommand. Identity is a signed token (--token-file or WHISTLE_TOKEN), sent
// as "authorization: Bearer"; `whistlectl token keygen|mint` makes keys and
// tokens for local use and tests. The server comes from WHISTLE_SERVER.
// TLS (a node started with --tls-*) from --tls-ca-file / --tls-cert-file /
// --tls-key-file / --tls-server-name or the same WHISTLE_TLS_* variables
// whistled reads, so whistlectl run next to a node uses its certificate.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "app/build_info.h"
#include "cli/args.h"
#include "cli/assess_verbs.h"
#include "cli/clock_verbs.h"
#include "cli/directive_verbs.h"
#include "cli/watch_verbs.h"
#include "core/text.h"
#include "services/token.h"
#include "whistle/v1/admin.grpc.pb.h"
#include "whistle/v1/link.grpc.pb.h"
#include "whistle/v1/service.grpc.pb.h"

namespace whistle::cli {

namespace {

struct Options {
  std::string server = "127.0.0.1:7400";
  std::string token;  // the JWT sent as "authorization: Bearer <token>"
  // Development nodes only (--dev-header-identity): plain x-whistle-* headers.
  std::string user, role, jurisdiction, department;
  bool json = false;
  int timeout_ms = 10000;
  // TLS: on when any of these is set. No CA file = the system's roots.
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  bool tls() const {
    return !tls_ca_file.empty() || !tls_cert_file.empty() || !tls_key_file.empty() ||
           !tls_server_name.empty();
  }
};

const char kGlobalFlags[] =
    "Global flags (or environment), before or after the verb:\n"
    "  --server HOST:PORT      (WHISTLE_SERVER, default 127.0.0.1:7400)\n"
    "  --token-file FILE       (WHISTLE_TOKEN_FILE) who you are: a signed token (JWT)\n"
    "                          (or the token itself in WHISTLE_TOKEN); see `token mint`\n"
    "  --json                  print responses as JSON\n"
    "  --timeout-ms N          per-call deadline, 1..86400000 (default 10000)\n"
    "  --tls-ca-file PEM       (WHISTLE_TLS_CA_FILE) talk TLS; trust this CA (the nodes')\n"
    "  --tls-cert-file PEM     (WHISTLE_TLS_CERT_FILE) client certificate, with --tls-key-file\n"
    "  --tls-key-file PEM      (WHISTLE_TLS_KEY_FILE)\n"
    "  --tls-server-name NAME  (WHISTLE_TLS_SERVER_NAME) name the node's certificate must\n"
    "                          carry, when it differs from --server's host (port-forward)\n"
    "  Development nodes only (whistled --dev-header-identity; NOT a credential, sent as\n"
    "  plain x-whistle-* headers, refused by every node that verifies tokens):\n"
    "  --dev-user ID --dev-role ROLE [--dev-jurisdiction ID] [--dev-department ID]\n";

class Client;

// One row per verb of the verb table (Verbs(), above Run): `whistlectl --help`
// lists the rows, `whistlectl VERB --help` prints one, Run finds one and runs it.
// A new verb is a handler and one row.
struct Verb {
  // "report", or a group and its verb: "directive issue", "token mint".
  std::string name;
  // One sentence without its full stop, for `whistlectl --help`.
  std::string summary;
  // What follows "whistlectl " in the usage line; may hold "\n" + indented lines.
  std::string usage;
  // One "  --flag V   what it does" line per flag or argument ("" when none).
  std::string flags;
  // Runs the verb with the arguments after its name, on a dialled node.
  std::function<int(Client&, Args)> run;
  // Or, for verbs that need no node (token, version): nothing is dialled.
  std::function<int(Args)> local = nullptr;
};

// The verb being run, for Usage's hint; null until Run has found it.
const Verb* current_verb = nullptr;

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Text from the node (notes, addresses, user names, error messages) as a
// terminal may show it: control characters (C0, DEL, C1 such as CSI) and bytes
// that are not UTF-8 become \xNN, so no one's note can move the cursor, clear
// the screen or fake a line of output.
std::string ForTerminal(std::string_view text) {
  std::string out;
  auto hex = [&](unsigned char b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02x", b);
    out += buf;
  };
  for (size_t i = 0; i < text.size();) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (b < 0x20 || b == 0x7f) {
        hex(b);
      } else {
        out += static_cast<char>(b);
      }
      ++i;
      continue;
    }
    size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    std::string_view seq = text.substr(i, n);
    bool c1 = n == 2 && seq.size() == 2 && b == 0xc2 && static_cast<unsigned char>(seq[1]) < 0xa0;
    if (n == 1 || seq.size() < n || !core::IsValidUtf8(seq) || c1) {
      hex(b);
      ++i;
      continue;
    }
    out += seq;
    i += n;
  }
  return out;
}

// The same for every string field of `m`, recursively (for the table output).
void ForTerminal(google::protobuf::Message* m) {
  const auto* reflection = m->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(*m, &fields);
  for (const auto* f : fields) {
    using FD = google::protobuf::FieldDescriptor;
    if (f->cpp_type() == FD::CPPTYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*m, f); ++i) {
          reflection->SetRepeatedString(m, f, i,
                                        ForTerminal(reflection->GetRepeatedString(*m, f, i)));
        }
      } else {
        reflection->SetString(m, f, ForTerminal(reflection->GetString(*m, f)));
      }
    } else if (f->cpp_type() == FD::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(*m, f); ++i) {
          ForTerminal(reflection->MutableRepeatedMessage(m, f, i));
        }
      } else {
        ForTerminal(reflection->MutableMessage(m, f));
      }
    }
  }
}

void PrintJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  std::fputs(out.c_str(), stdout);
}

void PrintCase(const v1::Case& c) {
  std::printf("case        %s\n", c.id().c_str());
  std::printf("state       %s\n", Short(v1::CaseState_Name(c.state()), "CASE_STATE_").c_str());
  std::printf("owner       %s\n", c.owner_id().c_str());
  if (c.read_only()) {
    std::printf("copy        read-only here; owned on node %s\n",
                c.owner_node_id().empty() ? "(another)" : c.owner_node_id().c_str());
  } else if (!c.owner_node_id().empty()) {
    std::printf("node        %s\n", c.owner_node_id().c_str());
  }
  std::printf("category    %s (%s)\n", c.category().c_str(),
              Short(v1::Severity_Name(c.severity()), "SEVERITY_").c_str());
  std::printf("place       %s %s\n", c.place().grid_id().c_str(), c.place().address().c_str());
  std::printf("reporter    %s\n", c.reporter().c_str());
  for (const auto& s : c.summons()) {
    std::printf("summoned    %-36s reported-in %-19s done %s%s\n", s.department_id().c_str(),
                Time(s.reported_in_at_ms()).c_str(), Time(s.done_at_ms()).c_str(),
                s.no_show() ? " NO-SHOW" : "");
    if (s.refused_at_ms() != 0) {
      std::printf("refused     %-36s at %s: %s\n", s.department_id().c_str(),
                  Time(s.refused_at_ms()).c_str(), ForTerminal(s.refuse_reason()).c_str());
    }
  }
  if (c.next_deadline_ms() != 0) {
    std::printf("next due    %s\n", Time(c.next_deadline_ms()).c_str());
  }
  if (c.satisfaction() > 0) {
    std::printf("satisfaction %d/5%s\n", c.satisfaction(),
                c.evaluated_on_behalf() ? " (rated by staff on the resident's behalf)" : "");
  }
  if (c.evaluation_expired()) std::printf("evaluation  window closed unevaluated\n");
  std::printf("updated     %s\n", Time(c.updated_at_ms()).c_str());
}

void PrintHistory(const v1::GetHistoryResponse& h) {
  std::printf("%-4s %-19s %-10s %-12s %-12s %-28s %-24s %s\n", "SEQ", TimeHeader().c_str(),
              "ACTION", "FROM", "TO", "JURISDICTION", "BY", "NOTE");
  for (const auto& e : h.entries()) {
    std::string by = e.actor().user() + "/" + Short(v1::Role_Name(e.actor().role()), "ROLE_");
    std::string note = e.note();
    for (const auto& d : e.department_ids()) note += (note.empty() ? "" : " ") + d;
    if (e.score() > 0) note += " score=" + std::to_string(e.score());
    if (e.on_behalf()) note += " (on behalf)";
    if (!e.category().empty()) note += " category " + e.from_category() + " -> " + e.category();
    for (const auto& m : e.deadlines_missed()) note += " missed=" + m;
    if (!e.notice_to_id().empty()) note += " notice-to=" + e.notice_to_id();
    std::printf("%-4lld %-19s %-10s %-12s %-12s %-28s %-24s %s\n", static_cast<long long>(e.seq()),
                Time(e.at_ms()).c_str(),
                Short(v1::TransitionKind_Name(e.kind()), "TRANSITION_KIND_").c_str(),
                Short(v1::CaseState_Name(e.from_state()), "CASE_STATE_").c_str(),
                Short(v1::CaseState_Name(e.to_state()), "CASE_STATE_").c_str(),
                e.jurisdiction_id().c_str(), by.c_str(), note.c_str());
  }
  for (int64_t seq : h.unreadable_seqs()) {
    std::printf("%-4lld (stored entry unreadable: left out; see the node's log)\n",
                static_cast<long long>(seq));
  }
}

void PrintList(const v1::ListCasesResponse& list) {
  std::printf("%-18s %-12s %-26s %-24s %s\n", "CASE", "STATE", "OWNER", "CATEGORY", "UPDATED");
  for (const auto& c : list.cases()) {
    std::printf("%-18s %-12s %-26s %-24s %s\n", c.id().c_str(),
                Short(v1::CaseState_Name(c.state()), "CASE_STATE_").c_str(), c.owner_id().c_str(),
                c.category().c_str(), Time(c.updated_at_ms()).c_str());
  }
  for (const auto& id : list.unreadable_case_ids()) {
    std::printf("%-18s (stored record unreadable: left out; see the node's log)\n", id.c_str());
  }
  if (!list.next_page_token().empty()) {
    std::printf("next page: --page-token %s\n", list.next_page_token().c_str());
  }
}

void PrintCounts(const v1::CountCasesResponse& counts) {
  std::printf("%-12s %s\n", "STATE", "CASES");
  for (const auto& row : counts.counts()) {
    std::printf("%-12s %lld\n", Short(v1::CaseState_Name(row.state()), "CASE_STATE_").c_str(),
                static_cast<long long>(row.count()));
  }
}

void PrintBackup(const v1::BackupResponse& b) {
  std::printf(
      "backup written to %s: %llu files, %llu bytes, sequence %llu, %lld ms\n", b.dir().c_str(),
      static_cast<unsigned long long>(b.files()), static_cast<unsigned long long>(b.bytes()),
      static_cast<unsigned long long>(b.sequence()), static_cast<long long>(b.duration_ms()));
}

void PrintTopology(const v1::JurisdictionView& view) {
  std::string path;
  for (const auto& p : view.path()) path += p.name() + " > ";
  std::printf("%s%s [%s, %s] grids below: %lld\n", path.c_str(), view.jurisdiction().name().c_str(),
              view.jurisdiction().id().c_str(),
              Short(v1::Level_Name(view.jurisdiction().level()), "LEVEL_").c_str(),
              static_cast<long long>(view.grids_below()));
  for (const auto& c : view.children()) {
    std::printf("  child       %-28s %s\n", c.id().c_str(), c.name().c_str());
  }
  for (const auto& d : view.departments()) {
    std::printf("  department  %-28s %s\n", d.id().c_str(), d.name().c_str());
  }
}

void PrintLinks(const v1::GetLinksResponse& links) {
  std::string children;
  for (const auto& c : links.child_roots()) children += (children.empty() ? "" : ",") + c;
  std::printf("node %s  hosts %s  children %s  tls %s\n", links.node_id().c_str(),
              links.hosted_root().c_str(), children.empty() ? "-" : children.c_str(),
              links.tls() ? "on" : "off");
  std::printf("%-16s %-4s %-16s %-9s %-19s %-19s %6s %-19s %8s %8s %7s %7s %8s %s\n", "PEER", "DIR",
              "NODE", "CONNECTED", "SINCE", "LAST ACK", "OUTBOX", "OLDEST", "SENT", "RECEIVED",
              "RESENDS", "RECONN", "RTT MS", "LAST ERROR");
  for (const auto& l : links.links()) {
    std::printf("%-16s %-4s %-16s %-9s %-19s %-19s %6llu %-19s %8llu %8llu %7llu %7llu %8.3f %s\n",
                l.peer().c_str(), l.direction().c_str(),
                l.peer_node_id().empty() ? "-" : l.peer_node_id().c_str(),
                l.connected() ? "yes" : "no", Time(l.connected_since_ms()).c_str(),
                Time(l.last_ack_ms()).c_str(), static_cast<unsigned long long>(l.outbox_depth()),
                Time(l.outbox_oldest_ms()).c_str(), static_cast<unsigned long long>(l.sent()),
                static_cast<unsigned long long>(l.received()),
                static_cast<unsigned long long>(l.resends()),
                static_cast<unsigned long long>(l.reconnects()), l.rtt_ms(),
                l.last_error().empty() ? "-" : l.last_error().c_str());
  }
}

bool ReadPem(const std::string& flag, const std::string& path, std::string* out, std::string* why) {
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    *why = flag + ": cannot read \"" + path + "\"";
    return false;
  }
  *out = text.str();
  return true;
}

// The channel to --server: plaintext, or TLS from the --tls-* files. Returns
// nullptr (and sets *why, naming the flag) when a file is missing or unreadable.
std::shared_ptr<grpc::Channel> Dial(const Options& o, std::string* why) {
  if (!o.tls()) return grpc::CreateChannel(o.server, grpc::InsecureChannelCredentials());
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    *why = "--tls-cert-file and --tls-key-file go together (a client certificate and its key)";
    return nullptr;
  }
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca_file.empty() &&
      !ReadPem("--tls-ca-file", o.tls_ca_file, &ssl.pem_root_certs, why)) {
    return nullptr;
  }
  if (!o.tls_cert_file.empty() &&
      (!ReadPem("--tls-cert-file", o.tls_cert_file, &ssl.pem_cert_chain, why) ||
       !ReadPem("--tls-key-file", o.tls_key_file, &ssl.pem_private_key, why))) {
    return nullptr;
  }
  grpc::ChannelArguments args;
  if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  return grpc::CreateCustomChannel(o.server, grpc::SslCredentials(ssl), args);
}

class Client {
 public:
  Client(const Options& o, std::shared_ptr<grpc::Channel> channel)
      : options_(o),
        channel_(std::move(channel)),
        cases_(v1::CaseService::NewStub(channel_)),
        topology_(v1::TopologyService::NewStub(channel_)),
        node_(v1::NodeService::NewStub(channel_)),
        admin_(v1::AdminService::NewStub(channel_)) {}

  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.timeout_ms));
    if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
    // Development nodes only: unauthenticated identity headers.
    if (!options_.user.empty()) ctx.AddMetadata("x-whistle-user", options_.user);
    if (!options_.role.empty()) ctx.AddMetadata("x-whistle-role", options_.role);
    if (!options_.jurisdiction.empty()) {
      ctx.AddMetadata("x-whistle-jurisdiction", options_.jurisdiction);
    }
    if (!options_.department.empty()) ctx.AddMetadata("x-whistle-department", options_.department);
  }

  const Options& options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CaseService::Stub> cases_;
  std::unique_ptr<v1::TopologyService::Stub> topology_;
  std::unique_ptr<v1::NodeService::Stub> node_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

const char* CodeName(grpc::StatusCode code) {
  static const std::map<int, const char*> kNames = {{0, "OK"},
                                                    {1, "CANCELLED"},
                                                    {2, "UNKNOWN"},
                                                    {3, "INVALID_ARGUMENT"},
                                                    {4, "DEADLINE_EXCEEDED"},
                                                    {5, "NOT_FOUND"},
                                                    {6, "ALREADY_EXISTS"},
                                                    {7, "PERMISSION_DENIED"},
                                                    {8, "RESOURCE_EXHAUSTED"},
                                                    {9, "FAILED_PRECONDITION"},
                                                    {10, "ABORTED"},
                                                    {11, "OUT_OF_RANGE"},
                                                    {12, "UNIMPLEMENTED"},
                                                    {13, "INTERNAL"},
                                                    {14, "UNAVAILABLE"},
                                                    {15, "DATA_LOSS"},
                                                    {16, "UNAUTHENTICATED"}};
  auto it = kNames.find(static_cast<int>(code));
  return it == kNames.end() ? "UNKNOWN" : it->second;
}

// grpc.health.v1.Health/Check with an empty request (the whole server): prints
// SERVING / NOT_SERVING; exit 0 only when SERVING.
int Health(Client& client, grpc::ClientContext& ctx) {
  grpc::Slice empty("", 0);
  grpc::ByteBuffer req(&empty, 1);
  grpc::ByteBuffer resp;
  grpc::GenericStub stub(client.channel_);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_all();
                 });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", ForTerminal(status.error_message()).c_str());
    return 1;
  }
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string bytes;
  for (auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  // HealthCheckResponse: field 1 (varint) status, 1 = SERVING.
  const bool serving = bytes.size() == 2 && bytes[0] == 0x08 && bytes[1] == 1;
  std::puts(serving ? "SERVING" : "NOT_SERVING");
  return serving ? 0 : 1;
}

// Prints the error (exit 1) or the response (exit 0).
template <class M>
int Print(const grpc::Status& status, const M& response, const Options& options,
          const std::function<void(const M&)>& table) {
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s: %s\n", CodeName(status.error_code()),
                 ForTerminal(status.error_message()).c_str());
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      std::fputs(
          "hint: say who you are with a token signed by a key in the node's --jwks-file: "
          "--token-file FILE or WHISTLE_TOKEN (whistlectl token mint makes one)\n",
          stderr);
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      std::fputs(
          "hint: if the node is unreachable, check --server (WHISTLE_SERVER) and that whistled "
          "runs\n",
          stderr);
      // The node answered the connection but the handshake failed (or, in plaintext,
      // it hung up: a TLS node does that to a plaintext client).
      const std::string& why = status.error_message();
      const bool refused = why.find("Connection refused") != std::string::npos;
      if (options.tls() && why.find("failed to connect") != std::string::npos && !refused) {
        std::fputs(
            "hint: with TLS, --tls-ca-file must be the CA that signed the node's certificate, "
            "the certificate must name the host in --server (else set --tls-server-name), and a "
            "client certificate (--tls-cert-file) must be signed by the nodes' CA\n",
            stderr);
      } else if (!options.tls() && why.find("Socket closed") != std::string::npos) {
        std::fputs(
            "hint: a node started with --tls-cert-file serves TLS only: pass --tls-ca-file "
            "(WHISTLE_TLS_CA_FILE)\n",
            stderr);
      }
    }
    return 1;
  }
  if (options.json) {
    PrintJson(response);  // JSON escapes control characters itself
  } else {
    std::unique_ptr<google::protobuf::Message> safe(response.New());
    safe->CopyFrom(response);
    ForTerminal(safe.get());
    table(static_cast<const M&>(*safe));
  }
  return 0;
}

// A mistake on the command line: "whistlectl: why", the verb's usage line and
// where to read more, on stderr; exit 2. `why` may quote arguments: escaped.
int Usage(const std::string& why) {
  std::fprintf(stderr, "whistlectl: %s\n", ForTerminal(why).c_str());
  if (current_verb != nullptr) {
    std::fprintf(stderr, "usage: whistlectl %s\nhint: run `whistlectl %s --help`\n",
                 current_verb->usage.c_str(), current_verb->name.c_str());
  } else {
    std::fputs("hint: run `whistlectl --help`\n", stderr);
  }
  return 2;
}

// The channel, identity and printer handed to the verbs kept in their own files.
VerbIo IoOf(Client& client) {
  VerbIo io;
  io.channel = client.channel_;
  io.prepare = [&client](grpc::ClientContext& ctx) { client.Prepare(ctx); };
  io.print = [&client](const grpc::Status& status, const google::protobuf::Message& response,
                       const std::function<void()>& table) {
    return Print<google::protobuf::Message>(status, response, client.options_,
                                            [&](const google::protobuf::Message&) { table(); });
  };
  io.usage = Usage;
  return io;
}

bool ParseSeverity(const std::string& name, v1::Severity* out) {
  static const std::map<std::string, v1::Severity> kNames = {
      {"general", v1::SEVERITY_GENERAL},
      {"serious", v1::SEVERITY_SERIOUS},
      {"major", v1::SEVERITY_MAJOR},
      {"extraordinary", v1::SEVERITY_EXTRAORDINARY}};
  auto it = kNames.find(name);
  if (it == kNames.end()) return false;
  *out = it->second;
  return true;
}

int Report(Client& client, Args args) {
  v1::ReportCaseRequest req;
  auto* r = req.mutable_report();
  r->set_request_id(Take(args, "--request-id"));
  r->set_category(Take(args, "--category"));
  const std::string severity_name = Take(args, "--severity");
  r->mutable_place()->set_grid_id(Take(args, "--grid"));
  r->mutable_place()->set_address(Take(args, "--address"));
  r->set_text(Take(args, "--text"));
  for (const auto& uri : TakeAll(args, "--attachment")) r->add_attachments()->set_uri(uri);
  if (std::string why = Leftover("report", args); !why.empty()) return Usage(why);
  // Required, never defaulted: the severity picks the level that owns the case.
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"--request-id", r->request_id()},
        {"--category", r->category()},
        {"--severity", severity_name},
        {"--grid", r->place().grid_id()},
        {"--text", r->text()}}) {
    if (value.empty()) return Usage(std::string("report: ") + flag + " required");
  }
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
  if (!ParseSeverity(severity_name, &severity)) {
    return Usage("--severity: want general, serious, major or extraordinary, got \"" +
                 ForTerminal(severity_name) + "\"");
  }
  r->set_severity(severity);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::Case resp;
  auto status = client.cases_->Report(&ctx, req, &resp);
  return Print<v1::Case>(status, resp, client.options_, PrintCase);
}

// Builds the command of a case verb; returns false (and sets *why) on bad args.
bool BuildCommand(const std::string& verb, Args& args, v1::Command* cmd, std::string* why) {
  std::string note = Take(args, "--note");
  if (verb == "accept") {
    cmd->mutable_accept()->set_note(note);
  } else if (verb == "keep") {
    cmd->mutable_keep()->set_note(note);
  } else if (verb == "dispatch") {
    if (args.empty() || args[0].rfind('-', 0) == 0) {
      return (*why = "dispatch: DEPARTMENT missing (after CASE)", false);
    }
    cmd->mutable_dispatch()->set_department_id(args[0]);
    cmd->mutable_dispatch()->set_note(note);
    args.erase(args.begin());
  } else if (verb == "escalate") {
    cmd->mutable_escalate()->set_reason(Take(args, "--reason", note));
  } else if (verb == "whistle") {
    cmd->mutable_whistle()->set_note(note);
    while (!args.empty() && args[0].rfind('-', 0) != 0) {
      cmd->mutable_whistle()->add_department_ids(args[0]);
      args.erase(args.begin());
    }
    if (cmd->whistle().department_ids().empty() && args.empty()) {
      return (*why = "whistle: DEPT missing (one or more, after CASE)", false);
    }
  } else if (verb == "report-in") {
    cmd->mutable_report_in()->set_note(note);
  } else if (verb == "resolve") {
    cmd->mutable_resolve()->set_note(note);
  } else if (verb == "verify") {
    cmd->mutable_verify()->set_fixed(!TakeFlag(args, "--not-fixed"));
    cmd->mutable_verify()->set_note(note);
  } else if (verb == "close") {
    cmd->mutable_close()->set_note(note);
  } else if (verb == "transfer") {
    cmd->mutable_transfer()->set_to_jurisdiction_id(Take(args, "--to"));
    cmd->mutable_transfer()->set_category(Take(args, "--category"));
    cmd->mutable_transfer()->set_reason(Take(args, "--reason", note));
  } else if (verb == "refuse") {
    cmd->mutable_refuse()->set_reason(Take(args, "--reason", note));
  } else if (verb == "evaluate") {
    cmd->mutable_evaluate()->set_on_behalf(TakeFlag(args, "--on-behalf"));
    cmd->mutable_evaluate()->set_comment(Take(args, "--comment"));
    if (args.empty()) return (*why = "evaluate: SCORE missing (1 to 5, after CASE)", false);
    int64_t score = 0;
    if (!ParseNumber("evaluate: SCORE", args[0], 1, 5, &score, why)) return false;
    cmd->mutable_evaluate()->set_score(static_cast<int32_t>(score));
    args.erase(args.begin());
  } else if (verb == "return") {
    cmd->mutable_return_case()->set_reason(Take(args, "--reason", note));
  } else if (verb == "reject") {
    cmd->mutable_reject()->set_reason(Take(args, "--reason", note));
  } else if (verb == "supervise") {
    cmd->mutable_supervise()->set_note(note);
  } else {
    return (*why = "unknown verb \"" + verb + "\"", false);
  }
  *why = Leftover(verb, args);
  return why->empty();
}

int Act(Client& client, const std::string& verb, Args args) {
  if (args.empty() || args[0].rfind('-', 0) == 0) return Usage(verb + ": CASE missing (first)");
  v1::CaseActionRequest req;
  req.set_case_id(args[0]);
  args.erase(args.begin());
  std::string why;
  if (!BuildCommand(verb, args, req.mutable_command(), &why)) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::Case resp;
  auto status = client.cases_->Act(&ctx, req, &resp);
  return Print<v1::Case>(status, resp, client.options_, PrintCase);
}

int List(Client& client, Args args) {
  v1::ListCasesRequest req;
  req.set_jurisdiction_id(Take(args, "--jurisdiction-id"));
  std::string state = Take(args, "--state");
  if (Given("--state")) {  // `--state ""` is refused, never read as every state
    std::string name = "CASE_STATE_" + state;
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    v1::CaseState parsed;
    if (!v1::CaseState_Parse(name, &parsed)) {
      return Usage("--state: unknown state \"" + ForTerminal(state) + "\"");
    }
    req.set_state(parsed);
  }
  int64_t page_size = 0;
  std::string why;
  if (!TakeNumber(args, "--page-size", 50, 1, kMaxPageSize, &page_size, &why)) return Usage(why);
  req.set_page_size(static_cast<int32_t>(page_size));
  req.set_page_token(Take(args, "--page-token"));
  bool all = TakeFlag(args, "--all");
  if (why = Leftover("list", args); !why.empty()) return Usage(why);
  v1::ListCasesResponse total;
  while (true) {
    grpc::ClientContext ctx;
    client.Prepare(ctx);
    v1::ListCasesResponse page;
    auto status = client.cases_->List(&ctx, req, &page);
    if (!status.ok() || !all) {
      return Print<v1::ListCasesResponse>(status, page, client.options_, PrintList);
    }
    for (auto& c : *page.mutable_cases()) *total.add_cases() = std::move(c);
    for (auto& id : *page.mutable_unreadable_case_ids()) *total.add_unreadable_case_ids() = id;
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  return Print<v1::ListCasesResponse>(grpc::Status::OK, total, client.options_, PrintList);
}

// Writes `text` to `path` with `mode`, set before any byte is written (a private
// key is never readable by others, not even for a moment).
bool WriteFile(const std::string& path, const std::string& text, std::filesystem::perms mode,
               std::string* why) {
  std::error_code ec;
  std::ofstream(path, std::ios::binary | std::ios::trunc).close();
  std::filesystem::permissions(path, mode, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out || ec) {
    *why = "cannot write " + path;
    return false;
  }
  return true;
}

std::string ReadText(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  *ok = static_cast<bool>(in);
  return text.str();
}

// "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed.
int64_t ParseDuration(const std::string& text) {
  if (text.empty()) return -1;
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's':
      unit = 1;
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  int64_t n = 0;
  std::string why;
  if (!ParseNumber("--ttl", digits, 0, 999999999, &n, &why)) return -1;
  return n * unit;
}

// whistlectl token keygen|mint: issuer keys and tokens, made locally.
int TokenVerb(Args args) {
  if (args.empty()) return Usage("token: want keygen or mint");
  std::string sub = args[0];
  args.erase(args.begin());
  std::string why;
  if (sub == "keygen") {
    std::string dir = Take(args, "--dir");
    std::string alg = Take(args, "--alg", "ES256");
    std::string kid = Take(args, "--kid");
    if (!args.empty()) return Usage(Leftover("token keygen", args));
    if (dir.empty()) return Usage("token keygen: --dir required");
    if (alg != "ES256" && alg != "RS256") return Usage("--alg: want ES256 or RS256");
    if (kid.empty()) {  // names the key, so rotated keys tell apart; not a secret
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      gmtime_r(&now, &tm);
      char date[16];
      std::strftime(date, sizeof(date), "%Y%m%d", &tm);
      std::random_device random;
      char suffix[16];
      std::snprintf(suffix, sizeof(suffix), "%06x", random() & 0xFFFFFF);
      kid = std::string("whistle-") + date + "-" + suffix;
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const std::string key_path = dir + "/private.pem";
    const std::string jwks_path = dir + "/jwks.json";
    if (std::filesystem::exists(key_path)) {
      std::fprintf(stderr, "error: %s exists; not overwriting an issuer key\n", key_path.c_str());
      return 1;
    }
    auto pair = services::GenerateKeyPair(
        alg == "ES256" ? services::KeyType::kEc256 : services::KeyType::kRsa, kid);
    if (!pair.ok()) {
      std::fprintf(stderr, "error: %s\n", pair.status().ToString().c_str());
      return 1;
    }
    using P = std::filesystem::perms;
    if (!WriteFile(key_path, pair->private_pem, P::owner_read | P::owner_write, &why) ||
        !WriteFile(jwks_path, pair->jwks_json + "\n",
                   P::owner_read | P::owner_write | P::group_read | P::others_read, &why)) {
      std::fprintf(stderr, "error: %s\n", why.c_str());
      return 1;
    }
    std::printf(
        "kid          %s\nprivate key  %s  (keep secret: it issues tokens)\n"
        "jwks         %s  (whistled --jwks-file)\n",
        kid.c_str(), key_path.c_str(), jwks_path.c_str());
    return 0;
  }
  if (sub == "mint") {
    std::string key_file = Take(args, "--key-file");
    std::string kid = Take(args, "--kid");
    services::Claims claims;
    claims.user = Take(args, "--user");
    std::string role = Take(args, "--role");
    claims.jurisdiction = Take(args, "--jurisdiction");
    claims.department = Take(args, "--department");
    int64_t ttl = ParseDuration(Take(args, "--ttl", "1h"));
    if (!args.empty()) return Usage(Leftover("token mint", args));
    if (key_file.empty() || kid.empty() || claims.user.empty() || role.empty()) {
      return Usage("token mint: --key-file, --kid, --user and --role are required");
    }
    if (ttl <= 0 || ttl > 30 * 86400) return Usage("--ttl: want 1s..30d, e.g. 15m, 1h, 7d");
    auto parsed = services::ParseRoleName("--role", role);
    if (!parsed.ok()) return Usage(parsed.status().message());
    // The node checks claims the same way: refuse here what it would refuse.
    for (const auto& [flag, value] :
         {std::pair<const char*, const std::string&>{"--user", claims.user},
          {"--jurisdiction", claims.jurisdiction},
          {"--department", claims.department}}) {
      if (value.empty()) continue;
      if (Status s = core::CheckId(flag, value, 128); !s.ok()) return Usage(s.message());
    }
    claims.role = *parsed;
    bool ok = false;
    std::string pem = ReadText(key_file, &ok);
    if (!ok) return Usage("--key-file: cannot read \"" + key_file + "\"");
    auto token =
        services::MintToken(pem, kid, claims, static_cast<int64_t>(std::time(nullptr)), ttl);
    if (!token.ok()) {
      std::fprintf(stderr, "error: %s\n", token.status().ToString().c_str());
      return 1;
    }
    std::printf("%s\n", token->c_str());
    return 0;
  }
  return Usage("token: unknown subcommand " + sub + " (want keygen or mint)");
}

// The argument a verb wants next (CASE, DIR, ID): args[0] unless absent or a flag.
bool TakeArg(const std::string& verb, const char* what, Args& args, std::string* out,
             std::string* why) {
  if (args.empty() || args[0].rfind('-', 0) == 0) {
    *why = verb + ": " + what + " missing";
    return false;
  }
  *out = args[0];
  args.erase(args.begin());
  return true;
}

int Get(Client& client, Args args) {
  v1::GetCaseRequest req;
  std::string why;
  if (!TakeArg("get", "CASE", args, req.mutable_case_id(), &why)) return Usage(why);
  if (why = Leftover("get", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::Case resp;
  auto status = client.cases_->Get(&ctx, req, &resp);
  return Print<v1::Case>(status, resp, client.options_, PrintCase);
}

int History(Client& client, Args args) {
  v1::GetHistoryRequest req;
  std::string why;
  if (!TakeArg("history", "CASE", args, req.mutable_case_id(), &why)) return Usage(why);
  if (why = Leftover("history", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::GetHistoryResponse resp;
  auto status = client.cases_->History(&ctx, req, &resp);
  return Print<v1::GetHistoryResponse>(status, resp, client.options_, PrintHistory);
}

int Count(Client& client, Args args) {
  v1::CountCasesRequest req;
  req.set_jurisdiction_id(Take(args, "--jurisdiction-id"));
  if (std::string why = Leftover("count", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::CountCasesResponse resp;
  auto status = client.cases_->Count(&ctx, req, &resp);
  return Print<v1::CountCasesResponse>(status, resp, client.options_, PrintCounts);
}

int Topology(Client& client, Args args) {
  v1::GetJurisdictionRequest req;
  std::string why;
  if (!args.empty() && args[0].rfind('-', 0) != 0) {
    req.set_id(args[0]);
    args.erase(args.begin());
  }
  if (why = Leftover("topology", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::JurisdictionView resp;
  auto status = client.topology_->GetJurisdiction(&ctx, req, &resp);
  return Print<v1::JurisdictionView>(status, resp, client.options_, PrintTopology);
}

int Backup(Client& client, Args args) {
  v1::BackupRequest req;
  std::string why;
  if (!TakeArg("backup", "DIR (absolute, on the node's host)", args, req.mutable_dir(), &why)) {
    return Usage(why);
  }
  if (why = Leftover("backup", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::BackupResponse resp;
  auto status = client.admin_->Backup(&ctx, req, &resp);
  return Print<v1::BackupResponse>(status, resp, client.options_, PrintBackup);
}

int HealthVerb(Client& client, Args args) {
  if (std::string why = Leftover("health", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  return Health(client, ctx);
}

int Links(Client& client, Args args) {
  if (std::string why = Leftover("links", args); !why.empty()) return Usage(why);
  grpc::ClientContext ctx;
  client.Prepare(ctx);
  v1::GetLinksResponse resp;
  auto status = client.node_->GetLinks(&ctx, v1::GetLinksRequest(), &resp);
  return Print<v1::GetLinksResponse>(status, resp, client.options_, PrintLinks);
}

int Version(Args args) {
  if (std::string why = Leftover("version", args); !why.empty()) return Usage(why);
  std::printf("whistlectl %s (revision %s)\n", app::kBuildVersion, app::kBuildRevision);
  return 0;
}

// A case verb (CaseService.Act): BuildCommand knows its flags.
std::function<int(Client&, Args)> ActAs(const char* verb) {
  return [verb](Client& client, Args args) { return Act(client, verb, std::move(args)); };
}

// A verb of a group whose file dispatches on the sub-verb itself (directive,
// inbox): hands it the sub-verb back.
std::function<int(Client&, Args)> InGroup(const char* sub, int (*run)(const VerbIo&, Args)) {
  return [sub, run](Client& client, Args args) {
    args.insert(args.begin(), sub);
    return run(IoOf(client), std::move(args));
  };
}

std::function<int(Args)> TokenAs(const char* sub) {
  return [sub](Args args) {
    args.insert(args.begin(), sub);
    return TokenVerb(std::move(args));
  };
}

const std::string kCaseArg = "  CASE                 the case id, e.g. szs-000000000001\n";
const std::string kNoteFlag = "  --note N             a note kept in the case's history\n";
const std::string kReasonFlag =
    "  --reason R           why (required; --note is taken when absent)\n";
const std::string kJurisdictionFlag =
    "  --jurisdiction-id J  the subtree (default: your jurisdiction)\n";
const std::string kPageFlags =
    "  --page-size N        1..500 per page (default 50)\n"
    "  --page-token T       the page after the one that printed `next page: --page-token T`\n";
const std::string kAllFlag = "  --all                every page, one after the other\n";
const std::string kUnitFlag = "  --unit U             the unit to act for (default: your own)\n";
const std::string kReceiptNoteFlag = "  --note N             a note kept on the unit's receipt\n";
const std::string kDirectiveArg = "  ID                   the directive id\n";
const std::string kDeadlineFlag =
    "  --deadline D         +30m, +2h, +3d, 2026-12-01T18:00 (local time) or unix ms\n";

// Every verb, in the order `whistlectl --help` lists them: one row per verb.
const std::vector<Verb>& Verbs() {
  static const std::vector<Verb> kVerbs = {
      {"report", "Report a new case in a grid; the node routes it to the level that owns it",
       "report --request-id ID --category C --severity S --grid GRID --text TEXT\n"
       "                  [--address A] [--attachment URI]...",
       "  --request-id ID      your id for this report: sent again, it reports nothing new\n"
       "  --category C         a category of the node's policy, e.g. dispute.neighbour\n"
       "  --severity S         general, serious, major or extraordinary (required: it picks\n"
       "                       the level that owns the case)\n"
       "  --grid GRID          the grid it happened in, e.g. dwk-s01-c01-g001\n"
       "  --text TEXT          what happened\n"
       "  --address A          where, in words (optional)\n"
       "  --attachment URI     a photo or file stored elsewhere; repeatable\n",
       Report},
      {"accept", "Accept a reported case your level owns", "accept CASE [--note N]",
       kCaseArg + kNoteFlag, ActAs("accept")},
      {"keep", "Handle an accepted case at your own level (in progress)", "keep CASE [--note N]",
       kCaseArg + kNoteFlag, ActAs("keep")},
      {"dispatch", "Dispatch an accepted case to a department of your level",
       "dispatch CASE DEPARTMENT [--note N]",
       kCaseArg + "  DEPARTMENT           the department's id, e.g. dwk-s01-police_station\n" +
           kNoteFlag,
       ActAs("dispatch")},
      {"escalate", "Move an open case up to the parent level", "escalate CASE --reason R",
       kCaseArg + kReasonFlag, ActAs("escalate")},
      {"whistle", "Summon departments to report in on a case (吹哨报到)",
       "whistle CASE DEPT [DEPT...] [--note N]",
       kCaseArg + "  DEPT                 a department's id; one or more\n" + kNoteFlag,
       ActAs("whistle")},
      {"report-in", "Report in on a case your department was summoned or dispatched to",
       "report-in CASE [--note N]", kCaseArg + kNoteFlag, ActAs("report-in")},
      {"resolve", "Mark a case in progress resolved", "resolve CASE [--note N]",
       kCaseArg + kNoteFlag, ActAs("resolve")},
      {"verify", "Verify a resolved case fixed, or not fixed",
       "verify CASE [--not-fixed] [--note N]",
       kCaseArg + "  --not-fixed          the problem is still there\n" + kNoteFlag,
       ActAs("verify")},
      {"close", "Close a verified case", "close CASE [--note N]", kCaseArg + kNoteFlag,
       ActAs("close")},
      {"evaluate", "Rate a closed case from 1 to 5 (its reporter, or staff --on-behalf)",
       "evaluate CASE SCORE [--comment C] [--on-behalf]",
       kCaseArg + "  SCORE                1 (dissatisfied) to 5 (satisfied)\n" +
           "  --comment C          a comment kept with the rating\n" +
           "  --on-behalf          staff rating for a resident who cannot (marked, reported\n" +
           "                       apart; never by staff who handled the case)\n",
       ActAs("evaluate")},
      {"transfer", "Hand a case down or sideways (分流/下派) and/or correct its category",
       "transfer CASE [--to J] [--category C] --reason R",
       kCaseArg + "  --to J               a unit inside the subtree of the owner's parent\n" +
           "  --category C         the corrected category (history keeps the old one)\n" +
           kReasonFlag,
       ActAs("transfer")},
      {"refuse", "Refuse a dispatch to your department (退单); the owner re-dispatches",
       "refuse CASE --reason R", kCaseArg + kReasonFlag, ActAs("refuse")},
      {"return", "Send a misrouted case to the parent level", "return CASE --reason R",
       kCaseArg + kReasonFlag, ActAs("return")},
      {"reject", "Reject a report that is no case (a duplicate, not a matter for the grid)",
       "reject CASE --reason R", kCaseArg + kReasonFlag, ActAs("reject")},
      {"supervise", "Record supervision (督办) of a case owned below your level (leaders)",
       "supervise CASE [--note N]", kCaseArg + kNoteFlag, ActAs("supervise")},
      {"get", "Show a case", "get CASE", kCaseArg, Get},
      {"history", "Show a case's history (its audit trail)", "history CASE", kCaseArg, History},
      {"list", "List the cases owned in a jurisdiction subtree, by state, a page at a time",
       "list [--jurisdiction-id J] [--state S] [--page-size N] [--page-token T] [--all]",
       kJurisdictionFlag +
           "  --state S            only cases in state S: reported, accepted, dispatched,\n"
           "                       in_progress, resolved, verified, closed, evaluated, rejected\n" +
           kPageFlags + kAllFlag,
       List},
      {"count", "Count the cases per state in a jurisdiction subtree",
       "count [--jurisdiction-id J]", kJurisdictionFlag, Count},
      {"assess", "Show the assessment (考核) of a jurisdiction subtree or a department",
       "assess (J | --department D) [--period day|week|month] [--at DATE]\n"
       "                  [--from DATE --to DATE]",
       std::string("  J                    a jurisdiction id (figures of its whole subtree)\n"
                   "  --department D       a department's own figures instead\n") +
           kPeriodHelp + "  (definitions: docs/assessment.md)\n",
       [](Client& client, Args args) { return AssessVerb(IoOf(client), std::move(args)); }},
      {"rank", "Rank the children of a jurisdiction by an assessment figure",
       "rank J --by FIGURE [--period day|week|month] [--at DATE] [--from DATE --to DATE]",
       std::string(
           "  J                    the parent jurisdiction\n"
           "  --by FIGURE          a rate (response_rate, resolution_rate, satisfaction_rate,\n"
           "                       satisfaction_mean, closure_rate, kept_local_share) or a\n"
           "                       count (received, escalations_out, returns, reopened, ...)\n") +
           kPeriodHelp,
       [](Client& client, Args args) { return RankVerb(IoOf(client), std::move(args)); }},
      {"topology", "Show a jurisdiction: its path, children, departments and grids below",
       "topology [ID]", "  ID                   a jurisdiction id (default: the node's top)\n",
       Topology},
      {"links", "Show the node's links to its parent and children", "links", "", Links},
      {"health", "Check the node's gRPC health; exit 0 only when SERVING (no identity needed)",
       "health", "", HealthVerb},
      {"backup", "Checkpoint the running node into a directory on the node's host (admin)",
       "backup DIR",
       "  DIR                  an absolute path on the NODE's host, not yet there\n"
       "                       (restore: docs/operations.md)\n",
       Backup},
      {"clock set", "TESTS ONLY: set a test node's clock (--test-clock-start-ms; admin)",
       "clock set MS", "  MS                   ms since the epoch, not before the clock's time\n",
       InGroup("set", ClockVerb)},
      {"clock advance", "TESTS ONLY: move a test node's clock forward (admin)",
       "clock advance DURATION", "  DURATION             e.g. 90s, 3h, 2d (units ms, s, m, h, d)\n",
       InGroup("advance", ClockVerb)},
      {"watch", "Stream the changes under a jurisdiction as they happen",
       "watch [--jurisdiction-id J] [--from TOKEN] [--max N] [--for-ms MS]",
       kJurisdictionFlag +
           "  --from TOKEN         resume after the change printed with TOKEN\n"
           "  --max N              stop after N changes (default 0: no limit)\n"
           "  --for-ms MS          stop after MS milliseconds (default 0: run until Ctrl-C)\n",
       [](Client& client, Args args) {
         return WatchVerb(IoOf(client), client.options_.json, std::move(args));
       }},
      {"inbox summoned", "List your department's cases: pending report-in first",
       "inbox summoned [--page-size N] [--page-token T] [--all]", kPageFlags + kAllFlag,
       InGroup("summoned", InboxVerb)},
      {"inbox reported", "List the cases you reported",
       "inbox reported [--page-size N] [--page-token T] [--all]", kPageFlags + kAllFlag,
       InGroup("reported", InboxVerb)},
      {"notices",
       "List the supervision notices (督办) to a level: cases whose owner missed a deadline",
       "notices [JURISDICTION] [--page-size N] [--page-token T] [--all]",
       "  JURISDICTION         the level notified (default: your jurisdiction); staff and\n"
       "                       leaders of it or above. Newest notice first; a case leaves the\n"
       "                       list once resolved, closed, rejected or handed elsewhere\n" +
           kPageFlags + kAllFlag,
       [](Client& client, Args args) { return NoticesVerb(IoOf(client), std::move(args)); }},
      {"directive issue", "Issue a directive to units below you, with a deadline (leaders)",
       "directive issue --title T --deadline D [--text T] [--attachment URI]...\n"
       "                  [--request-id R] (--level LEVEL --subtree ID | --jurisdictions ID,..\n"
       "                  | --departments ID,..)",
       "  --title T            the directive's title\n" + kDeadlineFlag +
           "  --text T             its text\n"
           "  --attachment URI     a file stored elsewhere; repeatable\n"
           "  --request-id R       your id for it: sent again with the same content (and the\n"
           "                       same absolute --deadline), it issues nothing new; with other\n"
           "                       content it is refused (ALREADY_EXISTS)\n"
           "  --level LEVEL        with --subtree ID: every county, township, community or grid\n"
           "                       under ID\n"
           "  --jurisdictions L    or: these jurisdictions, comma-separated\n"
           "  --departments L      or: these departments, comma-separated\n",
       InGroup("issue", DirectiveVerb)},
      {"directive amend", "Change a directive's deadline or text (a new version)",
       "directive amend ID [--deadline D] [--text T]",
       kDirectiveArg + kDeadlineFlag + "  --text T             its new text\n",
       InGroup("amend", DirectiveVerb)},
      {"directive cancel", "Cancel a directive", "directive cancel ID --reason R",
       kDirectiveArg + "  --reason R           why (required)\n", InGroup("cancel", DirectiveVerb)},
      {"directive sign", "Sign for a directive: your unit has received it",
       "directive sign ID [--unit U] [--note N]", kDirectiveArg + kUnitFlag + kReceiptNoteFlag,
       InGroup("sign", DirectiveVerb)},
      {"directive complete", "Report a directive done for your unit",
       "directive complete ID [--unit U] [--note N] [--attachment URI]...",
       kDirectiveArg + kUnitFlag + kReceiptNoteFlag +
           "  --attachment URI     a file stored elsewhere; repeatable\n",
       InGroup("complete", DirectiveVerb)},
      {"directive get", "Show a directive and its progress", "directive get ID", kDirectiveArg,
       InGroup("get", DirectiveVerb)},
      {"directive list", "List the directives issued in or addressed to a jurisdiction",
       "directive list [--jurisdiction-id J] [--page-size N] [--page-token T]",
       kJurisdictionFlag + kPageFlags, InGroup("list", DirectiveVerb)},
      {"directive progress", "Show a directive's progress, one row per child jurisdiction",
       "directive progress ID [--jurisdiction-id J]", kDirectiveArg + kJurisdictionFlag,
       InGroup("progress", DirectiveVerb)},
      {"directive targets", "List a directive's target units and their receipts",
       "directive targets ID [--jurisdiction-id J] [--state pending|signed|done]\n"
       "                  [--page-size N] [--page-token T] [--all]",
       kDirectiveArg + kJurisdictionFlag +
           "  --state S            only receipts in state S: pending, signed or done\n" +
           kPageFlags + kAllFlag,
       InGroup("targets", DirectiveVerb)},
      {"directive inbox", "List the directives addressed to your unit",
       "directive inbox [--unit U] [--page-size N] [--page-token T]", kUnitFlag + kPageFlags,
       InGroup("inbox", DirectiveVerb)},
      {"token keygen", "Write an issuer key pair (no node needed)",
       "token keygen --dir D [--kid ID] [--alg ES256|RS256]",
       "  --dir D              writes D/private.pem (the issuer's signing key, mode 0600,\n"
       "                       never overwritten) and D/jwks.json (whistled --jwks-file)\n"
       "  --kid ID             the key's id (default: whistle-DATE-RANDOM)\n"
       "  --alg A              ES256 (default) or RS256\n",
       nullptr, TokenAs("keygen")},
      {"token mint", "Print a signed token for a user (no node needed)",
       "token mint --key-file K --kid ID --user U --role R [--jurisdiction J]\n"
       "                  [--department D] [--ttl 1h]",
       "  --key-file K         the issuer's private.pem\n"
       "  --kid ID             the key's id, as in its jwks.json\n"
       "  --user U             who\n"
       "  --role R             grid_worker, staff, department, leader or admin\n"
       "  --jurisdiction J     where the user works\n"
       "  --department D       the department (role department)\n"
       "  --ttl T              how long it is valid: s, m, h or d (default 1h, at most 30d)\n",
       nullptr, TokenAs("mint")},
      {"version", "Print whistlectl's version and git revision (also --version)", "version", "",
       nullptr, Version},
  };
  return kVerbs;
}

// The group a two-word verb belongs to ("directive"); "" for one-word verbs.
std::string GroupOf(const Verb& v) {
  size_t space = v.name.find(' ');
  return space == std::string::npos ? "" : v.name.substr(0, space);
}

bool IsGroup(const std::string& word) {
  for (const Verb& v : Verbs()) {
    if (GroupOf(v) == word) return true;
  }
  return false;
}

// The row args[0] (and args[1], for a group) names; *words: how many it took.
const Verb* FindVerb(const Args& args, size_t* words) {
  for (const Verb& v : Verbs()) {
    const std::string group = GroupOf(v);
    if (group.empty() && !args.empty() && args[0] == v.name) {
      *words = 1;
      return &v;
    }
    if (!group.empty() && args.size() >= 2 && args[0] == group &&
        args[1] == v.name.substr(group.size() + 1)) {
      *words = 2;
      return &v;
    }
  }
  return nullptr;
}

// `whistlectl --help`: every verb (or a group's), one line each.
void PrintVerbs(std::FILE* out, const std::string& group) {
  std::fputs(
      "usage: whistlectl [global flags] VERB [args]\n"
      "       whistlectl VERB --help      a verb's usage, arguments and flags\n\n"
      "Verbs:\n",
      out);
  for (const Verb& v : Verbs()) {
    if (!group.empty() && GroupOf(v) != group) continue;
    std::fprintf(out, "  %-20s  %s\n", v.name.c_str(), v.summary.c_str());
  }
  if (group.empty()) std::fprintf(out, "\n%s", kGlobalFlags);
}

// `whistlectl VERB --help`.
void PrintVerb(const Verb& v) {
  std::printf("usage: whistlectl %s\n\n%s.\n", v.usage.c_str(), v.summary.c_str());
  if (!v.flags.empty()) std::printf("\nArguments and flags:\n%s", v.flags.c_str());
  if (!v.local) {
    std::puts(
        "\nGlobal flags (--server, --token-file, --json, --timeout-ms, --tls-*): "
        "whistlectl --help");
  }
}

int UnknownVerb(const std::string& verb) {
  return Usage("unknown verb \"" + ForTerminal(verb) + "\"");
}

int Run(int argc, char** argv) {
  Args args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--version") args[0] = "version";
  size_t words = 0;
  const Verb* verb = FindVerb(args, &words);
  // Verbs that need no node (token, version) take no global flags.
  Options o;
  std::string token_file, why;
  if (verb == nullptr || !verb->local) {
    o.server = Take(args, "--server", Env("WHISTLE_SERVER", o.server));
    token_file = Take(args, "--token-file", Env("WHISTLE_TOKEN_FILE", ""));
    o.user = Take(args, "--dev-user");
    o.role = Take(args, "--dev-role");
    o.jurisdiction = Take(args, "--dev-jurisdiction");
    o.department = Take(args, "--dev-department");
    int64_t timeout_ms = 0;
    if (!TakeNumber(args, "--timeout-ms", 10000, 1, 86400000, &timeout_ms, &why)) {
      return Usage(why);
    }
    o.timeout_ms = static_cast<int>(timeout_ms);
    o.json = TakeFlag(args, "--json");
    o.tls_ca_file = Take(args, "--tls-ca-file", Env("WHISTLE_TLS_CA_FILE", ""));
    o.tls_cert_file = Take(args, "--tls-cert-file", Env("WHISTLE_TLS_CERT_FILE", ""));
    o.tls_key_file = Take(args, "--tls-key-file", Env("WHISTLE_TLS_KEY_FILE", ""));
    o.tls_server_name = Take(args, "--tls-server-name", Env("WHISTLE_TLS_SERVER_NAME", ""));
    verb = FindVerb(args, &words);
  }
  if (args.empty()) {
    PrintVerbs(stderr, "");
    return 2;
  }
  if (verb == nullptr) {
    const bool help = args[0] == "help" || args[0] == "--help" || args[0] == "-h";
    Args rest(args.begin() + (help ? 1 : 0), args.end());
    if (help && rest.empty()) {
      PrintVerbs(stdout, "");
      return 0;
    }
    if (help && (verb = FindVerb(rest, &words)) != nullptr) {
      PrintVerb(*verb);
      return 0;
    }
    if (IsGroup(rest[0])) {  // "directive", "directive help", "help directive"
      const bool group_help =
          help ||
          (rest.size() > 1 && (rest[1] == "help" || rest[1] == "--help" || rest[1] == "-h"));
      if (rest.size() > 1 && !group_help) return UnknownVerb(rest[0] + " " + rest[1]);
      if (!group_help) std::fprintf(stderr, "whistlectl: %s wants a verb\n", rest[0].c_str());
      PrintVerbs(group_help ? stdout : stderr, rest[0]);
      return group_help ? 0 : 2;
    }
    if (!help && GivenTwice(rest[0])) return Usage(ForTerminal(rest[0]) + " given twice");
    if (!help && rest[0].rfind('-', 0) == 0) return Usage("unknown flag " + ForTerminal(rest[0]));
    return UnknownVerb(rest[0]);
  }
  args.erase(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(words));
  current_verb = verb;
  // Help before anything else: no token is read and no node contacted.
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      PrintVerb(*verb);
      return 0;
    }
  }
  if (verb->local) return verb->local(std::move(args));
  if (!token_file.empty()) {
    bool ok = false;
    o.token = ReadText(token_file, &ok);
    if (!ok) return Usage("--token-file: cannot read \"" + token_file + "\"");
  } else {
    o.token = Env("WHISTLE_TOKEN", "");
  }
  while (!o.token.empty() && std::isspace(static_cast<unsigned char>(o.token.back()))) {
    o.token.pop_back();
  }
  // Header values are printable ASCII; gRPC aborts the process on any other byte.
  auto printable = [](const std::string& value, unsigned char lowest) {
    for (char ch : value) {
      if (static_cast<unsigned char>(ch) < lowest || static_cast<unsigned char>(ch) > 0x7e) {
        return false;
      }
    }
    return true;
  };
  if (!printable(o.token, 0x21)) {
    return Usage(std::string(token_file.empty() ? "WHISTLE_TOKEN" : "--token-file") +
                 ": not a token (a signed JWT: one line of printable ASCII)");
  }
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"--dev-user", o.user},
        {"--dev-role", o.role},
        {"--dev-jurisdiction", o.jurisdiction},
        {"--dev-department", o.department}}) {
    if (!printable(value, 0x20)) return Usage(std::string(flag) + ": printable ASCII only");
  }
  auto channel = Dial(o, &why);
  if (!channel) return Usage(why);
  Client client(o, std::move(channel));
  return verb->run(client, std::move(args));
}

}  // namespace

}  // namespace whistle::cli

int main(int argc, char** argv) { return whistle::cli::Run(argc, argv); }
