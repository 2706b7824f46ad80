#include "app/console/gateway.h"

#include <civetweb.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/console/http.h"
#include "core/log.h"
#include "core/text.h"
#include "whistle/v1/link.pb.h"
#include "whistle/v1/service.pb.h"

namespace whistle::console {

namespace {

constexpr size_t kMaxQuery = 1024;
constexpr size_t kMaxResumeToken = 128;
// A body over kMaxBody is read and dropped up to this much before the 413.
constexpr size_t kMaxDrain = 16 << 20;

Status ReadPem(const std::string& flag, const std::string& path, std::string* out) {
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return Status::InvalidArgument(flag + ": cannot read " + core::Quote(path));
  }
  *out = text.str();
  return Status::Ok();
}

// The request path for the log: printable ASCII, at most 200 bytes.
std::string LogPath(const char* raw) {
  std::string out;
  for (const char* p = raw; p != nullptr && *p != '\0' && out.size() < 200; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  return out;
}

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

bool StartsWithNoCase(const char* text, const char* prefix) {
  return text != nullptr && strncasecmp(text, prefix, std::strlen(prefix)) == 0;
}

HttpReply MethodNotAllowed(const std::string& method, const char* allow) {
  HttpReply reply = ErrorReply(405, "INVALID_ARGUMENT",
                               "method " + core::Quote(method) + " not allowed here; use " + allow);
  reply.allow = allow;
  return reply;
}

HttpReply TextReply(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body), ""};
}

// Number of request headers named `name` (case-insensitive).
int HeaderCount(const mg_request_info* ri, const char* name) {
  int n = 0;
  for (int i = 0; i < ri->num_headers; ++i) {
    if (ri->http_headers[i].name != nullptr && strcasecmp(ri->http_headers[i].name, name) == 0) {
      ++n;
    }
  }
  return n;
}

// Every header value is one line of visible bytes (civetweb has split the lines;
// this refuses what is left of control characters, e.g. a bare CR).
bool HeadersClean(const mg_request_info* ri) {
  for (int i = 0; i < ri->num_headers; ++i) {
    for (const char* p = ri->http_headers[i].value; p != nullptr && *p != '\0'; ++p) {
      unsigned char c = static_cast<unsigned char>(*p);
      if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
    }
  }
  return true;
}

}  // namespace

StatusOr<std::string> BearerToken(const char* value) {
  if (value == nullptr) {
    return Status::Unauthenticated("missing Authorization header: send \"Bearer <token>\"");
  }
  if (!StartsWithNoCase(value, "Bearer ")) {
    return Status::Unauthenticated("Authorization: expected \"Bearer <token>\"");
  }
  std::string_view token(value + 7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty()) return Status::Unauthenticated("Authorization: the token is empty");
  if (token.size() > kMaxToken) {
    return Status::Unauthenticated("Authorization: the token is longer than 8192 bytes");
  }
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7E) {
      return Status::Unauthenticated(
          "Authorization: the token holds a byte that is not printable ASCII (or a space)");
    }
  }
  return std::string(token);
}

