#!/usr/bin/env python3
"""Every alert in the rules file carries annotations.runbook_url (not `runbook`)
of the form docs/operations.md#<anchor>, and <anchor> is a section of
docs/operations.md (GitHub's heading anchors: lower case, punctuation other
than '-' and '_' dropped, spaces to '-', repeats suffixed -1, -2 ...).

  check_runbooks.py --doc docs/operations.md helm/whistle/files/alerts.yaml
"""
import argparse
import re
import sys

import yaml

PREFIX = "docs/operations.md#"


def anchors(markdown):
    seen = {}
    out = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(2).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--doc", required=True)
    ap.add_argument("rules")
    args = ap.parse_args()
    with open(args.doc, encoding="utf-8") as f:
        known = anchors(f.read())
    with open(args.rules, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    errors = []
    count = 0
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            count += 1
            notes = rule.get("annotations", {})
            if "runbook" in notes:
                errors.append(f"{name}: annotation `runbook`: the key is `runbook_url`")
            url = notes.get("runbook_url")
            if not url:
                errors.append(f"{name}: no runbook_url")
                continue
            if not url.startswith(PREFIX):
                errors.append(f"{name}: runbook_url {url!r} does not start with {PREFIX}")
                continue
            anchor = url[len(PREFIX):]
            if anchor not in known:
                errors.append(f"{name}: runbook_url {url!r}: no section #{anchor} in {args.doc}")
    for e in errors:
        print(f"check_runbooks: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"check_runbooks: {count} alerts, every runbook_url names a section of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
