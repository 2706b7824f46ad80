// InboxService: the cases addressed to the caller, read from this node's
// store. A department: the cases it is summoned or dispatched to, pending
// first by report-in deadline. Anyone: the cases it reported. Staff and
// leaders: the supervision notices (督办) to their jurisdiction or one below
// it. Thin like CaseService; runs on gRPC threads.
#pragma once

#include "actors/node.h"
#include "services/identity.h"
#include "services/rate_limit.h"
#include "services/rpc_probe.h"
#include "whistle/v1/inbox.grpc.pb.h"

namespace whistle::services {

class InboxService final : public v1::InboxService::CallbackService {
 public:
  // `limiter` (may be null: no limit) applies per-caller rate limits.
  InboxService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
               RateLimiter* limiter = nullptr)
      : node_(node), probe_(probe), auth_(auth), limiter_(limiter) {}

  grpc::ServerUnaryReactor* DepartmentCases(grpc::CallbackServerContext* context,
                                            const v1::CaseInboxRequest* request,
                                            v1::CaseInboxResponse* response) override;
  grpc::ServerUnaryReactor* ReportedCases(grpc::CallbackServerContext* context,
                                          const v1::CaseInboxRequest* request,
                                          v1::CaseInboxResponse* response) override;
  grpc::ServerUnaryReactor* SupervisionNotices(grpc::CallbackServerContext* context,
                                               const v1::NoticeInboxRequest* request,
                                               v1::NoticeInboxResponse* response) override;

 private:
  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  RateLimiter* limiter_;
};

}  // namespace whistle::services
