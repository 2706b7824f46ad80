#include "core/placement.h"

#include <algorithm>

namespace whistle::core {

StatusOr<Placement> Placement::Build(const Topology& topology, std::string hosted_root,
                                     std::vector<std::string> child_roots, bool has_parent) {
  Placement p;
  p.topology_ = &topology;
  p.hosted_root_ = hosted_root.empty() ? topology.root().id() : std::move(hosted_root);
  p.has_parent_ = has_parent;
  if (topology.Find(p.hosted_root_) == nullptr) {
    return Status::InvalidArgument("--hosted-jurisdiction: unknown jurisdiction \"" +
                                   p.hosted_root_ + "\"");
  }
  if (has_parent && p.hosted_root_ == topology.root().id()) {
    return Status::InvalidArgument("--parent-address: this node hosts the root \"" +
                                   p.hosted_root_ + "\", which has no parent");
  }
  for (const auto& child : child_roots) {
    const std::string flag = "--child-jurisdictions: \"" + child + "\" ";
    if (topology.Find(child) == nullptr) return Status::InvalidArgument(flag + "is unknown");
    if (child == p.hosted_root_ || !topology.IsWithin(child, p.hosted_root_)) {
      return Status::InvalidArgument(flag + "is not below the hosted root \"" + p.hosted_root_ +
                                     "\"");
    }
    for (const auto& other : p.child_roots_) {
      if (topology.IsWithin(child, other) || topology.IsWithin(other, child)) {
        return Status::InvalidArgument(flag + "overlaps \"" + other + "\"");
      }
    }
    p.child_roots_.push_back(child);
    for (const v1::Jurisdiction* j : topology.Subtree(child)) p.below_[j->id()] = child;
  }
  return p;
}

bool Placement::Hosts(std::string_view id) const {
  return topology_->IsWithin(id, hosted_root_) && below_.find(std::string(id)) == below_.end();
}

std::string Placement::NextHop(std::string_view id) const {
  if (!topology_->IsWithin(id, hosted_root_)) return std::string(kParentPeer);
  auto it = below_.find(std::string(id));
  return it == below_.end() ? std::string() : it->second;
}

std::vector<std::string> Placement::SyncPeers(const v1::Case& c, std::string_view from) const {
  std::vector<std::string> peers;
  auto add = [&](std::string_view jurisdiction) {
    if (jurisdiction.empty() || topology_->Find(jurisdiction) == nullptr) return;
    std::string hop = NextHop(jurisdiction);
    if (hop.empty() || hop == from) return;
    if (std::find(peers.begin(), peers.end(), hop) == peers.end()) peers.push_back(std::move(hop));
  };
  add(c.place().grid_id());
  add(c.owner_id());
  add(c.routed_to_id());
  for (const auto& s : c.summons()) add(JurisdictionOf(*topology_, s.department_id()));
  for (const auto& t : c.touched_ids()) add(t);
  add(topology_->root().id());  // up: every ancestor node sees its subtree
  return peers;
}

std::string JurisdictionOf(const Topology& topology, std::string_view id) {
  if (topology.Find(id) != nullptr) return std::string(id);
  const v1::Department* d = topology.FindDepartment(id);
  return d == nullptr ? std::string() : d->jurisdiction_id();
}

}  // namespace whistle::core
