#!/usr/bin/env python3
"""Checks a `helm template` render of the Whistle chart against its values.

Usage: check_manifests.py --values VALUES.yaml RENDERED.yaml

For every node in the values (chart defaults when the file has no `nodes`):
  - a StatefulSet labelled whistle.io/node=<name> with one replica and a
    volumeClaimTemplate mounted in the whistled container, which sets
    WHISTLE_DATA_DIR below that mount;
  - a gRPC Service (port named grpc, 7400 by default) and a metrics Service
    (port named metrics) whose selectors match the pod labels;
  - readiness and liveness probes on the gRPC port: gRPC health probes, or TCP
    checks when TLS is on (the kubelet's gRPC probe cannot speak TLS);
  - non-root pod and container securityContext, readOnlyRootFilesystem, no
    privilege escalation, ALL capabilities dropped, /tmp on an emptyDir;
  - WHISTLE_NODE_ID equal to the node's name, [a-z0-9]{1,16} and distinct per
    node; WHISTLE_HOSTED_JURISDICTION equal to the values;
  - WHISTLE_PARENT_ADDRESS present exactly for nodes with a parent, naming a
    Service of the render (<service>.<namespace>.svc...:<grpc port>) that
    selects the parent's pods (or the values' parentAddress);
  - WHISTLE_CHILD_JURISDICTIONS equal to the hostedJurisdiction of every node
    whose parent is this node, then its externalChildJurisdictions, and absent
    for a node without children; WHISTLE_LINK_KEEPALIVE_MS = linkKeepaliveMs;
  - every env var whose name starts with WHISTLE_ is a whistled flag (a field
    of whistle.v1.NodeConfig in proto/whistle/v1/config.proto);
  - WHISTLE_SHUTDOWN_GRACE_MS, when set, ends before terminationGracePeriodSeconds;
  - WHISTLE_TOPOLOGY_FILE / WHISTLE_POLICY_FILE only when topology / policy
    are set, pointing into a mounted ConfigMap that has the key;
  - with tls.enabled: the node's own Secret (nodes[].tlsSecret, default
    <statefulset>-tls) mounted, and WHISTLE_TLS_CERT_FILE / _KEY_FILE / _CA_FILE
    pointing at its tls.crt, tls.key and ca.crt; without it none of the three;
    with tls.certManager.enabled a Certificate per node filling that Secret,
    naming the node id as CN and DNS SAN and the gRPC Service as DNS SAN;
  - WHISTLE_JWKS_FILE naming jwks.json of the mounted JWKS source (the rendered
    ConfigMap of auth.jwks, auth.existingSecret or auth.existingConfigMap, key
    auth.key), mounted without subPath so updates reach the pod; without one
    only with auth.devHeaderIdentity, which alone sets WHISTLE_DEV_HEADER_IDENTITY.
The leaders' console (console.*): see check_console below (Deployment, --node, probes,
TLS, Service, Ingress).
The exact partition of the tree by the nodes is checked by check_partition.py
--manifests on the same render.
Prints one line per problem and exits 1 if there is any.
"""
import argparse
import json
import os
import re
import sys

import yaml

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CONFIG_PROTO = os.path.join(REPO, "proto", "whistle", "v1", "config.proto")


def known_flags():
    """WHISTLE_<FIELD> for every field of whistle.v1.NodeConfig (whistled's flags)."""
    with open(CONFIG_PROTO, encoding="utf-8") as f:
        text = f.read()
    body = re.search(r"message\s+NodeConfig\s*\{(.*?)\n\}", text, re.S).group(1)
    fields = re.findall(r"^\s*(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+\s*;", body, re.M)
    if not fields:
        raise SystemExit(f"{CONFIG_PROTO}: no NodeConfig fields found")
    return {"WHISTLE_" + f.upper() for f in fields}


CHART_DIR = os.path.join(REPO, "helm", "whistle")


