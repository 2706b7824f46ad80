// LinkHub: what the actors need from node links, without gRPC. Implemented
// by link/ (LinkManager); null in a node that has no links.
#pragma once

#include <string>

#include "actors/messages.h"

namespace whistle::actors {

class LinkHub {
 public:
  virtual ~LinkHub() = default;
  // Sends a command for a case owned by `owner` (hosted elsewhere) over link
  // `peer` (kParentPeer or a child root); answers `req.reply` with the owner's
  // answer, or UNAVAILABLE when the link is down.
  virtual void Forward(const std::string& peer, const std::string& owner, CaseRequest req) = 0;
  // The node id link `peer` last said it has ("" before its first hello).
  virtual std::string PeerNodeId(const std::string& peer) const = 0;
};

}  // namespace whistle::actors
