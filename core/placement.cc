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
  }
  p.where_.assign(topology.jurisdiction_count(), kAbove);
  for (const v1::Jurisdiction* j : topology.Subtree(p.hosted_root_)) {
    p.where_[topology.IndexOf(j->id())] = kHere;
  }
  for (size_t k = 0; k < p.child_roots_.size(); ++k) {
    for (const v1::Jurisdiction* j : topology.Subtree(p.child_roots_[k])) {
      p.where_[topology.IndexOf(j->id())] = static_cast<int>(k);
    }
  }
  return p;
}

int Placement::WhereOf(std::string_view id) const {
  const int i = topology_->IndexOf(id);
  return i < 0 ? kAbove : where_[i];
}

bool Placement::Hosts(std::string_view id) const { return WhereOf(id) == kHere; }

std::string Placement::NextHop(std::string_view id) const {
  const int where = WhereOf(id);
  if (where == kAbove) return std::string(kParentPeer);
  return where == kHere ? std::string() : child_roots_[where];
}

std::vector<std::string> Placement::HostedPath(std::string_view id) const {
  std::vector<std::string> out;
  int i = topology_->IndexOf(id);
  if (i < 0) return out;
  if (where_[i] == kHere) out.push_back(std::string(id));
  const size_t self = out.size();
  for (i = topology_->ParentIndex(i); i >= 0; i = topology_->ParentIndex(i)) {
    if (where_[i] == kHere) out.push_back(topology_->At(i).id());
  }
  std::reverse(out.begin() + static_cast<std::ptrdiff_t>(self), out.end());  // root first
  return out;
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
