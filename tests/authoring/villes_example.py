"""The worked example of docs/authoring.md on the real villes model: label the
hyphen after "saint"/"sainte" in commune names, find the feature with
`saemon features`, calibrate its threshold on names without that hyphen, and
backtest it against the hand-picked rule (#109 > 1.0) on held-out names.

usage: villes_example.py SAEMON_EXE SOURCE_DIR SHARED_DIR [WORK_DIR]
Exits 77 (skip) when the shared villes model or PyTorch is absent."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SAEMON, SOURCE, SHARED = sys.argv[1:4]
MODEL = os.path.join(SHARED, "data", "sae", "villes-transformer")
if not os.path.isdir(MODEL):
    print(f"SKIP: {MODEL} absent")
    sys.exit(77)
try:
    import torch
except ImportError:
    print("SKIP: PyTorch (python3-torch) absent")
    sys.exit(77)
sys.path.insert(0, os.path.join(SOURCE, "tests", "sidecar"))
import villes  # noqa: E402

HAND = "version: 1\nrules:\n  - name: hand-109\n    condition: {feature: 109, above: 1.0}\n"


def saemon(*args):
    p = subprocess.run([SAEMON, *args], capture_output=True, text=True)
    if p.returncode:
        print(p.stdout, p.stderr)
        raise SystemExit(f"saemon {args[0]} exited {p.returncode}")
    return p.stdout


@torch.no_grad()
def record(model, vocab, names, path):
    """One stream of every name's tokens (<SOS> chars <EOS>) at the SAE's hook
    (the block output, before the final norm), and the saint-/sainte- hyphens."""
    rows, spans, at = [], [], 0
    for i in range(0, len(names), 256):
        chunk = names[i:i + 256]
        toks = [villes.encode_name(n, vocab) for n in chunk]
        width = max(len(t) for t in toks)
        batch = torch.tensor([t + [0] * (width - len(t)) for t in toks])
        acts = model.core(model.embedding(batch)).numpy()
        for n, t, a in zip(chunk, toks, acts):
            rows.append(a[:len(t)])
            for prefix in ("saint-", "sainte-"):
                if n.startswith(prefix):  # token 0 is <SOS>: the hyphen is token len(prefix)
                    spans.append({"stream": 0, "start": at + len(prefix), "end": at + len(prefix) + 1,
                                  "label": "saint-hyphen"})
            at += len(t)
    np.save(path, np.concatenate(rows).astype(np.float32))
    with open(path.replace(".npy", ".labels.jsonl"), "w") as f:
        for s in spans:
            f.write(json.dumps(s) + "\n")
    return len(spans)


def main():
    work = sys.argv[4] if len(sys.argv) > 4 else tempfile.mkdtemp(prefix="saemon-villes-")
    os.makedirs(work, exist_ok=True)
    model, vocab, names = villes.load(MODEL)
    rng = np.random.default_rng(20)
    names = [names[i] for i in rng.permutation(len(names))]
    saint = [n for n in names if n.startswith(("saint-", "sainte-"))]
    other = [n for n in names if not n.startswith(("saint-", "sainte-"))]
    # train: 400 saint names among 2000 others; benign: 3000 others; test: 400 + 2000 fresh
    train = saint[:400] + other[:2000]
    test = saint[400:800] + other[2000:4000]
    benign = other[4000:7000]
    rng.shuffle(train)
    rng.shuffle(test)
    paths = {k: os.path.join(work, k + ".npy") for k in ("train", "test", "benign")}
    for k, ns in (("train", train), ("test", test), ("benign", benign)):
        record(model, vocab, ns, paths[k])
    sae = os.path.join(MODEL, "saelens")
    hand = os.path.join(work, "hand.yaml")
    with open(hand, "w") as f:
        f.write(HAND)
    lab = lambda k: paths[k].replace(".npy", ".labels.jsonl")  # noqa: E731

    print("$ saemon features --sae saelens --input train.npy --labels train.labels.jsonl --top 5 "
          "--rules-out found.yaml")
    found = os.path.join(work, "found.yaml")
    out = saemon("features", "--sae", sae, "--input", paths["train"], "--labels", lab("train"), "--top", "5",
                 "--rules-out", found)
    print(out)
    js = json.loads(saemon("features", "--sae", sae, "--input", paths["train"], "--labels", lab("train"),
                           "--top", "1", "--format", "json"))
    top = js["features"][0]["latent"]
    # keep the best rule only
    text = open(found).read()
    head, rules = text.split("rules:\n", 1)
    with open(found, "w") as f:
        f.write(head + "rules:\n" + "  - name:" + rules.split("  - name:")[1])

    # the hand rule's false alarms on names without the hyphen: the target for the found rule
    bj = json.loads(saemon("backtest", hand, "--sae", sae, "--negatives", paths["benign"], "--format", "json"))
    hand_rate = bj["files"][0]["rules"][0]["alerts_per_1k"]
    target = max(hand_rate, 0.1)
    tuned = os.path.join(work, "tuned.yaml")
    print(f"$ saemon calibrate found.yaml --sae saelens --input benign.npy --max-alerts-per-1k {target:.4g} "
          "--positives ... -o tuned.yaml")
    print(saemon("calibrate", found, "--sae", sae, "--input", paths["benign"], "--max-alerts-per-1k",
                 f"{target:.6g}", "-o", tuned))
    print("$ saemon backtest hand.yaml tuned.yaml --sae saelens --input test.npy --labels test.labels.jsonl")
    print(saemon("backtest", hand, tuned, "--sae", sae, "--input", paths["test"], "--labels", lab("test")))

    # a dense probe on the raw activation for the same label, in the same table
    probe = os.path.join(work, "probe")
    print("$ scripts/probe_fit.py --input train.npy --labels train.labels.jsonl --out probe --name saint-hyphen")
    p = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "scripts", "probe_fit.py"), "--input",
                        paths["train"], "--labels", lab("train"), "--out", probe, "--name", "saint-hyphen",
                        "--hook", "core"], capture_output=True, text=True)
    print(p.stdout, p.stderr)
    probe_rules = os.path.join(work, "probe.yaml")
    with open(probe_rules, "w") as f:
        f.write("version: 1\nrules:\n  - name: probe-saint-hyphen\n    condition: {feature: 0, above: 0.5}\n")
    probe_bt = None
    if p.returncode == 0:
        print("$ saemon backtest tuned.yaml probe.yaml --sae saelens --sae-b probe --input test.npy "
              "--labels test.labels.jsonl")
        print(saemon("backtest", tuned, probe_rules, "--sae", sae, "--sae-b", probe, "--input", paths["test"],
                     "--labels", lab("test")))
        probe_bt = json.loads(saemon("backtest", tuned, probe_rules, "--sae", sae, "--sae-b", probe, "--input",
                                     paths["test"], "--labels", lab("test"), "--format", "json"))["files"][1]["rules"][0]
    else:
        print("note: no probe (scikit-learn absent?)")
    bt = json.loads(saemon("backtest", hand, tuned, "--sae", sae, "--input", paths["test"], "--labels", lab("test"),
                           "--format", "json"))
    h, t = bt["files"][0]["rules"][0], bt["files"][1]["rules"][0]
    ok = True
    if top != 109:
        print(f"note: the top feature is {top}, not the hand-picked 109")
    for k in ("precision", "recall"):
        if t[k] is None or h[k] is None or t[k] < h[k] - 0.02:
            print(f"FAIL: the found rule's {k} {t[k]} is below the hand-picked rule's {h[k]}")
            ok = False
    print("found feature", top, "precision", t["precision"], "recall", t["recall"], "| hand-picked #109 precision",
          h["precision"], "recall", h["recall"])
    if probe_bt:
        print("dense probe precision", probe_bt["precision"], "recall", probe_bt["recall"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
