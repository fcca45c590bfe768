"""End to end: a real trained model (the villes character LM) generates names
with the saemon Python producer attached at its SAE's hook; `saemon serve`
encodes the stream with the real SAE and fires rules. Checked:
  1. the features saemon reports for every token equal an offline
     `saemon encode` of the same activations (bit for bit: same kernel, one row
     per call on both sides);
  2. the alerts are exactly those the rules imply on those features;
  3. /metrics counts what was sent, encoded and fired;
  4. after a live rule reload (SIGHUP) to a rule with `action: block`, the
     verdict the model server polls is "block" for exactly the streams whose
     features crossed the threshold — with the default `--encode auto`, i.e.
     only the watched latents encoded, the plan following the reload.
Without ../shared the same runs on a small transformer and SAE built here.

usage: test_villes_e2e.py SAEMON_CLI SOURCE_DIR [SHARED_DIR]
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import torch
except ImportError:  # meson: exit 77 = skipped
    print("SKIP: PyTorch is not installed (Debian: python3-torch; scripts/install-deps.sh installs it)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import villes  # noqa: E402
from serve_harness import Serve, fail, write_safetensors  # noqa: E402


def synthetic_setup(work):
    """No shared data: a small transformer with random weights and an SAE
    whose encoder rows are directions the model's residual stream really
    takes, so some features fire. Rules watch the two most active features."""
    torch.manual_seed(0)
    vocab = ["<pad>", "<SOS>", "<EOS>"] + list("abcdefghijklmnopqrstuvwxyz-")
    model = villes.VillesLM(vocab_size=len(vocab), d_model=64, n_heads=4, d_ff=128)
    model.eval()
    d_in, d_sae = 64, 128
    g = np.random.default_rng(0)
    w_enc = g.standard_normal((d_in, d_sae)).astype(np.float32) / np.sqrt(d_in)
    sae = os.path.join(work, "sae")
    os.makedirs(sae)
    write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
        "W_enc": w_enc, "W_dec": np.ascontiguousarray(w_enc.T), "b_enc": np.full(d_sae, -0.5, np.float32),
        "b_dec": np.zeros(d_in, np.float32)})
    with open(os.path.join(sae, "cfg.json"), "w") as f:
        json.dump({"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": "core", "model_name": "synthetic-villes"}}, f)
    return model, vocab, sae, None


def shared_setup(shared):
    d = os.path.join(shared, "data", "sae", "villes-transformer")
    model, vocab, _ = villes.load(d)
    return model, vocab, os.path.join(d, "saelens"), d


def rules_for(features, thresholds, block=False):
    lines = ["version: 1", "rules:"]
    for i, (feat, thr) in enumerate(zip(features, thresholds)):
        lines += [f"  - name: rule-{i}", "    severity: warning" if i == 0 else "    severity: informational",
                  f"    condition: {{feature: {feat}, above: {thr}}}"]
        if block and i == 0:
            lines += ["    action: block"]
    return "\n".join(lines) + "\n"


def generate_names(model, vocab, producer_mod, ring, n_names, prompts, seed, block_check=False,
                   wait_for_verdicts=None):
    """Generate names one token at a time with the producer attached; return
    per stream the rows the hook published, and what the verdicts did."""
    gen = torch.Generator().manual_seed(seed)
    sent = {}  # stream -> list of rows (every position of the name)
    current = {"stream": 0}

    def record(_module, _inputs, output):
        # Each pass recomputes the whole prefix (no KV cache); like the
        # producer, keep only the positions not seen before: a recomputed
        # earlier position may differ in its last bits.
        rows = output[0].detach().cpu().numpy()
        have = sent.setdefault(current["stream"], [])
        have.extend(rows[len(have):].copy())

    rec = model.core.register_forward_hook(record)
    prod = producer_mod.attach(model, {"core": ring}, stream=lambda: current["stream"],
                               model_id="villes", lossless_us=2_000_000)
    stopped, verdicts, stats = {}, {}, {}
    try:
        for i in range(n_names):
            current["stream"] = 1000 + i
            prompt = prompts[i % len(prompts)]

            def on_token(pos, s=current["stream"]):
                # wait (bounded) for the verdict of the token just published:
                # "block before the next token" (docs/serve.md, the verdict contract)
                if block_check and prod.verdict(s, wait_us=5_000_000) == 4 and s not in stopped:
                    stopped[s] = pos
                    raise StopIteration
            try:
                villes.generate(model, vocab, prompt=prompt, generator=gen, on_token=on_token)
            except StopIteration:
                pass
            # a sequence's verdict is read before it ends (end_stream clears it)
            verdicts[current["stream"]] = prod.verdict(current["stream"], wait_us=5_000_000)
            prod.end_stream(current["stream"])
        if wait_for_verdicts:
            wait_for_verdicts()  # the daemon has encoded every token
        stats = dict(prod.producers["core"].stats)
    finally:
        prod.detach()
        rec.remove()
    sent = {s: np.stack(rows) for s, rows in sent.items()}
    return sent, stopped, verdicts, stats


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cli, source = sys.argv[1], sys.argv[2]
    shared = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("SAEMON_SHARED_DIR", "")
    sys.path.insert(0, os.path.join(source, "producers", "python"))
    import saemon_producer

    work = tempfile.mkdtemp(prefix="saemon-e2e-")
    try:
        if shared and os.path.isdir(os.path.join(shared, "data", "sae", "villes-transformer")):
            model, vocab, sae, _ = shared_setup(shared)
            features, thresholds = [109, 99], [1.0, 1.2]  # "saint-" hyphen, end of name (docs/serve.md)
            prompts = ["", "saint-", "", "sainte-", "la "]
            print("villes model and SAE from", shared)
        else:
            print("SKIP-PART: ../shared absent: synthetic transformer and SAE built in the test")
            model, vocab, sae, _ = synthetic_setup(work)
            features, thresholds = [3, 7], [1.5, 0.5]
            prompts = ["", "a", "b"]
        rules = os.path.join(work, "rules.yaml")
        with open(rules, "w") as f:
            f.write(rules_for(features, thresholds))
        ring = f"e2e-{os.getpid()}"
        alerts = os.path.join(work, "alerts.jsonl")
        feats = os.path.join(work, "features.jsonl")
        srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--hook", "core",
                          "--metrics", "127.0.0.1:0", "--features", feats, "--alerts", alerts, "--resolved",
                          "--batch", "1", "--encode", "all"], os.path.join(work, "serve.log"))

        # Phase 1: generate, then compare everything with an offline encode.
        sent, _, _, stats = generate_names(model, vocab, saemon_producer, ring, 30, prompts, seed=7)
        n_tokens = sum(len(r) for r in sent.values())
        srv.wait_value("saemon_tokens_encoded_total", n_tokens)
        srv.wait_value("saemon_streams_ended_total", len(sent))
        if stats["tokens_dropped"]:
            fail(f"producer dropped {stats['tokens_dropped']} tokens in lossless mode")

        order = sorted(sent)
        acts = np.concatenate([sent[s] for s in order]).astype(np.float32)
        npy = os.path.join(work, "acts.npy")
        np.save(npy, acts)
        offline = os.path.join(work, "offline.jsonl")
        subprocess.run([cli, "encode", "--sae", sae, "--input", npy, "--sparse", offline, "--batch", "1"],
                       check=True, stderr=subprocess.DEVNULL)
        key = [(s, t) for s in order for t in range(len(sent[s]))]
        want = {}
        with open(offline) as f:
            for i, line in enumerate(f):
                o = json.loads(line)
                want[key[i]] = (o["index"], o["value"])
        got = {}
        with open(feats) as f:
            for line in f:
                o = json.loads(line)
                got[(o["stream"], o["token"])] = (o["index"], o["value"])
        if set(got) != set(want):
            fail(f"serve encoded {len(got)} (stream, token) pairs, offline {len(want)}; "
                 f"missing {sorted(set(want) - set(got))[:5]} extra {sorted(set(got) - set(want))[:5]}")
        diff = [k for k in want if got[k] != want[k]]
        if diff:
            fail(f"{len(diff)} tokens differ from the offline encode, e.g. {diff[0]}: {got[diff[0]]} vs {want[diff[0]]}")
        print(f"features: {len(want)} tokens in {len(order)} streams identical to `saemon encode`")

        # Expected alerts from the features: a rule fires when its condition
        # starts to hold within a stream and resolves when it stops holding or
        # the stream ends.
        expected = []
        for r, (feat, thr) in enumerate(zip(features, thresholds)):
            for s in order:
                held = False
                for t in range(len(sent[s])):
                    idx, val = want[(s, t)]
                    v = dict(zip(idx, val)).get(feat, 0.0)
                    if v > thr and not held:
                        expected.append((f"rule-{r}", "firing", s, t))
                    elif v <= thr and held:
                        expected.append((f"rule-{r}", "resolved", s, t))
                    held = v > thr
                if held:
                    expected.append((f"rule-{r}", "resolved", s, len(sent[s]) - 1))

        rc, log = srv.stop()
        if rc != 0:
            fail(f"saemon serve exited {rc}:\n{log}")
        with open(alerts) as f:
            got_alerts = sorted((a["rule"], a["status"], a["stream"], a["token"]) for a in map(json.loads, f))
        if got_alerts != sorted(expected):
            fail(f"alerts differ: got {len(got_alerts)}, expected {len(expected)}; "
                 f"only got {sorted(set(got_alerts) - set(expected))[:5]}, only expected "
                 f"{sorted(set(expected) - set(got_alerts))[:5]}")
        n_fired = sum(1 for a in expected if a[0] == "rule-0" and a[1] == "firing")
        print(f"alerts: {len(expected)} events as the rules imply ({n_fired} firings of rule-0)")
        if n_fired == 0:
            fail("rule-0 never fired: the test would not check anything about alerts")

        # Phase 2: live reload to a blocking rule; verdicts back to the model.
        srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--hook", "core",
                          "--metrics", "127.0.0.1:0", "--batch", "1", "--alerts", alerts],
                    os.path.join(work, "serve2.log"))
        with open(rules + ".new", "w") as f:
            f.write(rules_for(features, thresholds, block=True))
        os.replace(rules + ".new", rules)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_value("saemon_rules_reload_total", 1, result="success")
        time.sleep(0.2)  # the consumer swaps rules between frames; give it one poll period
        sent2, stopped, verdicts, _ = generate_names(
            model, vocab, saemon_producer, ring, 12, prompts, seed=11, block_check=True,
            wait_for_verdicts=lambda: srv.wait_value("saemon_streams_ended_total", 12))
        rc, log = srv.stop()
        if rc != 0:
            fail(f"saemon serve exited {rc} in phase 2:\n{log}")
        # Which streams crossed the threshold, by the offline encode.
        acts2 = np.concatenate([sent2[s] for s in sorted(sent2)]).astype(np.float32)
        np.save(npy, acts2)
        subprocess.run([cli, "encode", "--sae", sae, "--input", npy, "--sparse", offline, "--batch", "1"],
                       check=True, stderr=subprocess.DEVNULL)
        crossed, first_cross = set(), {}
        keys2 = [(s, t) for s in sorted(sent2) for t in range(len(sent2[s]))]
        with open(offline) as f:
            for i, line in enumerate(f):
                o = json.loads(line)
                if dict(zip(o["index"], o["value"])).get(features[0], 0.0) > thresholds[0]:
                    crossed.add(keys2[i][0])
                    first_cross.setdefault(keys2[i][0], keys2[i][1])
        # issue 21 item 3: with the wait, every offending generation stops
        # before the token after the offending one (before: 6 of 20)
        late = {s: (stopped.get(s), t) for s, t in first_cross.items() if stopped.get(s) != t + 1}
        if late:
            fail(f"generations not stopped right after the offending token (stopped at, offending): {late}")
        blocked = {s for s, v in verdicts.items() if v == 4}
        if blocked != crossed:
            fail(f"verdict block on streams {sorted(blocked)}, expected {sorted(crossed)}")
        print(f"verdicts: {len(blocked)} of {len(sent2)} streams blocked, exactly those whose feature "
              f"{features[0]} crossed {thresholds[0]}; the generator stopped all {len(stopped)} right after "
              f"the offending token")
        if shared and not blocked:
            fail("no stream was blocked: the verdict path was not exercised")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
