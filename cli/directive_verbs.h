// whistlectl directive VERB: the DirectiveService verbs. Kept apart from
// main.cc; main.cc hands over the channel, the identity (prepare) and its
// printer so errors, hints and --json behave as for every other verb.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace whistle::cli {

struct VerbIo {
  std::shared_ptr<grpc::Channel> channel;
  // Sets the deadline and the caller's identity on a call.
  std::function<void(grpc::ClientContext&)> prepare;
  // Prints the error (returns 1) or the response: JSON, or `table` (returns 0).
  std::function<int(const grpc::Status&, const google::protobuf::Message&,
                    const std::function<void()>& table)>
      print;
  // Prints "whistlectl: why" and the usage; returns 2.
  std::function<int(const std::string& why)> usage;
};

// `args` are what follows "directive": a verb and its arguments.
int DirectiveVerb(const VerbIo& io, std::vector<std::string> args);

}  // namespace whistle::cli
