// CaseService: the public case API. Thin: establishes the caller, validates
// every field, hands the command to the Node and maps errors. Handlers never
// block: writes finish from the commit thread once durable.
#pragma once

#include "actors/node.h"
#include "services/identity.h"
#include "services/rate_limit.h"
#include "services/rpc_probe.h"
#include "whistle/v1/service.grpc.pb.h"

namespace whistle::services {

class CaseService final : public v1::CaseService::CallbackService {
 public:
  // `limiter` (may be null: no limit) applies per-caller rate limits.
  CaseService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
              RateLimiter* limiter = nullptr)
      : node_(node), probe_(probe), auth_(auth), limiter_(limiter) {}

  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* context,
                                   const v1::ReportCaseRequest* request,
                                   v1::Case* response) override;
  grpc::ServerUnaryReactor* Act(grpc::CallbackServerContext* context,
                                const v1::CaseActionRequest* request, v1::Case* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::GetCaseRequest* request, v1::Case* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListCasesRequest* request,
                                 v1::ListCasesResponse* response) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* context,
                                    const v1::GetHistoryRequest* request,
                                    v1::GetHistoryResponse* response) override;
  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* context,
                                  const v1::CountCasesRequest* request,
                                  v1::CountCasesResponse* response) override;

 private:
  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  RateLimiter* limiter_;
};

class TopologyService final : public v1::TopologyService::CallbackService {
 public:
  TopologyService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
                  RateLimiter* limiter = nullptr)
      : node_(node), probe_(probe), auth_(auth), limiter_(limiter) {}

  grpc::ServerUnaryReactor* GetJurisdiction(grpc::CallbackServerContext* context,
                                            const v1::GetJurisdictionRequest* request,
                                            v1::JurisdictionView* response) override;

 private:
  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  RateLimiter* limiter_;
};

}  // namespace whistle::services
