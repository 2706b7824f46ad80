#!/usr/bin/env python3
"""Checks that a federation plan partitions the jurisdiction tree exactly.

Usage:
  check_partition.py [--topology FILE] [--partial] PLAN.json
  check_partition.py [--topology FILE] [--partial] --manifests RENDERED.yaml [--print-plan]

PLAN.json is a list of nodes, as `app/federation.sh plan` prints it:
  [{"name": "szs", "node_id": "szs", "hosted": "szs", "children": ["dwk", ...], "parent": ""},
   {"name": "dwk", "node_id": "dwk", "hosted": "dwk", "children": [], "parent": "szs"}, ...]
  name      the node's name (what `parent` refers to)
  node_id   whistled --node-id: [a-z0-9]{1,16}, the prefix of case ids
  hosted    whistled --hosted-jurisdiction: the root of the node's subtree
  children  whistled --child-jurisdictions: roots hosted by child nodes
  parent    name of the node this one dials (--parent-address); "" for the top node
A node hosts its hosted root's subtree minus the subtrees of its children.

--manifests reads a `helm template` render of helm/whistle instead ("-" = stdin)
and builds the plan from each StatefulSet's WHISTLE_NODE_ID,
WHISTLE_HOSTED_JURISDICTION, WHISTLE_CHILD_JURISDICTIONS and
WHISTLE_PARENT_ADDRESS (resolved to the node whose pods the named Service
selects). The topology is then the render's topology.json ConfigMap key when
the nodes are given WHISTLE_TOPOLOGY_FILE, else --topology.

The topology (default config/shizuishan.json, the embedded one) is protobuf
JSON: jurisdictions[].id and parent_id (or parentId).

Checks:
  - node names and node ids are unique; node ids are [a-z0-9]{1,16};
  - hosted roots and children are jurisdictions of the topology;
  - every jurisdiction is hosted by exactly one node;
  - every child root of a node is strictly below the node's hosted root, inside
    the part the node itself hosts, and hosted by exactly one node, whose parent
    is that node; every node with a parent is one of its parent's children;
  - parents exist and there is no parent cycle;
  - exactly one node has no parent, and it hosts the topology's root.
With --partial the plan is one part of a larger deployment (a Helm release
whose top node dials a parent elsewhere via parentAddress): nodes without a
parent in the plan may host any subtree, children may be hosted by nodes
outside the plan, and only the jurisdictions below the plan's top nodes (less
those external children's subtrees) must be hosted, each exactly once.

Prints one line per problem and exits 1 if there is any, 2 on unreadable input.
"""
import argparse
import json
import os
import re
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_TOPOLOGY = os.path.join(REPO, "config", "shizuishan.json")
NODE_ID = re.compile(r"^[a-z0-9]{1,16}$")


class InputError(Exception):
    pass


# ------------------------------------------------------------------ topology
def load_topology(topology):
    """Returns (parent_of: {id: parent id or ""}, children_of: {id: [ids]}, root)."""
    js = topology.get("jurisdictions")
    if not isinstance(js, list) or not js:
        raise InputError("topology has no jurisdictions[]")
    parent_of = {}
    for i, j in enumerate(js):
        jid = j.get("id")
        if not jid:
            raise InputError(f"topology jurisdictions[{i}] has no id")
        if jid in parent_of:
            raise InputError(f"topology lists jurisdiction {jid!r} twice")
        parent_of[jid] = j.get("parent_id", j.get("parentId", "")) or ""
    roots = [j for j, p in parent_of.items() if not p]
    if len(roots) != 1:
        raise InputError(f"topology has {len(roots)} roots (jurisdictions without parent_id): "
                         f"{', '.join(roots[:5])}")
    children_of = {j: [] for j in parent_of}
    for j, p in parent_of.items():
        if p:
            if p not in parent_of:
                raise InputError(f"topology: {j!r} has unknown parent_id {p!r}")
            children_of[p].append(j)
    # every id must reach the root (no cycles)
    seen = {roots[0]}
    stack = [roots[0]]
    while stack:
        for c in children_of[stack.pop()]:
            seen.add(c)
            stack.append(c)
    if len(seen) != len(parent_of):
        stray = sorted(set(parent_of) - seen)
        raise InputError(f"topology: {len(stray)} jurisdictions are in a parent cycle, e.g. {stray[0]!r}")
    return parent_of, children_of, roots[0]


