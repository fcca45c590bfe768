"""`saemon produce` -> `saemon serve` gives exactly the alerts `saemon run`
gives on the same recording and rules (timestamps aside): the live path and
the replay path are one and the same evaluation.

Two recordings: the villes activations ([2001, 128], one stream) with the
villes rules when ../shared is present, and a generated [6, 40, 32] recording
(six streams, --stream-per-sequence) with windowed and cooldown rules always.

usage: test_produce_vs_run.py SAEMON_CLI SOURCE_DIR [SHARED_DIR]
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

GENERATED_RULES = """version: 1
rules:
  - name: strong
    severity: critical
    condition: {feature: 3, above: 0.8}
    for: 2
  - name: either
    severity: warning
    condition:
      any:
        - {feature: 5, above: 0.5}
        - {feature: 9, above: 0.5}
    cooldown: 3
  - name: windowed
    severity: informational
    condition: {feature: 1, above: 0.2}
    window: {count_at_least: 3, tokens: 5}
"""


def generated(work):
    g = np.random.default_rng(5)
    d_in, d_sae = 32, 16
    w = g.standard_normal((d_in, d_sae)).astype(np.float32) / np.sqrt(d_in) * 2
    sae = os.path.join(work, "gen-sae")
    os.makedirs(sae)
    write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
        "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.full(d_sae, -0.2, np.float32),
        "b_dec": np.zeros(d_in, np.float32)})
    with open(os.path.join(sae, "cfg.json"), "w") as f:
        json.dump({"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": "blocks.0.hook_resid_post", "model_name": "generated"}}, f)
    acts = os.path.join(work, "gen-acts.npy")
    np.save(acts, g.standard_normal((6, 40, d_in)).astype(np.float32))
    rules = os.path.join(work, "gen-rules.yaml")
    with open(rules, "w") as f:
        f.write(GENERATED_RULES)
    return sae, acts, rules, ["--stream-per-sequence"]


def alerts_of(path):
    with open(path) as f:
        out = []
        for line in f:
            a = json.loads(line)
            a.pop("timestamp", None)
            a.pop("ring", None)  # serve says which ring (fleet identity); run has none
            out.append(json.dumps(a, sort_keys=True))
    return sorted(out)


def compare(cli, work, name, sae, acts, rules, produce_flags):
    ring = f"pvr-{name}-{os.getpid()}"
    live = os.path.join(work, f"{name}-live.jsonl")
    replay = os.path.join(work, f"{name}-replay.jsonl")
    srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--metrics", "127.0.0.1:0",
                      "--alerts", live, "--resolved"], os.path.join(work, f"{name}-serve.log"))
    n = int(np.prod(np.load(acts, mmap_mode="r").shape[:-1]))
    subprocess.run([cli, "produce", "--ring", ring, "--input", acts, "--lossless", "5000"] + produce_flags,
                   check=True)
    srv.wait_value("saemon_tokens_encoded_total", n)
    rc, log = srv.stop()
    if rc != 0:
        fail(f"{name}: saemon serve exited {rc}:\n{log}")
    subprocess.run([cli, "run", "--sae", sae, "--rules", rules, "--input", acts, "--alerts", replay, "--resolved"],
                   check=True, stderr=subprocess.DEVNULL)
    a, b = alerts_of(live), alerts_of(replay)
    if not b:
        fail(f"{name}: `saemon run` raised no alert: the comparison would prove nothing")
    if a != b:
        only_live = sorted(set(a) - set(b))[:3]
        only_run = sorted(set(b) - set(a))[:3]
        fail(f"{name}: serve raised {len(a)} alerts, run {len(b)}; only serve: {only_live}; only run: {only_run}")
    print(f"{name}: {n} tokens, {len(a)} alert events identical in `produce | serve` and `run`")


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cli, source = sys.argv[1], sys.argv[2]
    shared = sys.argv[3] if len(sys.argv) > 3 else ""
    work = tempfile.mkdtemp(prefix="saemon-pvr-")
    try:
        compare(cli, work, "generated", *generated(work))
        villes = os.path.join(shared, "data", "sae", "villes-transformer")
        if shared and os.path.isdir(villes):
            compare(cli, work, "villes", os.path.join(villes, "saelens"), os.path.join(villes, "acts.npy"),
                    os.path.join(source, "monitors", "examples", "villes.yaml"), [])
        else:
            print("SKIP-PART: ../shared absent: the villes recording was not replayed")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
