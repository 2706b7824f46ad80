// AdminService: node operation for the admin role (backups). Thin: checks the
// caller and the request, then calls the Store. Runs on gRPC's callback
// threads; a backup blocks its thread while RocksDB writes the checkpoint.
#pragma once

#include "actors/node.h"
#include "services/identity.h"
#include "services/rpc_probe.h"
#include "whistle/v1/admin.grpc.pb.h"

namespace whistle::services {

class AdminService final : public v1::AdminService::CallbackService {
 public:
  // `test_clock`: the node's manual clock (--test-clock-start-ms), or null.
  AdminService(actors::Node& node, RpcProbe& probe, const Authenticator& auth,
               core::ManualClock* test_clock = nullptr)
      : node_(node), probe_(probe), auth_(auth), test_clock_(test_clock) {}

  grpc::ServerUnaryReactor* Backup(grpc::CallbackServerContext* context,
                                   const v1::BackupRequest* request,
                                   v1::BackupResponse* response) override;
  grpc::ServerUnaryReactor* SetClock(grpc::CallbackServerContext* context,
                                     const v1::SetClockRequest* request,
                                     v1::ClockResponse* response) override;
  grpc::ServerUnaryReactor* AdvanceClock(grpc::CallbackServerContext* context,
                                         const v1::AdvanceClockRequest* request,
                                         v1::ClockResponse* response) override;

 private:
  // The caller's admin check, then the clock move; one log line per move.
  grpc::ServerUnaryReactor* MoveClock(grpc::CallbackServerContext* context, const char* method,
                                      const std::function<StatusOr<int64_t>()>& move,
                                      v1::ClockResponse* response);

  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
  core::ManualClock* test_clock_;
};

// The request's dir checked at the door: INVALID_ARGUMENT naming "dir".
Status CheckBackupDir(const std::string& dir);

}  // namespace whistle::services