def deep_merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v) if k in base else v
        return out
    return over


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_console(values, by_kind, services, pod_labels_of, grpc_port, problem):
    """The leaders' console (console.*): with console.enabled one Deployment running
    whistle-console from the chart's image, non-root and read-only like the nodes, --node
    naming a rendered gRPC Service that selects the pods of console.node (default: the root
    node), --assets at the image's page, --listen on console.port = the container port
    "http", HTTP probes GET /readyz (readiness) and /healthz (liveness) on that port, TLS
    flags pointing into a mounted Secret exactly when tls.enabled; one Service selecting its
    pods (port "http" -> "http"); an Ingress exactly when console.ingress.enabled, routing
    to that Service. Disabled: none of these. The PodDisruptionBudget covers no console pod."""
    console = values.get("console") or {}
    deployments = [d for d in by_kind.get("Deployment", [])
                   if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "console"]
    console_svcs = [s for s in services.values()
                    if s["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "console"]
    ingresses = by_kind.get("Ingress", [])
    if not console.get("enabled"):
        if deployments or console_svcs or ingresses:
            problem("console: disabled but a console Deployment, Service or Ingress is rendered")
        return
    where = "console"
    if len(deployments) != 1:
        problem(f"{where}: {len(deployments)} console Deployments, want 1")
        return
    dep = deployments[0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    if spec.get("replicas") != console.get("replicas"):
        problem(f"{where}: replicas {spec.get('replicas')}, values say {console.get('replicas')}")
    if not selects(spec["selector"].get("matchLabels"), labels):
        problem(f"{where}: Deployment selector does not match its pod labels")
    if labels.get("app.kubernetes.io/component") == "node" or "whistle.io/node" in labels:
        problem(f"{where}: console pods carry node labels {labels}")
    containers = pod.get("containers", [])
    if len(containers) != 1:
        problem(f"{where}: {len(containers)} containers, want 1")
        return
    c = containers[0]
    image = values["image"]
    if not str(c.get("image", "")).startswith(image["repository"]):
        problem(f"{where}: image {c.get('image')!r} is not the chart's image {image['repository']}")
    if c.get("command") != ["/usr/local/bin/whistle-console"]:
        problem(f"{where}: command {c.get('command')}, want /usr/local/bin/whistle-console")
    flags = {}
    for a in c.get("args", []):
        k, _, v = str(a).partition("=")
        flags[k] = v
    port = console.get("port")
    if flags.get("--listen") != f"0.0.0.0:{port}":
        problem(f"{where}: --listen {flags.get('--listen')!r}, want 0.0.0.0:{port}")
    if flags.get("--assets") != "/usr/share/whistle/console":
        problem(f"{where}: --assets {flags.get('--assets')!r}, want /usr/share/whistle/console (the image's page)")
    cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    if cports.get("http") != port:
        problem(f"{where}: container port http {cports.get('http')}, want {port}")

    # --node: a rendered gRPC Service of the chosen node.
    nodes = values["nodes"]
    want_node = console.get("node") or next(
        (n["name"] for n in nodes if not n.get("parent") and not n.get("parentAddress")), nodes[0]["name"])
    address = flags.get("--node") or ""
    host, _, nport = address.rpartition(":")
    svc_name = host.split(".")[0]
    if nport != str(grpc_port):
        problem(f"{where}: --node {address!r} port is not the gRPC port {grpc_port}")
    if svc_name not in services:
        problem(f"{where}: --node {address!r} names Service {svc_name!r}, which is not in the render")
    else:
        svc = services[svc_name]
        plabels = pod_labels_of(want_node)
        if plabels is None or not selects(svc["spec"].get("selector"), plabels):
            problem(f"{where}: --node Service {svc_name} does not select the pods of node {want_node}")
        if "grpc" not in {p.get("name") for p in svc["spec"].get("ports", [])}:
            problem(f"{where}: --node Service {svc_name} has no grpc port")

    # Probes.
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") not in ("http", port):
            problem(f"{where}: {probe} is not GET {path} on the http port: {c.get(probe)}")

    # Security, as for the nodes.
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or csc.get("runAsNonRoot") is not True:
        problem(f"{where}: runAsNonRoot is not true on pod and container")
    if csc.get("readOnlyRootFilesystem") is not True:
        problem(f"{where}: readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        problem(f"{where}: capabilities do not drop ALL")
    if pod.get("automountServiceAccountToken") is not False:
        problem(f"{where}: automountServiceAccountToken is not false (the console needs no API access)")

    # TLS to the node.
    tls_flags = {"--tls-ca-file": "ca.crt", "--tls-cert-file": "tls.crt", "--tls-key-file": "tls.key"}
    volumes = {v["name"]: v for v in pod.get("volumes", []) or []}
    mounts = {m["name"]: m for m in c.get("volumeMounts", []) or []}
    if (values.get("tls") or {}).get("enabled"):
        node = next((n for n in nodes if n["name"] == want_node), {})
        secret = console.get("tlsSecret") or node.get("tlsSecret") or \
            f"{svc_name}-tls"
        vols = [v for v in volumes.values() if (v.get("secret") or {}).get("secretName") == secret]
        if not vols or vols[0]["name"] not in mounts:
            problem(f"{where}: TLS Secret {secret} is not mounted")
        else:
            mdir = mounts[vols[0]["name"]]["mountPath"].rstrip("/")
            for flag, key in tls_flags.items():
                if flags.get(flag) != f"{mdir}/{key}":
                    problem(f"{where}: {flag} {flags.get(flag)!r}, want {mdir}/{key} (Secret {secret})")
    else:
        for flag in tls_flags:
            if flag in flags:
                problem(f"{where}: {flag} set although tls.enabled is false")

    # Service and Ingress.
    svcs = [s for s in console_svcs if selects(s["spec"].get("selector"), labels)]
    if len(svcs) != 1:
        problem(f"{where}: {len(svcs)} Services select the console pods, want 1")
    else:
        ports = {p.get("name"): p for p in svcs[0]["spec"].get("ports", [])}
        want_port = (console.get("service") or {}).get("port")
        if "http" not in ports or ports["http"].get("port") != want_port \
                or ports["http"].get("targetPort") not in ("http", port):
            problem(f"{where}: Service {svcs[0]['metadata']['name']} ports {list(ports.values())}, "
                    f"want http {want_port} -> http")
    ingress = console.get("ingress") or {}
    if ingress.get("enabled"):
        if len(ingresses) != 1:
            problem(f"{where}: ingress enabled but {len(ingresses)} Ingresses rendered")
        elif svcs:
            name = svcs[0]["metadata"]["name"]
            hosts = [r.get("host") for r in ingresses[0]["spec"].get("rules", [])]
            if hosts != [h["host"] for h in ingress.get("hosts", [])]:
                problem(f"{where}: Ingress hosts {hosts}, values say {ingress.get('hosts')}")
            for r in ingresses[0]["spec"].get("rules", []):
                for p in (r.get("http") or {}).get("paths", []):
                    backend = (p.get("backend") or {}).get("service") or {}
                    if backend.get("name") != name or (backend.get("port") or {}).get("name") != "http":
                        problem(f"{where}: Ingress path {p.get('path')} goes to {backend}, not {name}:http")
    elif ingresses:
        problem(f"{where}: ingress disabled but {len(ingresses)} Ingresses rendered")

    for pdb in by_kind.get("PodDisruptionBudget", []):
        if selects(pdb["spec"].get("selector", {}).get("matchLabels"), labels):
            problem(f"{where}: PodDisruptionBudget {pdb['metadata']['name']} selects the console pods")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", required=True)
    ap.add_argument("rendered")
    args = ap.parse_args()

    with open(os.path.join(CHART_DIR, "values.yaml")) as f:
        values = yaml.safe_load(f)
    with open(args.values) as f:
        values = deep_merge(values, yaml.safe_load(f) or {})
    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]

    problems = []
    flags = known_flags()

    def problem(msg):
        problems.append(msg)

    by_kind = {}
    for d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in d:
                problem(f"object without {key}: {str(d)[:80]}")
        by_kind.setdefault(d.get("kind"), []).append(d)
    names = [(d.get("kind"), d["metadata"].get("name")) for d in docs if "metadata" in d]
    for kn in set(names):
        if names.count(kn) > 1:
            problem(f"{kn[0]} {kn[1]} rendered twice")

    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    statefulsets = by_kind.get("StatefulSet", [])
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    grpc_port = values["ports"]["grpc"]
    metrics_port = values["ports"]["metrics"]
    nodes = values["nodes"]
    if len(statefulsets) != len(nodes):
        problem(f"{len(statefulsets)} StatefulSets for {len(nodes)} nodes")

    node_ids = {}
    keepalive = str(values.get("linkKeepaliveMs"))
    tls = values.get("tls") or {}
    certificates = {c["spec"].get("secretName"): c for c in by_kind.get("Certificate", [])}

    def pod_labels_of(node_name):
        for sts in statefulsets:
            if sts["metadata"].get("labels", {}).get("whistle.io/node") == node_name:
                return sts["spec"]["template"]["metadata"].get("labels", {})
        return None

    for node in nodes:
        name = node["name"]
        where = f"node {name}"
        sts = [s for s in statefulsets if s["metadata"].get("labels", {}).get("whistle.io/node") == name]
        if len(sts) != 1:
            problem(f"{where}: {len(sts)} StatefulSets labelled whistle.io/node={name}, want 1")
            continue
        sts = sts[0]
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"].get("labels", {})
        if spec.get("replicas") != 1:
            problem(f"{where}: replicas {spec.get('replicas')}, want 1")
        if not selects(spec["selector"].get("matchLabels"), pod_labels):
            problem(f"{where}: StatefulSet selector does not match its pod labels")
        if spec.get("serviceName") not in services:
            problem(f"{where}: serviceName {spec.get('serviceName')!r} is not a rendered Service")

        containers = [c for c in pod.get("containers", []) if c.get("name") == "whistled"]
        if len(containers) != 1:
            problem(f"{where}: no container named whistled")
            continue
        c = containers[0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}

        # Storage.
        vcts = spec.get("volumeClaimTemplates") or []
        if not vcts:
            problem(f"{where}: no volumeClaimTemplates (RocksDB needs a PersistentVolumeClaim)")
        for vct in vcts:
            vname = vct["metadata"]["name"]
            size = vct["spec"].get("resources", {}).get("requests", {}).get("storage")
            want = (node.get("storage") or {}).get("size") or values["storage"]["size"]
            if str(size) != str(want):
                problem(f"{where}: volume {vname} requests {size}, values say {want}")
            if vname not in mounts:
                problem(f"{where}: volume claim {vname} is not mounted in whistled")
            else:
                mount = mounts[vname]["mountPath"].rstrip("/")
                data_dir = env.get("WHISTLE_DATA_DIR") or ""
                if not (data_dir == mount or data_dir.startswith(mount + "/")):
                    problem(f"{where}: WHISTLE_DATA_DIR {data_dir!r} is not on the volume mounted at {mount}")

        # Services.
        def find_service(port_name, want_port):
            found = []
            for s in services.values():
                ports = {p.get("name"): p for p in s["spec"].get("ports", [])}
                if port_name in ports and selects(s["spec"].get("selector"), pod_labels):
                    if ports[port_name].get("port") != want_port:
                        problem(f"{where}: Service {s['metadata']['name']} port {port_name} is "
                                f"{ports[port_name].get('port')}, want {want_port}")
                    found.append(s)
            return found
        grpc_svcs = find_service("grpc", grpc_port)
        metrics_svcs = find_service("metrics", metrics_port)
        if len(grpc_svcs) != 1:
            problem(f"{where}: {len(grpc_svcs)} gRPC Services select its pod, want 1")
        if len(metrics_svcs) != 1:
            problem(f"{where}: {len(metrics_svcs)} metrics Services select its pod, want 1")
        cports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        if cports.get("grpc") != grpc_port or cports.get("metrics") != metrics_port:
            problem(f"{where}: container ports {cports}, want grpc={grpc_port} metrics={metrics_port}")
        if env.get("WHISTLE_LISTEN") != f"0.0.0.0:{grpc_port}":
            problem(f"{where}: WHISTLE_LISTEN {env.get('WHISTLE_LISTEN')!r}, want 0.0.0.0:{grpc_port}")
        if env.get("WHISTLE_METRICS_LISTEN") != f"0.0.0.0:{metrics_port}":
            problem(f"{where}: WHISTLE_METRICS_LISTEN {env.get('WHISTLE_METRICS_LISTEN')!r}")

        # Probes: gRPC health; TCP when the port serves TLS (kubelet gRPC probes are plaintext).
        want_probe = "tcpSocket" if tls.get("enabled") else "grpc"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe)
            if not p:
                if probe != "startupProbe":
                    problem(f"{where}: no {probe}")
            elif (p.get(want_probe) or {}).get("port") not in (grpc_port, "grpc"):
                problem(f"{where}: {probe} is not a {want_probe} probe on port {grpc_port}: {p}")
        if not pod.get("terminationGracePeriodSeconds"):
            problem(f"{where}: no terminationGracePeriodSeconds")
        elif pod["terminationGracePeriodSeconds"] != values["terminationGracePeriodSeconds"]:
            problem(f"{where}: terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']}")

        # Security.
        psc = pod.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True or csc.get("runAsNonRoot") is not True:
            problem(f"{where}: runAsNonRoot is not true on pod and container")
        for sc, what in ((psc, "pod"), (csc, "container")):
            if sc.get("runAsUser") in (None, 0):
                problem(f"{where}: {what} runAsUser {sc.get('runAsUser')!r}, want a non-root uid")
        if not psc.get("fsGroup"):
            problem(f"{where}: no fsGroup (the volume would not be writable by uid {psc.get('runAsUser')})")
        if csc.get("readOnlyRootFilesystem") is not True:
            problem(f"{where}: readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            problem(f"{where}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
            problem(f"{where}: capabilities do not drop ALL")
        tmp = [m for m in mounts.values() if m.get("mountPath") == "/tmp"]
        if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
            problem(f"{where}: /tmp is not an emptyDir (the root filesystem is read-only)")

        # Graceful shutdown must finish before the kubelet's SIGKILL.
        grace = env.get("WHISTLE_SHUTDOWN_GRACE_MS")
        if grace is not None and pod.get("terminationGracePeriodSeconds"):
            if not grace.isdigit() or int(grace) >= pod["terminationGracePeriodSeconds"] * 1000:
                problem(f"{where}: WHISTLE_SHUTDOWN_GRACE_MS {grace} does not end before "
                        f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']}")

        # Environment.
        for k in env:
            if k.startswith("WHISTLE_") and k not in flags:
                problem(f"{where}: {k} is not a whistled flag")
        node_id = env.get("WHISTLE_NODE_ID")
        if node_id != name:
            problem(f"{where}: WHISTLE_NODE_ID {node_id!r}, want the node's name {name!r}")
        if not re.fullmatch(r"[a-z0-9]{1,16}", node_id or ""):
            problem(f"{where}: WHISTLE_NODE_ID {node_id!r} is not [a-z0-9]{{1,16}}")
        if node_id in node_ids:
            problem(f"{where}: WHISTLE_NODE_ID {node_id!r} is also the id of node {node_ids[node_id]}")
        node_ids.setdefault(node_id, name)
        children = [n["hostedJurisdiction"] for n in nodes if (n.get("parent") or "") == name]
        children += list(node.get("externalChildJurisdictions") or [])
        got_children = env.get("WHISTLE_CHILD_JURISDICTIONS")
        if children and got_children != ",".join(children):
            problem(f"{where}: WHISTLE_CHILD_JURISDICTIONS {got_children!r}, want {','.join(children)!r} "
                    f"(the hosted roots of its child nodes)")
        if not children and got_children is not None:
            problem(f"{where}: WHISTLE_CHILD_JURISDICTIONS {got_children!r} on a node without children")
        if env.get("WHISTLE_LINK_KEEPALIVE_MS") != keepalive:
            problem(f"{where}: WHISTLE_LINK_KEEPALIVE_MS {env.get('WHISTLE_LINK_KEEPALIVE_MS')!r}, "
                    f"want {keepalive!r}")
        if env.get("WHISTLE_HOSTED_JURISDICTION") != node["hostedJurisdiction"]:
            problem(f"{where}: WHISTLE_HOSTED_JURISDICTION {env.get('WHISTLE_HOSTED_JURISDICTION')!r}, "
                    f"want {node['hostedJurisdiction']!r}")
        parent = node.get("parent") or ""
        address = env.get("WHISTLE_PARENT_ADDRESS")
        if parent:
            if not address:
                problem(f"{where}: parent {parent} but no WHISTLE_PARENT_ADDRESS")
            else:
                host, _, port = address.rpartition(":")
                svc_name, _, rest = host.partition(".")
                namespace = rest.split(".")[0] if rest else sts["metadata"].get("namespace")
                if port != str(grpc_port):
                    problem(f"{where}: WHISTLE_PARENT_ADDRESS {address} port is not {grpc_port}")
                if svc_name not in services:
                    problem(f"{where}: WHISTLE_PARENT_ADDRESS {address} names Service {svc_name!r}, "
                            f"which is not in the render")
                else:
                    svc = services[svc_name]
                    if namespace != svc["metadata"].get("namespace"):
                        problem(f"{where}: WHISTLE_PARENT_ADDRESS namespace {namespace!r} is not the "
                                f"Service's {svc['metadata'].get('namespace')!r}")
                    plabels = pod_labels_of(parent)
                    if plabels is None or not selects(svc["spec"].get("selector"), plabels):
                        problem(f"{where}: Service {svc_name} does not select the pods of parent node {parent}")
                    if "grpc" not in {p.get("name") for p in svc["spec"].get("ports", [])}:
                        problem(f"{where}: parent Service {svc_name} has no grpc port")
        elif node.get("parentAddress"):
            if address != node["parentAddress"]:
                problem(f"{where}: WHISTLE_PARENT_ADDRESS {address!r}, want {node['parentAddress']!r}")
        elif address:
            problem(f"{where}: root node has WHISTLE_PARENT_ADDRESS {address}")

        # Topology / policy.
        for key, var, fname in (("topology", "WHISTLE_TOPOLOGY_FILE", "topology.json"),
                                ("policy", "WHISTLE_POLICY_FILE", "policy.json")):
            if not values.get(key):
                if var in env:
                    problem(f"{where}: {var} set although {key} is empty (embedded default expected)")
                continue
            path = env.get(var)
            if not path:
                problem(f"{where}: {key} is set but {var} is not")
                continue
            mount = [m for m in mounts.values() if path.startswith(m["mountPath"].rstrip("/") + "/")]
            cm_name = mount and (volumes.get(mount[0]["name"], {}).get("configMap") or {}).get("name")
            if not cm_name or cm_name not in configmaps:
                problem(f"{where}: {var}={path} is not in a mounted ConfigMap of the render")
            elif fname not in configmaps[cm_name].get("data", {}):
                problem(f"{where}: ConfigMap {cm_name} has no key {fname}")

        # Signed identities: WHISTLE_JWKS_FILE is jwks.json of the one mounted JWKS source
        # (auth.jwks -> the rendered ConfigMap, auth.existingSecret, auth.existingConfigMap);
        # WHISTLE_DEV_HEADER_IDENTITY only with auth.devHeaderIdentity.
        auth = values.get("auth") or {}
        dev = bool(auth.get("devHeaderIdentity"))
        if (env.get("WHISTLE_DEV_HEADER_IDENTITY") == "true") != dev:
            problem(f"{where}: WHISTLE_DEV_HEADER_IDENTITY {env.get('WHISTLE_DEV_HEADER_IDENTITY')!r} "
                    f"but auth.devHeaderIdentity is {dev}")
        jwks_path = env.get("WHISTLE_JWKS_FILE")
        has_source = any(auth.get(k) for k in ("jwks", "existingSecret", "existingConfigMap"))
        if not jwks_path:
            if not dev:
                problem(f"{where}: no WHISTLE_JWKS_FILE (whistled refuses to start without issuer keys)")
            elif has_source:
                problem(f"{where}: auth has a JWKS source but WHISTLE_JWKS_FILE is not set")
        else:
            mount = [m for m in mounts.values()
                     if jwks_path.startswith(m["mountPath"].rstrip("/") + "/")]
            vol = volumes.get(mount[0]["name"], {}) if mount else {}
            fname = jwks_path[len(mount[0]["mountPath"].rstrip("/")) + 1:] if mount else ""
            if mount and mount[0].get("subPath"):
                problem(f"{where}: the JWKS is mounted with subPath (Kubernetes would never update it)")
            source = vol.get("secret") or vol.get("configMap") or {}
            key = None
            for item in source.get("items") or []:
                if item.get("path") == fname:
                    key = item.get("key")
            if auth.get("existingSecret"):
                want_kind, want_name, want_key = "secret", auth["existingSecret"], auth.get("key", "jwks.json")
            elif auth.get("existingConfigMap"):
                want_kind, want_name, want_key = "configMap", auth["existingConfigMap"], auth.get("key", "jwks.json")
            else:
                want_kind, want_name, want_key = "configMap", None, "jwks.json"
            got_name = source.get("secretName") if want_kind == "secret" else source.get("name")
            if want_kind not in vol or key != want_key or (want_name and got_name != want_name):
                problem(f"{where}: WHISTLE_JWKS_FILE={jwks_path} is not key {want_key!r} of the "
                        f"{want_kind} {want_name or '(rendered)'}")
            if auth.get("jwks"):
                if got_name not in configmaps or "jwks.json" not in configmaps[got_name].get("data", {}):
                    problem(f"{where}: auth.jwks is set but ConfigMap {got_name!r} with jwks.json is not rendered")
                elif json.loads(configmaps[got_name]["data"]["jwks.json"]) != json.loads(auth["jwks"]):
                    problem(f"{where}: ConfigMap {got_name} does not hold auth.jwks")

        # TLS: the node's own Secret, the three files, nothing when off.
        tls_vars = {"WHISTLE_TLS_CERT_FILE": "tls.crt", "WHISTLE_TLS_KEY_FILE": "tls.key",
                    "WHISTLE_TLS_CA_FILE": "ca.crt"}
        if tls.get("enabled"):
            secret = node.get("tlsSecret") or f"{sts['metadata']['name']}-tls"
            vols = [v for v in volumes.values() if (v.get("secret") or {}).get("secretName") == secret]
            if not vols or vols[0]["name"] not in mounts:
                problem(f"{where}: TLS Secret {secret} is not mounted")
            else:
                mdir = mounts[vols[0]["name"]]["mountPath"].rstrip("/")
                for var, key in tls_vars.items():
                    if env.get(var) != f"{mdir}/{key}":
                        problem(f"{where}: {var} {env.get(var)!r}, want {mdir}/{key} (Secret {secret})")
            others = [v["secret"]["secretName"] for v in volumes.values()
                      if (v.get("secret") or {}).get("secretName")
                      not in (None, secret, (values.get("auth") or {}).get("existingSecret"))]
            if others:
                problem(f"{where}: mounts other Secrets {others}")
            if (tls.get("certManager") or {}).get("enabled"):
                cert = certificates.get(secret)
                if not cert:
                    problem(f"{where}: no cert-manager Certificate fills Secret {secret}")
                else:
                    cs = cert["spec"]
                    dns = cs.get("dnsNames") or []
                    grpc_svc = [s["metadata"]["name"] for s in grpc_svcs]
                    if cs.get("commonName") != name and name not in dns:
                        problem(f"{where}: Certificate {cert['metadata']['name']} names neither CN nor "
                                f"DNS SAN {name!r} (the node id)")
                    for svc in grpc_svc:
                        fq = f"{svc}.{services[svc]['metadata'].get('namespace')}.svc"
                        if not any(d == fq or d.startswith(fq + ".") for d in dns):
                            problem(f"{where}: Certificate {cert['metadata']['name']} has no DNS SAN for "
                                    f"its gRPC Service {fq}.<cluster domain>")
                    usages = set(cs.get("usages") or [])
                    if not {"server auth", "client auth"} <= usages:
                        problem(f"{where}: Certificate usages {sorted(usages)} lack server auth / client auth")
        else:
            for var in tls_vars:
                if var in env:
                    problem(f"{where}: {var} set although tls.enabled is false")

    # Optional objects.
    expect = {
        "ServiceMonitor": values["serviceMonitor"]["enabled"],
        "PrometheusRule": values["prometheusRule"]["enabled"],
        "PodDisruptionBudget": values["podDisruptionBudget"]["enabled"],
    }
    for kind, enabled in expect.items():
        n = len(by_kind.get(kind, []))
        if enabled and n != 1:
            problem(f"{kind}: enabled but {n} rendered")
        if not enabled and n:
            problem(f"{kind}: disabled but {n} rendered")
    for rule in by_kind.get("PrometheusRule", []):
        groups = rule["spec"].get("groups") or []
        alerts = [r.get("alert") for g in groups for r in g.get("rules", [])]
        if not alerts:
            problem("PrometheusRule has no alerts")
    dashboards = [c for c in configmaps.values()
                  if c["metadata"].get("labels", {}).get(values["grafanaDashboard"]["label"])
                  == values["grafanaDashboard"]["labelValue"]]
    if values["grafanaDashboard"]["enabled"]:
        if len(dashboards) != 1:
            problem(f"grafana dashboard: enabled but {len(dashboards)} ConfigMaps carry the label")
        else:
            for key, text in dashboards[0].get("data", {}).items():
                try:
                    panels = json.loads(text).get("panels", [])
                    if not panels:
                        problem(f"grafana dashboard {key}: no panels")
                except ValueError as e:
                    problem(f"grafana dashboard {key}: not JSON: {e}")
    elif dashboards:
        problem("grafana dashboard: disabled but rendered")
    want_certs = len(nodes) if tls.get("enabled") and (tls.get("certManager") or {}).get("enabled") else 0
    if len(by_kind.get("Certificate", [])) != want_certs:
        problem(f"{len(by_kind.get('Certificate', []))} cert-manager Certificates rendered, want {want_certs}")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = pdb["spec"].get("selector", {}).get("matchLabels")
        covered = [n["name"] for n in nodes if selects(sel, pod_labels_of(n["name"]) or {})]
        if len(covered) != len(nodes):
            problem(f"PodDisruptionBudget {pdb['metadata']['name']} covers {covered}, not every node")

    check_console(values, by_kind, services, pod_labels_of, grpc_port, problem)

    for p in problems:
        print(f"check_manifests: {args.rendered}: {p}")
    if not problems:
        print(f"check_manifests: {len(nodes)} node(s), {len(docs)} objects: all checks passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
