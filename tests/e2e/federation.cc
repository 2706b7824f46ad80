#include "tests/e2e/federation.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/topology.h"

namespace whistle::testing {

namespace {

const core::Topology& Shizuishan() {
  static const std::shared_ptr<const core::Topology> topology = [] {
    auto built = core::Topology::Build(core::ShizuishanTopology());
    if (!built.ok()) throw std::logic_error("embedded topology: " + built.status().message());
    return *built;
  }();
  return *topology;
}

std::string Join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

FederationNode Node(const std::string& hosted, std::vector<std::string> children,
                    std::string parent) {
  return {hosted, LocalFederation::NodeIdFor(hosted), hosted, std::move(children),
          std::move(parent)};
}

std::vector<std::string> ChildrenAt(const core::Topology& t, std::string_view id, v1::Level level) {
  std::vector<std::string> out;
  for (const auto* j : t.Children(id)) {
    if (j->level() == level) out.push_back(j->id());
  }
  return out;
}

}  // namespace

std::string LocalFederation::NodeIdFor(std::string_view hosted) {
  std::string id;
  for (char c : hosted) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) id += c;
  }
  return id;
}

std::vector<FederationNode> LocalFederation::CountySplit() {
  const auto& t = Shizuishan();
  const std::string root = t.root().id();
  auto counties = ChildrenAt(t, root, v1::LEVEL_COUNTY);
  std::vector<FederationNode> plan = {Node(root, counties, "")};
  for (const auto& c : counties) plan.push_back(Node(c, {}, root));
  return plan;
}

std::vector<FederationNode> LocalFederation::TownshipSplit() {
  const auto& t = Shizuishan();
  const std::string root = t.root().id();
  auto counties = ChildrenAt(t, root, v1::LEVEL_COUNTY);
  std::vector<FederationNode> plan = {Node(root, counties, "")};
  for (const auto& c : counties)
    plan.push_back(Node(c, ChildrenAt(t, c, v1::LEVEL_TOWNSHIP), root));
  for (const auto& c : counties) {
    for (const auto& s : ChildrenAt(t, c, v1::LEVEL_TOWNSHIP)) plan.push_back(Node(s, {}, c));
  }
  return plan;
}

std::vector<FederationNode> LocalFederation::ThreeLevel(std::string_view township) {
  const auto& t = Shizuishan();
  const auto* j = t.Find(township);
  if (j == nullptr || j->level() != v1::LEVEL_TOWNSHIP) {
    throw std::invalid_argument("ThreeLevel: \"" + std::string(township) +
                                "\" is not a township of the Shizuishan tree");
  }
  const std::string county = t.AncestorAt(township, v1::LEVEL_COUNTY)->id();
  const std::string root = t.root().id();
  return {Node(root, {county}, ""), Node(county, {j->id()}, root), Node(j->id(), {}, county)};
}

LocalFederation::LocalFederation(std::vector<FederationNode> plan, FederationOptions options)
    : plan_(std::move(plan)), nodes_(plan_.size()) {
  // Depth of each node (parents must be in the plan; no cycles), then parents first.
  std::vector<int> depth(plan_.size(), -1);
  for (size_t i = 0; i < plan_.size(); ++i) {
    size_t at = i;
    int d = 0;
    while (!plan_[at].parent.empty()) {
      at = IndexOf(plan_[at].parent);
      if (++d > static_cast<int>(plan_.size())) {
        throw std::invalid_argument("LocalFederation: parent cycle through " + plan_[i].name);
      }
    }
    depth[i] = d;
    for (size_t k = 0; k < i; ++k) {
      if (plan_[k].name == plan_[i].name) {
        throw std::invalid_argument("LocalFederation: duplicate node name " + plan_[i].name);
      }
    }
  }
  for (const auto& name : options.proxied) {
    if (plan_[IndexOf(name)].parent.empty()) {
      throw std::invalid_argument("LocalFederation: " + name + " has no parent link to proxy");
    }
  }
  for (size_t i = 0; i < plan_.size(); ++i) start_order_.push_back(i);
  std::stable_sort(start_order_.begin(), start_order_.end(),
                   [&](size_t a, size_t b) { return depth[a] < depth[b]; });

  for (size_t i : start_order_) {
    const FederationNode& n = plan_[i];
    std::vector<std::string> flags = {
        "--node-id",           n.node_id, "--hosted-jurisdiction", n.hosted,
        "--link-keepalive-ms", "200",     "--timer-interval-ms",   "200"};
    if (!n.children.empty()) {
      flags.insert(flags.end(), {"--child-jurisdictions", Join(n.children, ',')});
    }
    if (!n.parent.empty()) {
      const auto& parent = nodes_[IndexOf(n.parent)].process;
      std::string parent_address = parent->address();
      if (options.proxied.count(n.name) != 0) {
        nodes_[i].proxy = std::make_unique<TcpProxy>(parent_address);
        parent_address = nodes_[i].proxy->address();
      }
      flags.insert(flags.end(), {"--parent-address", parent_address});
    }
    flags.insert(flags.end(), options.extra_flags.begin(), options.extra_flags.end());
    if (auto it = options.node_flags.find(n.name); it != options.node_flags.end()) {
      flags.insert(flags.end(), it->second.begin(), it->second.end());
    }
    nodes_[i].process = std::make_unique<WhistledProcess>(dir_.path() + "/" + n.name, flags);
    if (!nodes_[i].process->running()) break;  // its children could not link: ok() is false
  }
}

