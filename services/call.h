// Call: one unary gRPC call in flight. Copyable handle that finishes the
// reactor exactly once and records the metrics; safe to finish from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "core/status.h"
#include "services/identity.h"
#include "services/rate_limit.h"
#include "services/rpc_log.h"
#include "services/rpc_probe.h"

namespace whistle::services {

// The one mapping from our Status to grpc::Status (same canonical codes).
inline grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

class Call {
 public:
  Call(grpc::CallbackServerContext* context, RpcProbe* probe, const char* method)
      : reactor_(context->DefaultReactor()),
        probe_(probe),
        method_(method),
        started_(std::chrono::steady_clock::now()) {}

  // For the log line of this call (services/rpc_log.h); set them before the
  // handle is copied into a callback.
  void set_user(std::string user) { user_ = std::move(user); }
  void set_case_id(std::string case_id) { case_id_ = std::move(case_id); }

  grpc::ServerUnaryReactor* Finish(const Status& status) const {
    grpc::Status out = ToGrpc(status);
    probe_->Observe(method_, out.error_code(), started_);
    LogRpc({method_, &out, user_, case_id_, started_});
    reactor_->Finish(out);
    return reactor_;
  }
  grpc::ServerUnaryReactor* reactor() const { return reactor_; }

 private:
  grpc::ServerUnaryReactor* reactor_;
  RpcProbe* probe_;
  const char* method_;
  std::chrono::steady_clock::time_point started_;
  std::string user_;
  std::string case_id_;
};

// Names the caller in the call's log line and applies its rate limit
// (`limiter` null: no limit).
inline Status Admit(RateLimiter* limiter, Call& call, const std::string& user) {
  call.set_user(user);
  if (limiter == nullptr) return Status::Ok();
  return limiter->Admit(user);
}

// Every case-work handler's first step: the caller from its verified token,
// then Admit.
inline StatusOr<core::CheckedCaller> AdmitCaller(const Authenticator& auth, RateLimiter* limiter,
                                                 Call& call, const grpc::ServerContextBase& context,
                                                 const core::Context& core) {
  auto caller = CallerFrom(auth, context, core);
  if (!caller.ok()) return caller;
  if (Status s = Admit(limiter, call, caller->get().user()); !s.ok()) return s;
  return caller;
}

}  // namespace whistle::services
