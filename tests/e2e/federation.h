// LocalFederation: one real whistled per jurisdiction subtree on 127.0.0.1, each child
// node dialing its parent, as app/federation.sh runs them by hand. Optionally a TcpProxy
// sits on a child's link to its parent, so a test can cut, heal or reset that cable.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/e2e/tcp_proxy.h"
#include "tests/e2e/whistled_process.h"

namespace whistle::testing {

// One node of a plan (the JSON of `app/federation.sh plan`).
struct FederationNode {
  std::string name;                   // unique in the plan; the plans below use the hosted root
  std::string node_id;                // --node-id: [a-z0-9], 1..16
  std::string hosted;                 // --hosted-jurisdiction
  std::vector<std::string> children;  // --child-jurisdictions: roots hosted by child nodes
  std::string parent;                 // name of the parent node; "" for the top node
};

struct FederationOptions {
  // Names of child nodes whose link to their parent goes through a TcpProxy.
  std::set<std::string> proxied;
  // Flags for every node, after the federation's own (a later flag wins).
  std::vector<std::string> extra_flags;
  // Flags for one node, after extra_flags.
  std::map<std::string, std::vector<std::string>> node_flags;
};

class LocalFederation {
 public:
  // Starts every node, parents before children, each on free ports with its own data
  // dir, with --node-id --hosted-jurisdiction --child-jurisdictions --parent-address
  // (the parent's address, or the proxy's in front of it) --link-keepalive-ms 200
  // --timer-interval-ms 200, then the extra flags. Waits until each answers health
  // SERVING before starting its children. ok() says whether all came up; Describe()
  // has the logs when not.
  explicit LocalFederation(std::vector<FederationNode> plan, FederationOptions options = {});
  // Stops every node (children first, SIGKILL) and proxy; removes the data.
  ~LocalFederation();
  LocalFederation(const LocalFederation&) = delete;
  LocalFederation& operator=(const LocalFederation&) = delete;

  bool ok() const;
  const std::vector<FederationNode>& plan() const { return plan_; }
  // Throws std::invalid_argument on an unknown name (gtest reports it as a failure), and
  // when that node was never started (an earlier one failed: see ok()).
  WhistledProcess& node(const std::string& name);
  // The proxy on `child_name`'s link to its parent; nullptr when that link has none.
  TcpProxy* proxy(const std::string& child_name);
  // Name of the node hosting `jurisdiction`: the deepest whose hosted root is an
  // ancestor-or-self of it. "" for an unknown jurisdiction or when no node hosts it.
  std::string NodeFor(std::string_view jurisdiction) const { return NodeFor(plan_, jurisdiction); }
  static std::string NodeFor(const std::vector<FederationNode>& plan,
                             std::string_view jurisdiction);
  // NodeFor's node itself (throws std::invalid_argument when none).
  WhistledProcess& NodeHosting(std::string_view jurisdiction);
  // SIGKILL one node; returns as WhistledProcess::Kill. Its proxy (if any) stays.
  int Kill(const std::string& name);
  // Starts a killed/terminated node again on its ports with its data; true once SERVING.
  bool Restart(const std::string& name);
  // Every node: name, address, running, and the tail of its log.
  std::string Describe(int log_lines = 20) const;

  // szs (children dwk, hn, pl) and one node per county: 4 nodes.
  static std::vector<FederationNode> CountySplit();
  // szs (child: the township's county), the county (child: the township) and the
  // township: 3 nodes. Throws std::invalid_argument when `township` is not a township of
  // the Shizuishan tree.
  static std::vector<FederationNode> ThreeLevel(std::string_view township);
  // szs; each county with its townships as children; one node per township: 40 nodes.
  static std::vector<FederationNode> TownshipSplit();
  // The node id for a hosted root: the root without characters outside [a-z0-9].
  static std::string NodeIdFor(std::string_view hosted);

 private:
  struct Running {
    std::unique_ptr<TcpProxy> proxy;  // on this node's link to its parent, if asked for
    std::unique_ptr<WhistledProcess> process;
  };
  size_t IndexOf(const std::string& name) const;

  std::vector<FederationNode> plan_;
  std::vector<size_t> start_order_;  // indexes into plan_, parents before children
  TempDir dir_;
  std::vector<Running> nodes_;  // by plan index
};

}  // namespace whistle::testing
