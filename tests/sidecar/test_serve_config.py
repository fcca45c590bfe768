"""`saemon serve --config`: two dictionaries (two hook points), each with its
own rules and ring, fed by two producers at once; each dictionary's alerts
(captured top features of `capture:` rules included) equal `saemon run` on
its own recording, /metrics labels them apart, a config
typo is refused with file:line:column, and SIGHUP with a broken rule file
keeps the old rules and counts the failure.

usage: test_serve_config.py SAEMON_CLI
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import Serve, fail, write_safetensors  # noqa: E402

RULES = """version: 1
rules:
  - name: hot-{tag}
    severity: warning
    condition: {{feature: {feat}, above: 0.6}}
  - name: pair-{tag}
    severity: critical
    condition:
      all:
        - {{feature: {feat}, above: 0.3}}
        - {{feature: {feat2}, above: 0.3}}
    for: 2
  - name: cap-{tag}
    severity: informational
    condition: {{feature: {feat2}, above: 0.9}}
    capture: {{features: top, count: 5, window: 4}}
"""


def make_dict(work, tag, d_in, d_sae, seed):
    g = np.random.default_rng(seed)
    w = g.standard_normal((d_in, d_sae)).astype(np.float32) / np.sqrt(d_in) * 2
    sae = os.path.join(work, f"sae-{tag}")
    os.makedirs(sae)
    write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
        "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.full(d_sae, -0.3, np.float32),
        "b_dec": np.zeros(d_in, np.float32)})
    with open(os.path.join(sae, "cfg.json"), "w") as f:
        json.dump({"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": f"blocks.{tag}.hook_resid_post", "model_name": "generated"}}, f)
    acts = os.path.join(work, f"acts-{tag}.npy")
    np.save(acts, g.standard_normal((4, 50, d_in)).astype(np.float32))
    rules = os.path.join(work, f"rules-{tag}.yaml")
    with open(rules, "w") as f:
        f.write(RULES.format(tag=tag, feat=2, feat2=5))
    return sae, acts, rules


def alerts_by_dict(path):
    out = {}
    with open(path) as f:
        for line in f:
            a = json.loads(line)
            a.pop("timestamp", None)
            a.pop("ring", None)  # serve says which ring (fleet identity); run has none
            out.setdefault(a["rule"].split("-")[1], []).append(json.dumps(a, sort_keys=True))
    return {k: sorted(v) for k, v in out.items()}


def main():
    cli = sys.argv[1]
    work = tempfile.mkdtemp(prefix="saemon-cfg-")
    try:
        # 1. a typo is refused at its line and column
        bad = os.path.join(work, "bad.yaml")
        with open(bad, "w") as f:
            f.write("version: 1\ndictionaries:\n  - sae: x\n    rules: y\n    ringz: [a]\n")
        r = subprocess.run([cli, "serve", "--config", bad], capture_output=True, text=True)
        if r.returncode != 1 or not re.search(r"bad\.yaml:5:5: .*ringz", r.stderr):
            fail(f"a config typo: exit {r.returncode}, message {r.stderr!r}; expected exit 1 at bad.yaml:5:5")
        with open(bad, "w") as f:
            f.write("version: 1\ndictionaries:\n  - {sae: x, rules: y, rings: [a]}\n"
                    "  - {sae: z, rules: y, rings: [a]}\n")
        r = subprocess.run([cli, "serve", "--config", bad], capture_output=True, text=True)
        if r.returncode != 1 or "listed twice" not in r.stderr:
            fail(f"a ring used twice: exit {r.returncode}, {r.stderr!r}")
        print("config errors: file:line:column for a typo, one consumer per ring")

        # 2. two dictionaries, two rings, two producers at once
        a = make_dict(work, "a", 32, 24, 1)
        b = make_dict(work, "b", 48, 40, 2)
        pid = os.getpid()
        alerts = os.path.join(work, "alerts.jsonl")
        cfg = os.path.join(work, "saemon.yaml")
        with open(cfg, "w") as f:
            f.write(f"""version: 1
metrics: 127.0.0.1:0
resolved: true
alerts: alerts.jsonl
dictionaries:
  - name: layer-a
    sae: {os.path.basename(a[0])}
    hook: blocks.a.hook_resid_post
    rules: {os.path.basename(a[2])}
    rings: [{{name: cfg-a-{pid}, slots: 64, max_rows: 8}}]
  - name: layer-b
    sae: {b[0]}
    hook: blocks.b.hook_resid_post
    rules: {b[2]}
    batch: 16
    rings: [cfg-b-{pid}]
""")
        srv = Serve(cli, ["--config", cfg], os.path.join(work, "serve.log"))
        procs = [subprocess.Popen([cli, "produce", "--ring", f"cfg-{t}-{pid}", "--input", d[1], "--lossless", "5000",
                                   "--hook", f"blocks.{t}.hook_resid_post"], stderr=subprocess.DEVNULL)
                 for t, d in (("a", a), ("b", b))]
        for p in procs:
            if p.wait(timeout=120) != 0:
                fail("saemon produce failed")
        srv.wait_value("saemon_tokens_encoded_total", 200, dictionary="layer-a")
        srv.wait_value("saemon_tokens_encoded_total", 200, dictionary="layer-b")
        srv.wait_value("saemon_streams_ended_total", 4, dictionary="layer-b")
        # what each dictionary holds: read into memory, or mapped from a pack
        held = srv.value("saemon_dictionary_bytes", dictionary="layer-a", kind="resident")
        if not held or held <= 0 or srv.value("saemon_dictionary_bytes", dictionary="layer-a", kind="mapped") != 0:
            fail(f"saemon_dictionary_bytes: resident {held}")

        # 3. a broken rule file on SIGHUP: old rules stay, the failure is counted
        with open(a[2], "a") as f:
            f.write("  - name: broken\n    condition: {feature: 2, abve: 1}\n")
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_value("saemon_rules_reload_total", 1, dictionary="layer-a", result="failure")
        srv.wait_value("saemon_rules_reload_total", 1, dictionary="layer-b", result="success")
        rc, log = srv.stop()
        if rc != 0:
            fail(f"saemon serve exited {rc}:\n{log}")
        if "rules not reloaded" not in log:
            fail("the failed reload was not logged:\n" + log)
        got = alerts_by_dict(alerts)
        for tag, (sae, acts, rules) in (("a", a), ("b", b)):
            with open(rules) as f:  # undo the breakage for the reference run
                text = f.read().split("  - name: broken")[0]
            with open(rules, "w") as f:
                f.write(text)
            ref = os.path.join(work, f"ref-{tag}.jsonl")
            subprocess.run([cli, "run", "--sae", sae, "--rules", rules, "--input", acts, "--alerts", ref,
                            "--resolved"], check=True, stderr=subprocess.DEVNULL)
            want = alerts_by_dict(ref).get(tag, [])
            if not want:
                fail(f"dictionary {tag}: `saemon run` raised no alert; the comparison proves nothing")
            if got.get(tag, []) != want:
                fail(f"dictionary {tag}: serve raised {len(got.get(tag, []))} alert events, run {len(want)}")
            captured = sum(1 for a in want if '"captured"' in a)
            if not captured:
                fail(f"dictionary {tag}: no alert carried captured features; capture was not exercised")
            print(f"dictionary {tag}: {len(want)} alert events identical to `saemon run` "
                  f"({captured} with captured top features)")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