def subtree(children_of, root):
    out, stack = [], [root]
    while stack:
        j = stack.pop()
        out.append(j)
        stack.extend(children_of[j])
    return out


def is_strictly_below(parent_of, j, ancestor):
    j = parent_of.get(j, "")
    while j:
        if j == ancestor:
            return True
        j = parent_of[j]
    return False


# ------------------------------------------------------------------ the check
def check(plan, topology, partial=False):
    """Returns (problems, summary)."""
    problems = []
    parent_of, children_of, top_root = load_topology(topology)

    if not isinstance(plan, list) or not plan:
        return ["plan: want a non-empty JSON list of nodes"], ""
    nodes = []
    for i, n in enumerate(plan):
        where = f"plan[{i}]"
        if not isinstance(n, dict):
            problems.append(f"{where}: not an object")
            continue
        missing = [k for k in ("name", "node_id", "hosted", "children", "parent") if k not in n]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        if not isinstance(n["children"], list):
            problems.append(f"{where} ({n['name']}): children must be a list")
            continue
        nodes.append(n)
    if problems:
        return problems, ""

    by_name = {}
    by_id = {}
    for n in nodes:
        name = n["name"]
        if not name:
            problems.append(f"node with hosted {n['hosted']!r}: empty name")
        if name in by_name:
            problems.append(f"node name {name!r} is used twice")
        by_name.setdefault(name, n)
        nid = n["node_id"]
        if not NODE_ID.match(str(nid)):
            problems.append(f"node {name}: node_id {nid!r} is not [a-z0-9]{{1,16}}")
        if nid in by_id:
            problems.append(f"node {name}: node_id {nid!r} is also the id of node {by_id[nid]['name']} "
                            f"(node ids must be unique: they prefix case ids)")
        by_id.setdefault(nid, n)
        if n["hosted"] not in parent_of:
            problems.append(f"node {name}: hosted jurisdiction {n['hosted']!r} is not in the topology")
        if len(set(n["children"])) != len(n["children"]):
            problems.append(f"node {name}: children list a root twice: {n['children']}")
        for c in n["children"]:
            if c not in parent_of:
                problems.append(f"node {name}: child jurisdiction {c!r} is not in the topology")
    if problems:
        return problems, ""

    # Parents and cycles.
    tops = []
    for n in nodes:
        p = n["parent"]
        if not p:
            tops.append(n)
        elif p == n["name"]:
            problems.append(f"node {n['name']}: is its own parent")
        elif p not in by_name:
            problems.append(f"node {n['name']}: parent {p!r} is not a node of the plan")
    for n in nodes:
        cur, steps = n, 0
        while cur and cur["parent"] and steps <= len(nodes):
            cur = by_name.get(cur["parent"])
            steps += 1
        if steps > len(nodes):
            problems.append(f"node {n['name']}: is in a parent cycle")
    if partial:
        if not tops:
            problems.append("no node without a parent in the plan (the top of the part)")
    else:
        if len(tops) != 1:
            problems.append(f"{len(tops)} nodes without a parent ({', '.join(t['name'] for t in tops)}); "
                            f"want exactly one, hosting the topology root {top_root!r}")
        for t in tops:
            if t["hosted"] != top_root:
                problems.append(f"node {t['name']}: has no parent but hosts {t['hosted']!r}, not the "
                                f"topology root {top_root!r} (nothing would host what is above it)")

    # Which nodes host each hosted root (a root hosted twice is an overlap).
    hosts_root = {}
    for n in nodes:
        hosts_root.setdefault(n["hosted"], []).append(n)
    for root, ns in hosts_root.items():
        if len(ns) > 1:
            problems.append(f"jurisdiction {root!r} is the hosted root of {len(ns)} nodes: "
                            f"{', '.join(x['name'] for x in ns)}")

    def region_owner(j):
        """The node whose hosted root is the nearest strict ancestor of j (None if none)."""
        a = parent_of[j]
        while a:
            if a in hosts_root:
                return hosts_root[a][0]
            a = parent_of[a]
        return None

    # Children.
    external = []
    for n in nodes:
        for c in n["children"]:
            if not is_strictly_below(parent_of, c, n["hosted"]):
                problems.append(f"node {n['name']}: child jurisdiction {c!r} is not strictly below its "
                                f"hosted root {n['hosted']!r}")
                continue
            owner = region_owner(c)
            if owner is not n:
                problems.append(f"node {n['name']}: child jurisdiction {c!r} lies inside the subtree of "
                                f"{owner['hosted']!r} (node {owner['name']}), not in the part node "
                                f"{n['name']} hosts itself")
            hosting = hosts_root.get(c, [])
            if not hosting:
                if partial:
                    external.append(c)
                else:
                    problems.append(f"node {n['name']}: child jurisdiction {c!r} is hosted by no node")
            for h in hosting:
                if h["parent"] != n["name"]:
                    problems.append(f"node {h['name']}: hosts {c!r}, a child jurisdiction of node "
                                    f"{n['name']}, but its parent is {repr(h['parent']) if h['parent'] else 'none'}, "
                                    f"not {n['name']!r}")
    for n in nodes:
        p = by_name.get(n["parent"]) if n["parent"] else None
        if p is not None and n["hosted"] not in p["children"]:
            problems.append(f"node {n['name']}: dials parent {p['name']}, whose children "
                            f"{p['children']} do not include its hosted root {n['hosted']!r} "
                            f"(the parent would refuse it: unexpected_child)")

    # Exact cover: count the nodes hosting each jurisdiction.
    count = {}
    for n in nodes:
        cut = set()
        for c in n["children"]:
            if is_strictly_below(parent_of, c, n["hosted"]):
                cut.update(subtree(children_of, c))
        for j in subtree(children_of, n["hosted"]):
            if j not in cut:
                count.setdefault(j, []).append(n["name"])
    if partial:
        want = set()
        for t in tops:
            want.update(subtree(children_of, t["hosted"]))
        for c in external:
            want.difference_update(subtree(children_of, c))
    else:
        want = set(parent_of)
    twice = sorted(j for j, ns in count.items() if len(ns) > 1)
    never = sorted(j for j in want if j not in count)
    if twice:
        first = twice[0]
        problems.append(f"{len(twice)} jurisdictions are hosted by more than one node, e.g. {first!r} "
                        f"by {', '.join(count[first])}")
    if never:
        problems.append(f"{len(never)} jurisdictions are hosted by no node, e.g. {never[0]!r}")

    summary = (f"{len(nodes)} node(s), {len(count)} of {len(parent_of)} jurisdictions each hosted "
               f"by exactly one node")
    if partial:
        summary += f" (partial plan: top {', '.join(t['hosted'] for t in tops)}"
        summary += f"; children hosted elsewhere: {', '.join(external)})" if external else ")"
    return problems, summary


