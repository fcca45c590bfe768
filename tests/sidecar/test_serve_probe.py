"""`saemon serve --config` with a dense probe beside an SAE on the same hook:
two dictionaries at once (each with its ring, fed by two producers of the
same activations); each one's alerts equal `saemon run` on the recording, a
probe rule names its probe by name (the probe folder's labels.json) and its
alerts carry the name, and /metrics counts tokens and alerts per dictionary.

usage: test_serve_probe.py SAEMON_CLI SOURCE_ROOT
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import Serve, fail, write_safetensors  # noqa: E402

HOOK = "blocks.3.hook_resid_post"
D_IN, D_SAE = 32, 24


def alerts_by_dict(path):
    out = {}
    with open(path) as f:
        for line in f:
            a = json.loads(line)
            a.pop("timestamp", None)
            a.pop("dictionary", None)
            a.pop("ring", None)  # serve names the ring an alert came from; run has none
            a.pop("replica", None)
            out.setdefault(a["rule"].split("-")[0], []).append(json.dumps(a, sort_keys=True))
    return {k: sorted(v) for k, v in out.items()}


def main():
    cli, source = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="saemon-probe-serve-")
    try:
        g = np.random.default_rng(7)
        w = g.standard_normal((D_IN, D_SAE)).astype(np.float32) / np.sqrt(D_IN) * 2
        sae = os.path.join(work, "sae")
        os.makedirs(sae)
        write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
            "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.full(D_SAE, -0.3, np.float32),
            "b_dec": np.zeros(D_IN, np.float32)})
        with open(os.path.join(sae, "cfg.json"), "w") as f:
            json.dump({"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "architecture": "standard",
                       "apply_b_dec_to_input": True, "normalize_activations": "none",
                       "metadata": {"hook_name": HOOK, "model_name": "generated"}}, f)
        np.savez(os.path.join(work, "m.npz"), coef_=g.standard_normal((2, D_IN)).astype(np.float32),
                 intercept_=np.array([-1.0, 0.5], np.float32))
        probe = os.path.join(work, "probe")
        subprocess.run(["/usr/bin/python3", os.path.join(source, "scripts", "probe_convert.py"),
                        os.path.join(work, "m.npz"), "--out", probe, "--names", "alpha,beta", "--hook", HOOK],
                       check=True)
        acts = os.path.join(work, "acts.npy")
        np.save(acts, g.standard_normal((4, 50, D_IN)).astype(np.float32))
        sae_rules = os.path.join(work, "sae.yaml")
        with open(sae_rules, "w") as f:
            f.write("version: 1\nrules:\n  - name: sae-hot\n    condition: {feature: 2, above: 0.6}\n")
        probe_rules = os.path.join(work, "probe.yaml")
        with open(probe_rules, "w") as f:
            f.write(f"version: 1\nfeature_labels: {json.dumps(os.path.join(probe, 'labels.json'))}\nrules:\n"
                    "  - name: probe-alpha\n    condition: {feature: alpha, above: 0.8}\n"
                    "  - name: probe-beta\n    for: 2\n    condition: {feature: beta, above: 0.7}\n")
        pid = os.getpid()
        alerts = os.path.join(work, "alerts.jsonl")
        cfg = os.path.join(work, "saemon.yaml")
        with open(cfg, "w") as f:
            f.write(f"""version: 1
metrics: 127.0.0.1:0
resolved: true
alerts: alerts.jsonl
dictionaries:
  - name: sae
    sae: {sae}
    hook: {HOOK}
    rules: {sae_rules}
    rings: [prs-{pid}]
  - name: probe
    sae: {probe}
    hook: {HOOK}
    rules: {probe_rules}
    rings: [prp-{pid}]
""")
        srv = Serve(cli, ["--config", cfg], os.path.join(work, "serve.log"))
        procs = [subprocess.Popen([cli, "produce", "--ring", f"{r}-{pid}", "--input", acts, "--lossless", "5000",
                                   "--hook", HOOK], stderr=subprocess.DEVNULL) for r in ("prs", "prp")]
        for p in procs:
            if p.wait(timeout=120) != 0:
                fail("saemon produce failed")
        for d in ("sae", "probe"):
            srv.wait_value("saemon_tokens_encoded_total", 200, dictionary=d)
            srv.wait_value("saemon_streams_ended_total", 4, dictionary=d)
        metrics = {d: srv.value("saemon_alerts_total", dictionary=d, status="firing") for d in ("sae", "probe")}
        rc, log = srv.stop()
        if rc != 0:
            fail(f"saemon serve exited {rc}:\n{log}")
        got = alerts_by_dict(alerts)
        for tag, d, rules in (("sae", sae, sae_rules), ("probe", probe, probe_rules)):
            ref = os.path.join(work, f"ref-{tag}.jsonl")
            subprocess.run([cli, "run", "--sae", d, "--rules", rules, "--input", acts, "--alerts", ref, "--resolved"],
                           check=True, stderr=subprocess.DEVNULL)
            want = alerts_by_dict(ref).get(tag, [])
            if not want:
                fail(f"{tag}: `saemon run` raised no alert; the comparison proves nothing")
            if got.get(tag, []) != want:
                fail(f"{tag}: serve raised {len(got.get(tag, []))} alert events, run {len(want)}")
            firing = sum(1 for a in want if '"status": "firing"' in a)
            if metrics[tag] != firing:
                fail(f"{tag}: /metrics saemon_alerts_total firing {metrics[tag]}, alerts {firing}")
            print(f"{tag}: {len(want)} alert events identical to `saemon run`, {firing} firing on /metrics")
        names = {ft.get("label") for a in got["probe"] for ft in json.loads(a)["features"]}
        if not names <= {"alpha", "beta"} or not names:
            fail(f"probe alerts carry the probe names as labels: {names}")
        rules_fired = {json.loads(a)["rule"] for a in got["probe"]}
        if rules_fired != {"probe-alpha", "probe-beta"}:
            fail(f"both probe rules should fire: {rules_fired}")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
