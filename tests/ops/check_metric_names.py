#!/usr/bin/env python3
"""Checks that alert rules and Grafana dashboards use only catalogued metrics.

Usage:
  check_metric_names.py --catalogue docs/metrics.md FILE...
      FILE is a Prometheus rules file (.yaml/.yml) or a Grafana dashboard
      (.json). Every metric name in every PromQL expression (rule `expr`,
      panel target `expr`, template variable query) must be in a table of the
      catalogue; X_bucket, X_sum and X_count are accepted for a histogram X.
      Every expression must use at least one metric.
  check_metric_names.py --catalogue docs/metrics.md --exposition metrics.txt
      Also compares the catalogue with a node's /metrics output: every
      catalogued metric (except those Prometheus adds itself, and those of a
      section whose heading says "(only on ...)", e.g. the node link metrics
      of a node without parent or children) must be exported with the
      catalogued type, and every exported metric must be catalogued.
Exits 1 on any mismatch, printing one line per problem.
"""
import argparse
import json
import re
import sys

import yaml

TYPES = {"counter", "gauge", "histogram", "summary"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "atan2", "inf", "nan", "start", "end"}
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def load_catalogue(path):
    """Returns ({name: type}, {names not necessarily in a node's exposition}):
    those Prometheus adds itself and those of "(only on ...)" sections."""
    metrics, synthetic = {}, set()
    section = ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                section = line.strip("# \n").lower()
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 4 or not line.lstrip().startswith("|"):
                continue
            m = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0])
            if not m or cells[1] not in TYPES:
                continue
            name = m.group(1)
            if name in metrics:
                raise SystemExit(f"{path}: {name} catalogued twice")
            metrics[name] = cells[1]
            if "prometheus" in section and "added" in section:
                synthetic.add(name)
            if "(only on" in section:
                synthetic.add(name)
    if not metrics:
        raise SystemExit(f"{path}: no metric tables found")
    return metrics, synthetic


def _strip_parens_after(expr, keyword_re):
    """Removes `keyword (...)` groups, e.g. by (level, state)."""
    out, i = [], 0
    for m in re.finditer(keyword_re, expr):
        if m.start() < i:
            continue
        j = m.end()
        while j < len(expr) and expr[j].isspace():
            j += 1
        if j < len(expr) and expr[j] == "(":
            depth = 0
            k = j
            while k < len(expr):
                depth += {"(": 1, ")": -1}.get(expr[k], 0)
                if depth == 0:
                    break
                k += 1
            out.append(expr[i:m.start()])
            out.append(" ")
            i = k + 1
    out.append(expr[i:])
    return "".join(out)


def metric_names(expr):
    """Metric names referenced by a PromQL expression (Grafana variables allowed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^{}]*\}", " ", e)          # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)        # range / subquery selectors
    e = _strip_parens_after(e, r"\b(by|without|on|ignoring|group_left|group_right)\b")
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS:
            continue
        names.add(word)
    # A bare metric with a matcher: {__name__="x"} is not used here; forbid it.
    if "__name__" in expr:
        names.add("__name__")
    return names


def grafana_query_exprs(q):
    """PromQL expressions inside a Grafana template variable query."""
    if isinstance(q, dict):
        q = q.get("query", "")
    q = (q or "").strip()
    m = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", q, re.S)
    if m:
        return [m.group(1)]
    if re.fullmatch(r"label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", q):
        return []
    m = re.fullmatch(r"(?:query_result|metrics)\((.*)\)", q, re.S)
    if m:
        return [m.group(1)]
    return [q] if q else []


def expressions(path):
    """(where, expr) pairs from a rules file or a dashboard."""
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
        out = []

        def walk_panels(panels):
            for p in panels:
                title = p.get("title", "?")
                if p.get("type") != "row" and not p.get("targets"):
                    out.append((f"panel {title!r}", ""))
                for t in p.get("targets", []) or []:
                    if "expr" in t:
                        out.append((f"panel {title!r} target {t.get('refId', '?')}", t["expr"]))
                walk_panels(p.get("panels", []) or [])
        walk_panels(dash.get("panels", []))
        for v in (dash.get("templating") or {}).get("list", []):
            if v.get("type") == "query":
                for e in grafana_query_exprs(v.get("query") or v.get("definition")):
                    out.append((f"variable {v.get('name')!r}", e))
        return out
    with open(path, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    return [(f"rule {r.get('alert') or r.get('record')!r}", r["expr"])
            for g in rules.get("groups", []) for r in g.get("rules", [])]


def check_usage(catalogue, paths):
    problems, used = [], set()
    for path in paths:
        exprs = expressions(path)
        if not exprs:
            problems.append(f"{path}: no expressions found")
        for where, expr in exprs:
            names = metric_names(str(expr))
            if not names:
                problems.append(f"{path}: {where}: no metric in {expr!r}")
            for n in sorted(names):
                base = n
                for suf in HIST_SUFFIXES:
                    if n.endswith(suf) and catalogue.get(n[: -len(suf)]) in ("histogram", "summary"):
                        base = n[: -len(suf)]
                        if suf == "_bucket" and catalogue[base] == "summary":
                            base = n
                if base not in catalogue:
                    problems.append(f"{path}: {where}: metric {n!r} is not in the catalogue")
                elif catalogue[base] == "histogram" and base == n:
                    problems.append(f"{path}: {where}: histogram {n!r} used without _bucket/_sum/_count")
                else:
                    used.add(base)
    return problems, used


def check_exposition(catalogue, synthetic, path):
    exported = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
            if m:
                exported[m.group(1)] = m.group(2)
    problems = []
    for name, typ in sorted(catalogue.items()):
        if name in synthetic and name not in exported:
            continue
        if name not in exported:
            problems.append(f"{path}: catalogued metric {name} is not exported")
        elif exported[name] != typ:
            problems.append(f"{path}: {name} is exported as {exported[name]}, catalogued as {typ}")
    for name in sorted(set(exported) - set(catalogue)):
        problems.append(f"{path}: exported metric {name} is not in the catalogue")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalogue", required=True)
    ap.add_argument("--exposition", help="a node's /metrics output to compare with the catalogue")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    catalogue, synthetic = load_catalogue(args.catalogue)
    problems, used = check_usage(catalogue, args.files)
    if args.exposition:
        problems += check_exposition(catalogue, synthetic, args.exposition)
    for p in problems:
        print(f"check_metric_names: {p}")
    if not problems:
        print(f"check_metric_names: {len(catalogue)} catalogued metrics; {len(used)} used in "
              f"{len(args.files)} file(s), all catalogued"
              + ("; exposition matches the catalogue" if args.exposition else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
