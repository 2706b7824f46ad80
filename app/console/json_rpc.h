// RpcBridge: POST /api/rpc/<Service>/<Method> as one unary gRPC call to the node.
// The request JSON (proto3 JSON mapping, unknown fields refused) is parsed into the
// method's input message from the generated descriptors, sent with the caller's
// bearer token as the only metadata and a deadline, and the answer printed back as
// JSON. Only the unary methods of the allowed services are reachable (no
// LinkService, no AdminService, no streaming). Thread-safe: civetweb's worker
// threads share one bridge (and its channel).
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whistle::console {

// One HTTP answer, ready to send.
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // the Allow header of a 405
};

// The JSON error body {"code":"...","message":"..."} (message escaped, at most 1 KiB).
std::string ErrorJson(std::string_view code, std::string_view message);
HttpReply ErrorReply(int http_status, std::string_view code, std::string_view message);
// The contract's HTTP status for a gRPC code (UNAUTHENTICATED 401, PERMISSION_DENIED
// 403, ... UNAVAILABLE 503, others 500) and the code's canonical name.
int HttpStatusFor(grpc::StatusCode code);
std::string_view CodeName(grpc::StatusCode code);
// A failed call as an HTTP reply.
HttpReply FromStatus(const grpc::Status& status);
// JSON string escaping (control characters as \u00XX; invalid UTF-8 bytes as U+FFFD).
std::string JsonEscape(std::string_view text);

// The request body as `method`'s input message: valid UTF-8 proto3 JSON, no unknown
// fields, every value of its field's type; "" is the empty message. Else
// INVALID_ARGUMENT (a 400 reply) naming the message and the problem.
struct ParsedRequest {
  std::unique_ptr<google::protobuf::Message> message;  // null on error
  HttpReply error;
};
ParsedRequest ParseRequest(const google::protobuf::MethodDescriptor* method, std::string_view json);
// The allowed unary method <service>/<method>, or nullptr (RpcBridge::Find).
const google::protobuf::MethodDescriptor* FindAllowedMethod(std::string_view service,
                                                            std::string_view method);
// Every allowed method, for tests and fuzzing.
std::vector<const google::protobuf::MethodDescriptor*> AllowedMethods();

class RpcBridge {
 public:
  RpcBridge(std::shared_ptr<grpc::Channel> channel, int timeout_ms);

  // The allowed unary method <service>/<method> (short service name, e.g.
  // "CaseService"), or nullptr.
  const google::protobuf::MethodDescriptor* Find(std::string_view service,
                                                 std::string_view method) const;
  // Parses `json` into the method's input, calls, and prints the answer. An empty
  // body is the empty message ({}).
  HttpReply CallJson(const google::protobuf::MethodDescriptor* method, std::string_view json,
                     const std::string& token) const;
  // One unary call with messages of the method's types; `token` "" sends none.
  grpc::Status Call(const google::protobuf::MethodDescriptor* method,
                    const google::protobuf::Message& request, google::protobuf::Message* response,
                    const std::string& token) const;
  // grpc.health.v1.Health/Check of the node (overall): true when SERVING.
  bool NodeServing(int timeout_ms) const;
  // A fresh response message for `method`.
  std::unique_ptr<google::protobuf::Message> NewOutput(
      const google::protobuf::MethodDescriptor* method) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  int timeout_ms() const { return timeout_ms_; }

 private:
  grpc::Status RawCall(const std::string& path, const std::string& request_bytes,
                       std::string* response_bytes, const std::string& token, int timeout_ms) const;

  std::shared_ptr<grpc::Channel> channel_;
  int timeout_ms_;
};

}  // namespace whistle::console
