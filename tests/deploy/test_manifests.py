"""deploy/kubernetes and deploy/grafana without a cluster: every manifest
parses, and the invariants the pod depends on hold:
  - saemon is a native sidecar (initContainers, restartPolicy: Always),
  - a medium: Memory emptyDir is mounted at /dev/shm in both containers,
    with sizeLimit >= the ring segments (docs/ring.md layout; the formula in
    deploy/kubernetes/README.md) + the declared headroom,
  - both containers run as the same UID (the ring is 0600),
  - readiness, liveness and startup probes hit /healthz on the port
    saemon.yaml's `metrics:` listens on (and not on loopback),
  - the rules path saemon.yaml names lies in the mount of the rules
    ConfigMap, which holds that file; the same for --config and sinks,
  - the rules ConfigMap keeps a stable name (live reload), the config one
    a hashed one (rollout),
  - Service, ServiceMonitor and the prometheus.io annotations point at the
    metrics port; CPU requests are whole CPUs equal to the limits,
  - the kustomization lists every manifest and every file exists,
  - the dashboard ConfigMap is the dashboard JSON, byte for byte, and
    carries grafana_dashboard: "1".
The saemon config files are also run through `saemon check` (rules, sinks).

usage: test_manifests.py SAEMON_CLI SOURCE_ROOT
Uses python3-yaml (scripts/install-deps.sh).
"""
import os
import posixpath
import re
import subprocess
import sys

import yaml

ROOT = None


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def load_all(path):
    try:
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        fail(f"{path}: {e}")