LocalFederation::~LocalFederation() {
  // Children first, so no node spends its last moments redialling a dead parent.
  for (auto it = start_order_.rbegin(); it != start_order_.rend(); ++it) {
    if (nodes_[*it].process) nodes_[*it].process->Kill();
  }
  for (auto& n : nodes_) n.proxy.reset();
}

bool LocalFederation::ok() const {
  return std::all_of(nodes_.begin(), nodes_.end(),
                     [](const Running& n) { return n.process && n.process->running(); });
}

size_t LocalFederation::IndexOf(const std::string& name) const {
  for (size_t i = 0; i < plan_.size(); ++i) {
    if (plan_[i].name == name) return i;
  }
  throw std::invalid_argument("LocalFederation: no node named \"" + name + "\"");
}

WhistledProcess& LocalFederation::node(const std::string& name) {
  auto& process = nodes_[IndexOf(name)].process;
  if (!process) throw std::invalid_argument("LocalFederation: node " + name + " was never started");
  return *process;
}

TcpProxy* LocalFederation::proxy(const std::string& child_name) {
  return nodes_[IndexOf(child_name)].proxy.get();
}

std::string LocalFederation::NodeFor(const std::vector<FederationNode>& plan,
                                     std::string_view jurisdiction) {
  const auto& t = Shizuishan();
  if (t.Find(jurisdiction) == nullptr) return "";
  std::string best;
  size_t best_depth = 0;
  for (const auto& n : plan) {
    if (t.Find(n.hosted) == nullptr || !t.IsWithin(jurisdiction, n.hosted)) continue;
    size_t d = t.Path(n.hosted).size();
    if (best.empty() || d > best_depth) {
      best = n.name;
      best_depth = d;
    }
  }
  return best;
}

WhistledProcess& LocalFederation::NodeHosting(std::string_view jurisdiction) {
  std::string name = NodeFor(jurisdiction);
  if (name.empty()) {
    throw std::invalid_argument("LocalFederation: no node hosts \"" + std::string(jurisdiction) +
                                "\"");
  }
  return node(name);
}

int LocalFederation::Kill(const std::string& name) { return node(name).Kill(); }

bool LocalFederation::Restart(const std::string& name) { return node(name).Restart(); }

std::string LocalFederation::Describe(int log_lines) const {
  std::ostringstream out;
  for (size_t i : start_order_) {
    const auto& n = plan_[i];
    const auto& r = nodes_[i];
    out << "== node " << n.name << " (id " << n.node_id << ", hosts " << n.hosted;
    if (!n.parent.empty()) out << ", parent " << n.parent;
    if (r.proxy) out << " via proxy " << r.proxy->address();
    if (!r.process) {
      out << "): not started\n";
      continue;
    }
    out << ") " << r.process->address() << (r.process->running() ? " running" : " NOT running")
        << "\n"
        << r.process->LogTail(log_lines);
  }
  return out.str();
}

}  // namespace whistle::testing
