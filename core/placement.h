// Placement: where each jurisdiction lives in a federation. A node hosts its
// root and everything below it that no child node hosts; anything outside
// its root lives above it (reached through the parent link). Pure: built
// from the topology and the node's flags, immutable afterwards.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/topology.h"
#include "whistle/v1/case.pb.h"

namespace whistle::core {

// Peer name of the parent link (child links are named by the child's root).
inline constexpr std::string_view kParentPeer = "parent";

class Placement {
 public:
  // Child roots must be known, strictly below `hosted_root`, distinct and not
  // nested in one another; the error names the flag and the entry.
  static StatusOr<Placement> Build(const Topology& topology, std::string hosted_root,
                                   std::vector<std::string> child_roots, bool has_parent);

  const std::string& hosted_root() const { return hosted_root_; }
  const std::vector<std::string>& child_roots() const { return child_roots_; }
  bool has_parent() const { return has_parent_; }
  bool federated() const { return has_parent_ || !child_roots_.empty(); }

  bool Hosts(std::string_view jurisdiction_id) const;
  // The jurisdictions hosted here that count a unit of `jurisdiction_id`:
  // itself if hosted here, then its hosted ancestors, root first.
  std::vector<std::string> HostedPath(std::string_view jurisdiction_id) const;
  // "" when hosted here, kParentPeer when above (or outside) this node's
  // root, else the child root whose subtree holds it.
  std::string NextHop(std::string_view jurisdiction_id) const;
  // The links a case's copy must travel to from here: one per direction in
  // which a jurisdiction that touched it lives, and always up (every
  // ancestor node keeps a copy of each case below it, so its watch, Get and
  // History cover its whole subtree), except `from` (where the copy came
  // from; "" for none).
  std::vector<std::string> SyncPeers(const v1::Case& c, std::string_view from) const;

 private:
  const Topology* topology_ = nullptr;
  std::string hosted_root_;
  std::vector<std::string> child_roots_;
  bool has_parent_ = false;
  // By topology index: kAbove (the parent's side), kHere, or k >= 0 for
  // child_roots_[k]. One lookup answers Hosts and NextHop.
  static constexpr int kAbove = -2;
  static constexpr int kHere = -1;
  std::vector<int> where_;
  int WhereOf(std::string_view id) const;
};

// A jurisdiction as seen by placement: a department counts as the
// jurisdiction it hangs off; "" when the id is neither.
std::string JurisdictionOf(const Topology& topology, std::string_view id);

}  // namespace whistle::core
