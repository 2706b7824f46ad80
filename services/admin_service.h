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
  AdminService(actors::Node& node, RpcProbe& probe, const Authenticator& auth)
      : node_(node), probe_(probe), auth_(auth) {}

  grpc::ServerUnaryReactor* Backup(grpc::CallbackServerContext* context,
                                   const v1::BackupRequest* request,
                                   v1::BackupResponse* response) override;

 private:
  actors::Node& node_;
  RpcProbe& probe_;
  const Authenticator& auth_;
};

// The request's dir checked at the door: INVALID_ARGUMENT naming "dir".
Status CheckBackupDir(const std::string& dir);

}  // namespace whistle::services
