// LinkHub: what the actors need from node links, without gRPC. Implemented
// by link/ (LinkManager); null in a node that has no links.
#pragma once

#include <string>

#include "actors/messages.h"
#include "whistle/v1/directive_service.pb.h"
#include "whistle/v1/link.pb.h"

namespace whistle::actors {

// A request for what another node holds (a directive receipt to apply, a
// page of receipts to read): `request` has the caller, hops and one of
// `receipt` / `targets` set; `reply` gets the peer's whole answer when OK.
struct LinkCall {
  v1::ForwardRequest request;
  std::function<void(StatusOr<v1::ForwardAnswer>)> reply;
  // When set, runs instead of `reply` if the link is down before anything
  // was sent (the caller may then act locally); once sent, only `reply`
  // runs: UNAVAILABLE when the outcome is unknown (timeout, link lost).
  std::function<void()> unsent;
};

class LinkHub {
 public:
  virtual ~LinkHub() = default;
  // Sends a command for a case owned by `owner` (hosted elsewhere) over link
  // `peer` (kParentPeer or a child root); answers `req.reply` with the owner's
  // answer, or UNAVAILABLE when the link is down.
  virtual void Forward(const std::string& peer, const std::string& owner, CaseRequest req) = 0;
  // Sends `call` over link `peer` towards the node holding what it asks
  // for; answers `call.reply` with that node's answer, or UNAVAILABLE.
  virtual void Call(const std::string& peer, LinkCall call) = 0;
  // The node id link `peer` last said it has ("" before its first hello).
  virtual std::string PeerNodeId(const std::string& peer) const = 0;
};

}  // namespace whistle::actors
