"""deploy/prometheus: `promtool check rules` and `promtool test rules` (Debian's
prometheus package), and the conventions the unit tests cannot see: every
alert has a severity label, summary / description / runbook_url annotations,
a runbook_url anchor that is a section of docs/runbook.md, and unit tests
that show it both firing and not firing.

usage: test_prometheus_rules.py SOURCE_ROOT
Exit 77 (skipped) when promtool is not installed (scripts/install-deps.sh
installs it).
"""
import os
import re
import shutil
import subprocess
import sys

import yaml


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def runbook_anchors(path):
    """GitHub's anchors of the '## ' headings."""
    anchors = set()
    with open(path) as f:
        for line in f:
            if line.startswith("## "):
                a = re.sub(r"[^a-z0-9 _-]", "", line[3:].strip().lower()).replace(" ", "-")
                anchors.add(a)
    return anchors


def main():
    root = sys.argv[1]
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: promtool not found (Debian package prometheus; scripts/install-deps.sh installs it)")
        sys.exit(77)
    rules = os.path.join(root, "deploy/prometheus/saemon-alerts.yml")
    tests = os.path.join(root, "deploy/prometheus/saemon-alerts.test.yml")
    for args in (["check", "rules", rules], ["test", "rules", tests]):
        r = subprocess.run([promtool] + args, capture_output=True, text=True, timeout=120)
        print(f"promtool {' '.join(args[:2])}: {(r.stdout + r.stderr).strip().splitlines()[-1]}")
        if r.returncode != 0:
            fail(f"promtool {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")

    with open(rules) as f:
        doc = yaml.safe_load(f)
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    records = [r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r]
    anchors = runbook_anchors(os.path.join(root, "docs/runbook.md"))
    for a in alerts:
        name = a["alert"]
        if a.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            fail(f"{name}: severity label must be critical, warning or info")
        ann = a.get("annotations", {})
        for k in ("summary", "description", "runbook_url"):
            if not ann.get(k):
                fail(f"{name}: no '{k}' annotation")
        m = re.fullmatch(r"https://saemon\.invalid/docs/runbook\.md#([a-z0-9-]+)", ann["runbook_url"])
        if not m or m.group(1) not in anchors:
            fail(f"{name}: runbook_url {ann['runbook_url']} is not a section of docs/runbook.md")
        if m.group(1) != name.lower():
            fail(f"{name}: runbook_url should point at #{name.lower()}")
    with open(tests) as f:
        t = yaml.safe_load(f)
    firing, quiet = set(), set()
    for case in t["tests"]:
        for at in case.get("alert_rule_test", []):
            (firing if at.get("exp_alerts") else quiet).add(at["alertname"])
    names = {a["alert"] for a in alerts}
    for name in sorted(names):
        if name not in firing:
            fail(f"{name}: no unit test shows it firing")
        if name not in quiet:
            fail(f"{name}: no unit test shows it not firing")
    unknown = (firing | quiet) - names
    if unknown:
        fail(f"unit tests of alerts that do not exist: {sorted(unknown)}")
    # the PrometheusRule (kube-prometheus-stack) is generated from the same file
    gen = os.path.join(root, "deploy/prometheus/make-prometheusrule.py")
    r = subprocess.run([sys.executable, gen, "--check"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(r.stderr)
    with open(os.path.join(root, "deploy/prometheus/saemon-prometheusrule.yaml")) as f:
        pr = yaml.safe_load(f)
    if pr.get("kind") != "PrometheusRule" or pr["spec"]["groups"] != doc["groups"]:
        fail("saemon-prometheusrule.yaml does not hold the groups of saemon-alerts.yml")
    print("saemon-prometheusrule.yaml: generated from saemon-alerts.yml, same groups")
    print(f"{len(alerts)} alerts, each with severity, summary, description, runbook_url (a docs/runbook.md "
          f"section) and unit tests firing and not firing; {len(records)} recording rules")
    print("PASS")


if __name__ == "__main__":
    main()