StatusOr<std::shared_ptr<grpc::Channel>> DialNode(const Options& o) {
  grpc::ChannelArguments args;
  // Back within ~2 s of the node coming back (gRPC's default backoff grows to 2 min).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(64 << 20);
  if (!o.tls()) {
    return grpc::CreateCustomChannel(o.node, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca_file.empty()) {
    if (Status s = ReadPem("--tls-ca-file", o.tls_ca_file, &ssl.pem_root_certs); !s.ok()) return s;
  }
  if (!o.tls_cert_file.empty()) {
    if (Status s = ReadPem("--tls-cert-file", o.tls_cert_file, &ssl.pem_cert_chain); !s.ok()) {
      return s;
    }
    if (Status s = ReadPem("--tls-key-file", o.tls_key_file, &ssl.pem_private_key); !s.ok()) {
      return s;
    }
  }
  if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  return grpc::CreateCustomChannel(o.node, grpc::SslCredentials(ssl), args);
}

Gateway::Gateway(const Options& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      bridge_(channel, options.rpc_timeout_ms),
      watches_(channel, options.max_watch_streams, options.keepalive_ms),
      files_(options.assets) {}

Gateway::~Gateway() { Stop(); }

Status Gateway::Start() {
  if (Status s = files_.Check(); !s.ok()) return s;
  mg_init_library(0);
  static mg_callbacks callbacks;  // civetweb keeps a copy
  callbacks.begin_request = &Gateway::OnRequest;
  callbacks.log_message = &Gateway::OnLog;
  std::string threads = std::to_string(options_.max_watch_streams + 32);
  const char* opts[] = {"listening_ports", options_.listen.c_str(), "num_threads", threads.c_str(),
                        // The path as sent: StaticFiles decodes it once, strictly.
                        "decode_url", "no", "enable_directory_listing", "no", "enable_keep_alive",
                        "yes", "keep_alive_timeout_ms", "5000",
                        // Answers go out whole (http.h); no Nagle delay for the next one.
                        "tcp_nodelay", "1",
                        // Reads and writes of a stalled client give up after 10 s.
                        "request_timeout_ms", "10000",
                        // The request line and headers (431/413 beyond).
                        "max_request_size", "16384", nullptr};
  ctx_ = mg_start(&callbacks, this, opts);
  if (ctx_ == nullptr) {
    return Status::InvalidArgument("--listen: cannot listen on " + core::Quote(options_.listen) +
                                   " (in use, or not an address of this host)");
  }
  mg_server_port ports[4] = {};
  if (mg_get_server_ports(ctx_, 4, ports) > 0) port_ = ports[0].port;
  return Status::Ok();
}

void Gateway::Stop() {
  if (ctx_ == nullptr) return;
  stopping_ = true;
  // Open streams end first (their last chunk written): civetweb refuses writes once
  // mg_stop has begun.
  watches_.Shutdown();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (watches_.open() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  mg_stop(ctx_);  // waits for the worker threads
  ctx_ = nullptr;
}

int Gateway::OnLog(const mg_connection* /*conn*/, const char* message) {
  // civetweb's own complaints (a request it could not parse, a socket error).
  std::string text = message != nullptr ? message : "";
  if (text.size() > 200) text.resize(200);
  Log(LogLevel::kWarn, "civetweb", {{"detail", text}});
  return 1;
}

int Gateway::OnRequest(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  auto* self = static_cast<Gateway*>(ri->user_data);
  auto start = std::chrono::steady_clock::now();
  int status = self->Handle(conn);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  const char* path = ri->local_uri_raw != nullptr ? ri->local_uri_raw : ri->local_uri;
  if (LogEnabled(LogLevel::kInfo)) {
    Log(LogLevel::kInfo, "http",
        {{"method", LogPath(ri->request_method)},
         {"path", LogPath(path)},
         {"status", std::to_string(status)},
         {"ms", std::to_string(ms)}});
  }
  return status;
}

int Gateway::Handle(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  std::string method = ri->request_method != nullptr ? ri->request_method : "";
  const char* raw = ri->local_uri_raw != nullptr ? ri->local_uri_raw : ri->local_uri;
  std::string path = raw != nullptr ? raw : "";
  if (!HeadersClean(ri)) {
    return SendReply(
        conn, ErrorReply(400, "INVALID_ARGUMENT", "a request header holds a control character"));
  }
  bool get = method == "GET" || method == "HEAD";
  bool head = method == "HEAD";
  if (path == "/healthz") {
    if (!get) return SendReply(conn, MethodNotAllowed(method, "GET, HEAD"));
    return SendReply(conn, TextReply(200, "ok\n"), head);
  }
  if (path == "/readyz") {
    if (!get) return SendReply(conn, MethodNotAllowed(method, "GET, HEAD"));
    if (stopping_) return SendReply(conn, TextReply(503, "stopping\n"), head);
    bool ready = bridge_.NodeServing(std::min(options_.rpc_timeout_ms, 2000));
    return SendReply(conn,
                     ready ? TextReply(200, "ready\n")
                           : TextReply(503, "the node " + options_.node + " does not answer\n"),
                     head);
  }
  if (path == "/api" || path.rfind("/api/", 0) == 0) return HandleApi(conn, path, method);
  if (!get) return SendReply(conn, MethodNotAllowed(method, "GET, HEAD"));
  return HandleStatic(conn, path, head);
}

int Gateway::HandleApi(mg_connection* conn, const std::string& path, const std::string& method) {
  enum class Route { kRpc, kWatch, kLinks, kUnknown };
  Route route = Route::kUnknown;
  if (path.rfind("/api/rpc/", 0) == 0) {
    route = Route::kRpc;
  } else if (path == "/api/watch") {
    route = Route::kWatch;
  } else if (path == "/api/links") {
    route = Route::kLinks;
  }
  if (route == Route::kRpc && method != "POST") {
    return SendReply(conn, MethodNotAllowed(method, "POST"));
  }
  if ((route == Route::kWatch || route == Route::kLinks) && method != "GET") {
    return SendReply(conn, MethodNotAllowed(method, "GET"));
  }
  const mg_request_info* ri = mg_get_request_info(conn);
  if (HeaderCount(ri, "Authorization") > 1) {
    return SendReply(conn,
                     ErrorReply(401, "UNAUTHENTICATED", "more than one Authorization header"));
  }
  StatusOr<std::string> token = BearerToken(mg_get_header(conn, "Authorization"));
  if (!token.ok()) {
    return SendReply(conn, ErrorReply(401, "UNAUTHENTICATED", token.status().message()));
  }
  switch (route) {
    case Route::kRpc: {
      std::string_view rest(path);
      rest.remove_prefix(std::strlen("/api/rpc/"));
      size_t slash = rest.find('/');
      std::string_view service = rest.substr(0, slash);
      std::string_view rpc = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
      if (!IsName(service) || !IsName(rpc)) {
        return SendReply(conn, ErrorReply(404, "NOT_FOUND",
                                          "expected /api/rpc/<Service>/<Method>, e.g. "
                                          "/api/rpc/CaseService/Count"));
      }
      return HandleRpc(conn, std::string(service), std::string(rpc), *token);
    }
    case Route::kWatch:
      return HandleWatch(conn, *token);
    case Route::kLinks:
      return HandleLinks(conn, *token);
    case Route::kUnknown:
      break;
  }
  return SendReply(conn, ErrorReply(404, "NOT_FOUND",
                                    "no such API; the console serves /api/rpc/<Service>/<Method>, "
                                    "/api/watch and /api/links"));
}

int Gateway::HandleRpc(mg_connection* conn, const std::string& service, const std::string& rpc,
                       const std::string& token) {
  const google::protobuf::MethodDescriptor* method = bridge_.Find(service, rpc);
  if (method == nullptr) {
    return SendReply(conn, ErrorReply(404, "NOT_FOUND",
                                      "no method " + service + "/" + rpc +
                                          " here (the console calls the unary methods of "
                                          "CaseService, TopologyService, DirectiveService, "
                                          "InboxService, AssessmentService and "
                                          "NodeService/GetLinks)"));
  }
  const mg_request_info* ri = mg_get_request_info(conn);
  auto too_large = [&](size_t read) {
    // Read (and drop) a moderate excess first: closing with unread bytes resets the
    // connection, and the client may never see the answer.
    char sink[16384];
    while (read < kMaxDrain) {
      int n = mg_read(conn, sink, sizeof(sink));
      if (n <= 0) break;
      read += static_cast<size_t>(n);
    }
    return SendReply(conn, ErrorReply(413, "INVALID_ARGUMENT", "request body: larger than 1 MiB"));
  };
  if (ri->content_length > static_cast<long long>(kMaxBody)) {
    if (ri->content_length > static_cast<long long>(kMaxDrain)) return too_large(kMaxDrain);
    return too_large(0);
  }
  std::string body;
  body.reserve(ri->content_length > 0 ? static_cast<size_t>(ri->content_length) : 0);
  char buffer[16384];
  for (;;) {
    int n = mg_read(conn, buffer, sizeof(buffer));
    if (n <= 0) break;
    body.append(buffer, static_cast<size_t>(n));
    if (body.size() > kMaxBody) return too_large(body.size());
  }
  if (!body.empty()) {
    const char* type = mg_get_header(conn, "Content-Type");
    std::string_view t = type != nullptr ? type : "";
    bool json = StartsWithNoCase(type, "application/json") &&
                (t.size() == 16 || t[16] == ';' || t[16] == ' ');
    if (!json) {
      return SendReply(conn, ErrorReply(415, "INVALID_ARGUMENT",
                                        "Content-Type: send the request as application/json"));
    }
  }
  if (method->service()->name() == "NodeService") {
    // The node answers GetLinks to anyone; the console only to a caller it accepts.
    if (int refused = CheckCaller(conn, token); refused != 0) return refused;
  }
  return SendReply(conn, bridge_.CallJson(method, body, token));
}

int Gateway::CheckCaller(mg_connection* conn, const std::string& token) {
  const google::protobuf::MethodDescriptor* get =
      bridge_.Find("TopologyService", "GetJurisdiction");
  v1::GetJurisdictionRequest request;  // "" = the caller's own jurisdiction
  v1::JurisdictionView view;
  grpc::Status status = bridge_.Call(get, request, &view, token);
  if (!status.ok()) return SendReply(conn, FromStatus(status));
  return 0;
}

int Gateway::HandleLinks(mg_connection* conn, const std::string& token) {
  if (int refused = CheckCaller(conn, token); refused != 0) return refused;
  return SendReply(conn, bridge_.CallJson(bridge_.Find("NodeService", "GetLinks"), "", token));
}

int Gateway::HandleWatch(mg_connection* conn, const std::string& token) {
  const mg_request_info* ri = mg_get_request_info(conn);
  WatchStreams::Request request;
  request.token = token;
  std::string_view query = ri->query_string != nullptr ? ri->query_string : "";
  if (query.size() > kMaxQuery) {
    return SendReply(conn, ErrorReply(400, "INVALID_ARGUMENT", "query: longer than 1024 bytes"));
  }
  bool seen_jurisdiction = false, seen_from = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    StatusOr<std::string> value =
        StaticFiles::DecodePath(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (key == "jurisdictionId" && !seen_jurisdiction) {
      if (!value.ok()) {
        return SendReply(conn, ErrorReply(400, "INVALID_ARGUMENT",
                                          "jurisdictionId: " + value.status().message()));
      }
      request.jurisdiction_id = *value;
      seen_jurisdiction = true;
    } else if (key == "fromToken" && !seen_from) {
      if (!value.ok()) {
        return SendReply(
            conn, ErrorReply(400, "INVALID_ARGUMENT", "fromToken: " + value.status().message()));
      }
      request.from_token = *value;
      seen_from = true;
    } else {
      return SendReply(conn, ErrorReply(400, "INVALID_ARGUMENT",
                                        "query: unknown or repeated parameter " + core::Quote(key) +
                                            " (jurisdictionId, fromToken)"));
    }
  }
  // A browser's reconnect (or the page's) resumes after the last event it saw.
  if (const char* last = mg_get_header(conn, "Last-Event-ID"); last != nullptr && *last != '\0') {
    std::string_view id(last);
    if (id.size() > kMaxResumeToken) {
      return SendReply(conn,
                       ErrorReply(400, "INVALID_ARGUMENT", "Last-Event-ID: longer than 128 bytes"));
    }
    for (unsigned char c : id) {
      if (c < 0x21 || c > 0x7E) {
        return SendReply(
            conn, ErrorReply(400, "INVALID_ARGUMENT", "Last-Event-ID: not a token of this stream"));
      }
    }
    request.from_token = std::string(id);
  }
  if (request.from_token.size() > kMaxResumeToken) {
    return SendReply(conn, ErrorReply(400, "INVALID_ARGUMENT", "fromToken: longer than 128 bytes"));
  }
  return watches_.Serve(conn, request);
}

int Gateway::HandleStatic(mg_connection* conn, const std::string& path, bool head) {
  StatusOr<StaticFile> file = files_.Resolve(path);
  if (!file.ok()) {
    bool bad = file.status().code() == Code::kInvalidArgument;
    return SendReply(conn, TextReply(bad ? 400 : 404, file.status().message() + "\n"), head);
  }
  std::ifstream in(file->path, std::ios::binary);
  std::stringstream content;
  if (in) content << in.rdbuf();
  if (!in) return SendReply(conn, TextReply(404, "no such file\n"), head);
  return SendReply(conn, {200, file->content_type, content.str(), ""}, head,
                   file->cache_control.c_str());
}

}  // namespace whistle::console