# ------------------------------------------------------------------ plan from a helm render
def _selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def plan_from_manifests(text):
    """Returns (plan, topology dict or None, partial)."""
    import yaml
    docs = [d for d in yaml.safe_load_all(text) if d]
    services = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Service"}
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    nodes, topology, partial = [], None, False
    pods = []
    for sts in (d for d in docs if d.get("kind") == "StatefulSet"):
        tmpl = sts["spec"]["template"]
        cs = [c for c in tmpl["spec"].get("containers", []) if c.get("name") == "whistled"]
        if not cs:
            raise InputError(f"StatefulSet {sts['metadata']['name']}: no whistled container")
        env = {e["name"]: e.get("value") for e in cs[0].get("env", [])}
        pods.append((sts, tmpl["metadata"].get("labels", {}), env, tmpl["spec"], cs[0]))
    for sts, labels, env, pod, c in pods:
        name = labels.get("whistle.io/node") or sts["metadata"]["name"]
        node = {"name": name,
                "node_id": env.get("WHISTLE_NODE_ID") or "",
                "hosted": env.get("WHISTLE_HOSTED_JURISDICTION") or "",
                "children": [x for x in (env.get("WHISTLE_CHILD_JURISDICTIONS") or "").split(",") if x],
                "parent": ""}
        address = env.get("WHISTLE_PARENT_ADDRESS")
        if address:
            svc_name = address.rpartition(":")[0].split(".")[0]
            svc = services.get(svc_name)
            parents = [lb.get("whistle.io/node") for _, lb, _, _, _ in pods
                       if svc and _selects(svc["spec"].get("selector"), lb)]
            if len(parents) == 1:
                node["parent"] = parents[0]
            else:
                node["parent_address"] = address  # a parent outside this release
                partial = True
        nodes.append(node)
        tfile = env.get("WHISTLE_TOPOLOGY_FILE")
        if tfile:
            mdir, _, key = tfile.rpartition("/")
            mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            cm = (vols.get(mounts.get(mdir), {}).get("configMap") or {}).get("name")
            data = (configmaps.get(cm) or {}).get("data", {})
            if key not in data:
                raise InputError(f"node {name}: WHISTLE_TOPOLOGY_FILE {tfile} is not a key of a "
                                 f"mounted ConfigMap of the render")
            t = json.loads(data[key])
            if topology is not None and t != topology:
                raise InputError(f"node {name}: its topology differs from another node's")
            topology = t
    if not nodes:
        raise InputError("no StatefulSet in the render")
    return nodes, topology, partial


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("plan", nargs="?", help="plan JSON file ('-' = stdin)")
    ap.add_argument("--topology", default=DEFAULT_TOPOLOGY,
                    help="topology JSON (default config/shizuishan.json)")
    ap.add_argument("--manifests", help="a helm template render of helm/whistle ('-' = stdin)")
    ap.add_argument("--partial", action="store_true",
                    help="the plan is one part of a larger deployment")
    ap.add_argument("--print-plan", action="store_true", help="print the plan before checking")
    args = ap.parse_args()
    if bool(args.plan) == bool(args.manifests):
        ap.error("give a plan file or --manifests, not both")

    def read(path):
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()

    source = args.manifests or args.plan
    try:
        topology = None
        partial = args.partial
        if args.manifests:
            plan, topology, from_render_partial = plan_from_manifests(read(args.manifests))
            partial = partial or from_render_partial
            source = f"{args.manifests} (plan from the render)"
        else:
            text = read(args.plan)
            try:
                plan = json.loads(text)
            except ValueError as e:
                raise InputError(f"not JSON: {e}")
        topo_name = "the render's topology.json" if topology is not None else args.topology
        if topology is None:
            topology = json.loads(read(args.topology))
        if args.print_plan:
            print(json.dumps(plan, indent=2, ensure_ascii=False))
        problems, summary = check(plan, topology, partial)
    except (InputError, OSError, ValueError) as e:
        print(f"check_partition: {source}: {e}")
        return 2
    for p in problems:
        print(f"check_partition: {source}: {p}")
    if not problems:
        shown = os.path.relpath(topo_name, REPO) if os.path.isabs(topo_name) else topo_name
        print(f"check_partition: {source}: {summary}; topology: {shown}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
