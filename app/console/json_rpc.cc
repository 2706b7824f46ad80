#include "app/console/json_rpc.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "core/text.h"
#include "whistle/v1/assessment.grpc.pb.h"
#include "whistle/v1/directive_service.grpc.pb.h"
#include "whistle/v1/inbox.grpc.pb.h"
#include "whistle/v1/link.grpc.pb.h"
#include "whistle/v1/service.grpc.pb.h"

namespace whistle::console {

namespace pb = google::protobuf;

namespace {

constexpr size_t kMaxErrorMessage = 1024;

// Which methods of which services the page may call. NodeService only for
// GetLinks; LinkService (node links) and AdminService (operators) never.
struct Allowed {
  const pb::ServiceDescriptor* service;
  const char* only_method;  // nullptr: every unary method
};

std::vector<Allowed> AllowList() {
  // Naming a message of each file links its descriptors in and finds the service.
  auto find = [](const pb::Descriptor* any_message, const char* name) {
    return any_message->file()->FindServiceByName(name);
  };
  return {
      {find(v1::CountCasesRequest::descriptor(), "CaseService"), nullptr},
      {find(v1::CountCasesRequest::descriptor(), "TopologyService"), nullptr},
      {find(v1::IssueDirectiveRequest::descriptor(), "DirectiveService"), nullptr},
      {find(v1::CaseInboxRequest::descriptor(), "InboxService"), nullptr},
      {find(v1::AssessRequest::descriptor(), "AssessmentService"), nullptr},
      {find(v1::GetLinksRequest::descriptor(), "NodeService"), "GetLinks"},
  };
}

const std::vector<Allowed>& Allowlist() {
  static const std::vector<Allowed> list = AllowList();
  return list;
}

}  // namespace

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch >= 0x80) {
      // Copy a whole valid UTF-8 sequence, else one replacement character.
      size_t len = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
      if (len > 1 && i + len <= text.size() && core::IsValidUtf8(text.substr(i, len))) {
        out.append(text.substr(i, len));
        i += len;
      } else {
        out += "\xEF\xBF\xBD";
        ++i;
      }
      continue;
    }
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (ch < 0x20 || ch == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
    ++i;
  }
  return out;
}

std::string ErrorJson(std::string_view code, std::string_view message) {
  if (message.size() > kMaxErrorMessage) message = message.substr(0, kMaxErrorMessage);
  return "{\"code\":\"" + JsonEscape(code) + "\",\"message\":\"" + JsonEscape(message) + "\"}";
}

HttpReply ErrorReply(int http_status, std::string_view code, std::string_view message) {
  return {http_status, "application/json", ErrorJson(code, message), ""};
}

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

std::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

HttpReply FromStatus(const grpc::Status& status) {
  std::string message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = "the node is unreachable: " + message;
  }
  return ErrorReply(HttpStatusFor(status.error_code()), CodeName(status.error_code()), message);
}

RpcBridge::RpcBridge(std::shared_ptr<grpc::Channel> channel, int timeout_ms)
    : channel_(std::move(channel)), timeout_ms_(timeout_ms) {}

const pb::MethodDescriptor* FindAllowedMethod(std::string_view service, std::string_view method) {
  for (const Allowed& a : Allowlist()) {
    if (a.service == nullptr || a.service->name() != service) continue;
    if (a.only_method != nullptr && method != a.only_method) return nullptr;
    const pb::MethodDescriptor* m = a.service->FindMethodByName(std::string(method));
    if (m == nullptr || m->client_streaming() || m->server_streaming()) return nullptr;
    return m;
  }
  return nullptr;
}

std::vector<const pb::MethodDescriptor*> AllowedMethods() {
  std::vector<const pb::MethodDescriptor*> out;
  for (const Allowed& a : Allowlist()) {
    if (a.service == nullptr) continue;
    for (int i = 0; i < a.service->method_count(); ++i) {
      const pb::MethodDescriptor* m = a.service->method(i);
      if (FindAllowedMethod(a.service->name(), m->name()) == m) out.push_back(m);
    }
  }
  return out;
}

ParsedRequest ParseRequest(const pb::MethodDescriptor* method, std::string_view json) {
  ParsedRequest out;
  const pb::Message* prototype =
      pb::MessageFactory::generated_factory()->GetPrototype(method->input_type());
  std::unique_ptr<pb::Message> request(prototype->New());
  if (!json.empty()) {
    if (!core::IsValidUtf8(json)) {
      out.error = ErrorReply(400, "INVALID_ARGUMENT", "request body: not valid UTF-8");
      return out;
    }
    pb::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    options.case_insensitive_enum_parsing = false;
    auto parsed = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()),
                                                request.get(), options);
    if (!parsed.ok()) {
      std::string why(parsed.message());
      why = why.substr(0, why.find('\n'));  // the parser adds a caret line
      out.error = ErrorReply(400, "INVALID_ARGUMENT",
                             "request body (" + method->input_type()->name() + "): " + why);
      return out;
    }
  }
  out.message = std::move(request);
  return out;
}

const pb::MethodDescriptor* RpcBridge::Find(std::string_view service,
                                            std::string_view method) const {
  return FindAllowedMethod(service, method);
}

std::unique_ptr<pb::Message> RpcBridge::NewOutput(const pb::MethodDescriptor* method) const {
  const pb::Message* proto =
      pb::MessageFactory::generated_factory()->GetPrototype(method->output_type());
  return std::unique_ptr<pb::Message>(proto->New());
}

HttpReply RpcBridge::CallJson(const pb::MethodDescriptor* method, std::string_view json,
                              const std::string& token) const {
  ParsedRequest parsed = ParseRequest(method, json);
  if (parsed.message == nullptr) return parsed.error;
  const std::unique_ptr<pb::Message>& request = parsed.message;
  std::unique_ptr<pb::Message> response = NewOutput(method);
  grpc::Status status = Call(method, *request, response.get(), token);
  if (!status.ok()) return FromStatus(status);
  pb::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  print.preserve_proto_field_names = false;
  std::string out;
  auto printed = pb::util::MessageToJsonString(*response, &out, print);
  if (!printed.ok()) {
    return ErrorReply(500, "INTERNAL", "the node's answer: " + std::string(printed.message()));
  }
  return {200, "application/json", std::move(out), ""};
}

grpc::Status RpcBridge::Call(const pb::MethodDescriptor* method, const pb::Message& request,
                             pb::Message* response, const std::string& token) const {
  std::string path = "/" + method->service()->full_name() + "/" + method->name();
  std::string bytes;
  if (!request.SerializeToString(&bytes)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "cannot serialize the request");
  }
  std::string answer;
  grpc::Status status = RawCall(path, bytes, &answer, token, timeout_ms_);
  if (!status.ok()) return status;
  if (!response->ParseFromString(answer)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "the node's answer does not parse");
  }
  return status;
}

grpc::Status RpcBridge::RawCall(const std::string& path, const std::string& request_bytes,
                                std::string* response_bytes, const std::string& token,
                                int timeout_ms) const {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(channel_);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (!status.ok()) return status;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the node's answer");
  }
  response_bytes->clear();
  for (const auto& s : slices) {
    response_bytes->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

bool RpcBridge::NodeServing(int timeout_ms) const {
  // grpc.health.v1.HealthCheckRequest{} is empty; the answer's field 1 is the
  // status (1 SERVING).
  std::string answer;
  grpc::Status status = RawCall("/grpc.health.v1.Health/Check", "", &answer, "", timeout_ms);
  return status.ok() && answer.size() == 2 && answer[0] == 0x08 && answer[1] == 1;
}

}  // namespace whistle::console
