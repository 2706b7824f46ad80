// The gRPC faces of node links: LinkService (a parent accepts its children's
// streams) and NodeService (operators read the links' state).
#pragma once

#include "link/link_manager.h"
#include "whistle/v1/link.grpc.pb.h"

namespace whistle::link {

class LinkServiceImpl final : public v1::LinkService::Service {
 public:
  explicit LinkServiceImpl(LinkManager& manager) : manager_(manager) {}
  grpc::Status Connect(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<v1::LinkFrame, v1::LinkFrame>* stream) override;

 private:
  LinkManager& manager_;
};

class NodeServiceImpl final : public v1::NodeService::Service {
 public:
  explicit NodeServiceImpl(LinkManager& manager) : manager_(manager) {}
  grpc::Status GetLinks(grpc::ServerContext* context, const v1::GetLinksRequest* request,
                        v1::GetLinksResponse* response) override;

 private:
  LinkManager& manager_;
};

}  // namespace whistle::link
