// AssessmentService: the assessment figures of a jurisdiction (its subtree)
// or a department over a period, and rankings of a jurisdiction's children,
// read from the assessment rows of this node's store (its own rows plus what
// child nodes sent up). Thin like InboxService; runs on gRPC threads.
#pragma once

#include "actors/node.h"
#include "services/identity.h"
#include "services/rate_limit.h"
#include "services/rpc_probe.h"
#include "whistle/v1/assessment.grpc.pb.h"

namespace whistle::services {

class AssessmentService final : public v1::AssessmentService::CallbackService {
 public:
  // `limiter` (may be null: no limit) applies per-caller rate limits.
  AssessmentService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
                    RateLimiter* limiter = nullptr)
      : node_(node), probe_(probe), auth_(auth), limiter_(limiter) {}

  grpc::ServerUnaryReactor* Assess(grpc::CallbackServerContext* context,
                                   const v1::AssessRequest* request,
                                   v1::AssessResponse* response) override;
  grpc::ServerUnaryReactor* Rank(grpc::CallbackServerContext* context,
                                 const v1::RankRequest* request,
                                 v1::RankResponse* response) override;

 private:
  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  RateLimiter* limiter_;
};

}  // namespace whistle::services