def quantity(q):
    """Kubernetes resource quantity -> number (bytes, or CPUs)."""
    m = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        fail(f"cannot read the quantity {q!r}")
    mult = {None: 1, "m": 1e-3, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40,
            "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]
    return float(m.group(1)) * mult


def ring_segment_bytes(slots, max_rows, d_in):
    """docs/ring.md: a 4096-byte header, the verdict table (4096 entries x 8
    bytes, rounded up to 4096), then slots x slot_bytes, slot_bytes = the
    64-byte frame header + max_rows fp32 rows, rounded up to 64."""
    verdicts = 4096 * 8
    slot = (64 + max_rows * d_in * 4 + 63) // 64 * 64
    return 4096 + (verdicts + 4095) // 4096 * 4096 + slots * slot


def check_formula_against_serve(cli):
    """The formula is the size `saemon serve` gives the segment: create two
    rings of different geometry and stat them in /dev/shm."""
    import shutil
    import tempfile
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sidecar"))
    from serve_harness import Serve, write_safetensors
    work = tempfile.mkdtemp(prefix="saemon-shm-")
    srv = None
    tag = f"shm{os.getpid()}"
    try:
        d_in = 24
        os.makedirs(os.path.join(work, "sae"))
        w = np.zeros((d_in, 8), np.float32)
        write_safetensors(os.path.join(work, "sae", "sae_weights.safetensors"), {
            "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.zeros(8, np.float32),
            "b_dec": np.zeros(d_in, np.float32)})
        with open(os.path.join(work, "sae", "cfg.json"), "w") as f:
            f.write('{"d_in": %d, "d_sae": 8, "dtype": "float32", "architecture": "standard", '
                    '"metadata": {"hook_name": "core", "model_name": "shm"}}' % d_in)
        with open(os.path.join(work, "rules.yaml"), "w") as f:
            f.write("version: 1\nrules:\n  - {name: r, severity: info, condition: {feature: 1, above: 1}}\n")
        geometry = {f"{tag}-a": (8, 3), f"{tag}-b": (64, 100)}
        rings = ", ".join(f"{{name: {n}, slots: {s}, max_rows: {r}}}" for n, (s, r) in geometry.items())
        with open(os.path.join(work, "saemon.yaml"), "w") as f:
            f.write(f"version: 1\nmetrics: 127.0.0.1:0\ndictionaries:\n  - {{sae: sae, rules: rules.yaml, "
                    f"rings: [{rings}]}}\n")
        srv = Serve(cli, ["--config", os.path.join(work, "saemon.yaml")], os.path.join(work, "serve.log"))
        for name, (slots, rows) in geometry.items():
            got = os.stat(f"/dev/shm/saemon-ring.{name}").st_size
            want = ring_segment_bytes(slots, rows, d_in)
            if got != want:
                fail(f"ring {name} ({slots} slots, {rows} rows, d_in {d_in}): {got} bytes in /dev/shm, "
                     f"the formula says {want}")
        print(f"formula: equals the /dev/shm segments saemon serve creates ({len(geometry)} geometries)")
    finally:
        if srv is not None:
            srv.proc.terminate()  # lets it unlink its rings
            srv.proc.wait(timeout=30)
        for name in os.listdir("/dev/shm"):
            if name.startswith(f"saemon-ring.{tag}-"):
                os.unlink(os.path.join("/dev/shm", name))
        shutil.rmtree(work, ignore_errors=True)


def main():
    cli, root = sys.argv[1], sys.argv[2]
    check_formula_against_serve(cli)
    kdir = os.path.join(root, "deploy/kubernetes")

    # -- every YAML parses; the kustomization lists every manifest --
    kust = load_all(os.path.join(kdir, "kustomization.yaml"))[0]
    docs = {}
    for res in kust["resources"]:
        p = os.path.join(kdir, res)
        if not os.path.isfile(p):
            fail(f"kustomization resource {res} does not exist")
        for d in load_all(p):
            for k in ("apiVersion", "kind"):
                if not d.get(k):
                    fail(f"{res}: a document without {k}")
            if not d.get("metadata", {}).get("name"):
                fail(f"{res}: a {d['kind']} without metadata.name")
            docs[d["kind"]] = d
    manifests = {f for f in os.listdir(kdir) if f.endswith(".yaml") and f != "kustomization.yaml"}
    if manifests != set(kust["resources"]):
        fail(f"manifests not in the kustomization: {sorted(manifests - set(kust['resources']))}")
    generated = {}
    for gen in kust["configMapGenerator"]:
        files = {}
        for f in gen["files"]:
            p = os.path.join(kdir, f)
            if not os.path.isfile(p):
                fail(f"configMapGenerator {gen['name']}: {f} does not exist")
            load_all(p)
            files[posixpath.basename(f)] = p
        generated[gen["name"]] = {"files": files, "stable": gen.get("options", {}).get("disableNameSuffixHash")}
    for kind in ("Deployment", "Service", "ServiceMonitor"):
        if kind not in docs:
            fail(f"no {kind} in the kustomization")

    # -- the saemon configuration, through saemon's own checks --
    cfg_path = generated["saemon-config"]["files"]["saemon.yaml"]
    cfg = load_all(cfg_path)[0]
    r = subprocess.run([cli, "check", "--sinks", generated["saemon-config"]["files"]["sinks.yaml"]],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"saemon check --sinks: {r.stdout}{r.stderr}")
    for f in generated["saemon-rules"]["files"].values():
        r = subprocess.run([cli, "check", f], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"saemon check {f}: {r.stdout}{r.stderr}")

    # -- the pod --
    dep = docs["Deployment"]
    tmpl = dep["spec"]["template"]
    pod = tmpl["spec"]
    sidecars = [c for c in pod.get("initContainers", []) if c["name"] == "saemon"]
    if len(sidecars) != 1:
        fail("saemon must be an initContainers entry (a native sidecar)")
    sc = sidecars[0]
    if sc.get("restartPolicy") != "Always":
        fail("the saemon initContainer needs restartPolicy: Always (a native sidecar), or the model never starts")
    if pod.get("initContainers", [])[0]["name"] != "saemon":
        fail("saemon should be the first initContainer: it starts before anything else")
    model = [c for c in pod["containers"]]
    if not model:
        fail("no model container")
    everyone = [sc] + model
    if dep["spec"]["selector"]["matchLabels"].items() - tmpl["metadata"]["labels"].items():
        fail("the Deployment's selector does not match its pod labels")

    vols = {v["name"]: v for v in pod["volumes"]}
    for c in everyone:
        shm = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/dev/shm"]
        if len(shm) != 1:
            fail(f"container {c['name']}: /dev/shm must be mounted (the ring lives there)")
        v = vols.get(shm[0]["name"], {})
        if v.get("emptyDir", {}).get("medium") != "Memory":
            fail(f"container {c['name']}: /dev/shm must be an emptyDir with medium: Memory")
        if shm[0].get("subPath"):
            fail(f"container {c['name']}: /dev/shm mounted with subPath")
    shm_names = {[m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"][0]["name"] for c in everyone}
    if len(shm_names) != 1:
        fail(f"the containers mount different volumes at /dev/shm: {shm_names}")
    shm_vol = vols[shm_names.pop()]

    def uid(c):
        return c.get("securityContext", {}).get("runAsUser", pod.get("securityContext", {}).get("runAsUser"))
    uids = {c["name"]: uid(c) for c in everyone}
    if None in uids.values() or len(set(uids.values())) != 1:
        fail(f"every container must run as one explicit UID (the ring is mode 0600): {uids}")

    # sizeLimit >= the rings' segments + headroom
    ann = tmpl["metadata"].get("annotations", {})
    d_in = int(ann.get("saemon.io/ring-d-in", 0))
    headroom = int(ann.get("saemon.io/shm-headroom-bytes", 0))
    if d_in <= 0:
        fail("the pod template needs the saemon.io/ring-d-in annotation (the dictionary's d_in)")
    need = headroom
    for d in cfg["dictionaries"]:
        for ring in d["rings"]:
            ring = ring if isinstance(ring, dict) else {"name": ring}
            need += ring_segment_bytes(int(ring.get("slots", 256)), int(ring.get("max_rows", 64)), d_in)
    limit = shm_vol["emptyDir"].get("sizeLimit")
    if limit is None or quantity(limit) < need:
        fail(f"/dev/shm sizeLimit {limit} < {need} bytes (rings for d_in {d_in} + headroom {headroom})")
    print(f"/dev/shm: sizeLimit {limit} >= {need / 2 ** 20:.2f} MiB (rings for d_in {d_in} + headroom)")

    # probes on /healthz at the metrics port
    m = re.fullmatch(r"(.+):(\d+)", str(cfg["metrics"]))
    if not m:
        fail(f"saemon.yaml metrics: {cfg['metrics']!r} is not HOST:PORT")
    if m.group(1) in ("127.0.0.1", "localhost", "::1", "[::1]"):
        fail("saemon.yaml metrics listens on loopback: kubelet probes and Prometheus use the pod IP")
    metrics_port = int(m.group(2))
    ports = {p.get("name"): p["containerPort"] for p in sc.get("ports", [])}
    if metrics_port not in ports.values():
        fail(f"the saemon container does not declare port {metrics_port}")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        h = sc.get(probe, {}).get("httpGet")
        if not h:
            fail(f"saemon has no {probe} httpGet")
        port = ports.get(h["port"], h["port"])
        if h.get("path") != "/healthz" or port != metrics_port:
            fail(f"{probe}: {h} is not /healthz on port {metrics_port}")

    # config, sinks and rules paths vs the ConfigMap mounts
    mounts = {mt["mountPath"]: mt for mt in sc["volumeMounts"]}

    def configmap_at(path):
        """(ConfigMap name, file) serving `path` in the saemon container."""
        best = None
        for mp, mt in mounts.items():
            if path.startswith(mp.rstrip("/") + "/") and (best is None or len(mp) > len(best)):
                best = mp
        if best is None:
            return None, None
        mt = mounts[best]
        if mt.get("subPath"):
            fail(f"{best}: a subPath mount is never updated when its ConfigMap changes")
        cm = vols[mt["name"]].get("configMap", {}).get("name")
        return cm, path[len(best.rstrip("/")) + 1:]

    args = sc.get("args", [])
    if "--config" not in args:
        fail("saemon is not started with --config")
    for what, path in [("--config", args[args.index("--config") + 1]), ("sinks", cfg["sinks"])] + \
            [(f"rules of {d['name']}", d["rules"]) for d in cfg["dictionaries"]]:
        cm, name = configmap_at(path)
        if cm not in generated or name not in generated[cm]["files"]:
            fail(f"{what} {path}: not a file of a mounted ConfigMap (mounted: {cm}, {name})")
        if what.startswith("rules") and not generated[cm]["stable"]:
            fail(f"{what}: the rules ConfigMap must keep its name (disableNameSuffixHash) to reload in place")
        if what == "--config" and generated[cm]["stable"]:
            fail("saemon.yaml changes need a new pod: its ConfigMap should get a hashed name")
        print(f"{what}: {path} is {name} of ConfigMap {cm}")
    for d in cfg["dictionaries"]:
        if not any(d["sae"].startswith(mp.rstrip("/") + "/") for mp in mounts):
            fail(f"dictionary {d['name']}: {d['sae']} is not on a mounted volume")

    # CPU: whole CPUs, requests = limits (exclusive cores under the static CPU manager)
    for c in everyone:
        res = c.get("resources", {})
        req, lim = res.get("requests", {}).get("cpu"), res.get("limits", {}).get("cpu")
        if req is None:
            fail(f"container {c['name']} has no CPU request")
        if c is sc and (quantity(req) != int(quantity(req)) or lim is None or quantity(lim) != quantity(req)):
            fail(f"saemon: CPU requests {req} / limits {lim} must be equal whole CPUs to keep it off the model's cores")

    # Service, ServiceMonitor, annotations
    svc, sm = docs["Service"], docs["ServiceMonitor"]
    if svc["spec"]["selector"].items() - tmpl["metadata"]["labels"].items():
        fail("the Service does not select the pod")
    sports = {p["name"]: p for p in svc["spec"]["ports"]}
    tp = sports.get("metrics", {}).get("targetPort")
    if ports.get(tp, tp) != metrics_port:
        fail(f"the Service's metrics port targets {tp}, not {metrics_port}")
    if sm["spec"]["selector"]["matchLabels"].items() - svc["metadata"].get("labels", {}).items():
        fail("the ServiceMonitor does not select the Service")
    for ep in sm["spec"]["endpoints"]:
        if ep.get("port") not in sports or ep.get("path", "/metrics") != "/metrics":
            fail(f"ServiceMonitor endpoint {ep} is not the Service's metrics port")
    if svc["metadata"]["name"] != "saemon":
        fail("the Service should be called saemon: its name is the job label the alert rules match")
    if ann.get("prometheus.io/scrape") != "true" or int(ann.get("prometheus.io/port", 0)) != metrics_port or \
            ann.get("prometheus.io/path") != "/metrics":
        fail(f"prometheus.io annotations do not point at :{metrics_port}/metrics")
    print("pod: native sidecar, shared /dev/shm, one UID, probes on /healthz, Service + ServiceMonitor + annotations")

    # the dashboard ConfigMap
    gdir = os.path.join(root, "deploy/grafana")
    r = subprocess.run([sys.executable, os.path.join(gdir, "make-configmap.py"), "--check"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        fail(r.stderr)
    cm = load_all(os.path.join(gdir, "saemon-dashboard-configmap.yaml"))[0]
    with open(os.path.join(gdir, "saemon-dashboard.json")) as f:
        text = f.read()
    if cm["metadata"]["labels"].get("grafana_dashboard") != "1":
        fail('the dashboard ConfigMap needs the label grafana_dashboard: "1"')
    if cm["data"].get("saemon-dashboard.json") != text:
        fail("the dashboard ConfigMap does not hold saemon-dashboard.json byte for byte")
    print("dashboard ConfigMap: generated from the JSON, identical, labelled grafana_dashboard: \"1\"")
    import json
    dash = json.loads(text)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource" or \
            variables["datasource"].get("query") != "prometheus":
        fail("the dashboard needs a datasource variable of type prometheus")
    for name in ("dictionary", "ring"):
        if variables.get(name, {}).get("type") != "query":
            fail(f"the dashboard needs a '{name}' query variable")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        fail("dashboard panel ids are not unique")
    for p in dash["panels"]:
        for t in p.get("targets", []):
            if p.get("datasource", {}).get("uid") != "${datasource}" or \
                    t.get("datasource", {}).get("uid") != "${datasource}":
                fail(f"panel {p['title']!r}: every query must use the $datasource variable")
            for var in re.findall(r"\$(\w+)", t["expr"]):
                if var not in variables and not var.startswith("__"):
                    fail(f"panel {p['title']!r}: ${var} is not a dashboard variable")
    print(f"dashboard: {len(ids)} panels, unique ids, every query on $datasource, variables defined")
    print("PASS")


if __name__ == "__main__":
    main()
