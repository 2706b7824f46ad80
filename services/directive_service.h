// DirectiveService: the public directive API. Thin: establishes the caller,
// validates every field (core::CheckIssue for drafts), hands the change to
// the node's Directives and maps errors. Handlers never block: writes finish
// from the commit thread once durable; reads come from the store.
#pragma once

#include "actors/node.h"
#include "services/identity.h"
#include "services/rate_limit.h"
#include "services/rpc_probe.h"
#include "whistle/v1/directive_service.grpc.pb.h"

namespace whistle::services {

class DirectiveService final : public v1::DirectiveService::CallbackService {
 public:
  // `limiter` (may be null: no limit) applies per-caller rate limits.
  DirectiveService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
                   RateLimiter* limiter = nullptr)
      : node_(node), probe_(probe), auth_(auth), limiter_(limiter) {}

  grpc::ServerUnaryReactor* Issue(grpc::CallbackServerContext* context,
                                  const v1::IssueDirectiveRequest* request,
                                  v1::IssueDirectiveResponse* response) override;
  grpc::ServerUnaryReactor* Amend(grpc::CallbackServerContext* context,
                                  const v1::AmendDirectiveRequest* request,
                                  v1::Directive* response) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* context,
                                   const v1::CancelDirectiveRequest* request,
                                   v1::Directive* response) override;
  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* context,
                                 const v1::SignDirectiveRequest* request,
                                 v1::ReceiptView* response) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context,
                                     const v1::CompleteDirectiveRequest* request,
                                     v1::ReceiptView* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::GetDirectiveRequest* request,
                                v1::DirectiveView* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListDirectivesRequest* request,
                                 v1::ListDirectivesResponse* response) override;
  grpc::ServerUnaryReactor* Progress(grpc::CallbackServerContext* context,
                                     const v1::GetProgressRequest* request,
                                     v1::GetProgressResponse* response) override;
  grpc::ServerUnaryReactor* ListTargets(grpc::CallbackServerContext* context,
                                        const v1::ListTargetsRequest* request,
                                        v1::ListTargetsResponse* response) override;
  grpc::ServerUnaryReactor* Inbox(grpc::CallbackServerContext* context,
                                  const v1::InboxRequest* request,
                                  v1::InboxResponse* response) override;

 private:
  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  RateLimiter* limiter_;
};

}  // namespace whistle::services
