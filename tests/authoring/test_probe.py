"""Dense linear probes as a dictionary: the score saemon computes equals
scikit-learn's predict_proba to float32 accuracy, on every kernel variant;
probes convert from .npz; features/backtest run on them; bad probe folders
are refused with the file named.

usage: test_probe.py SAEMON_EXE SOURCE_DIR"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SAEMON, SOURCE = sys.argv[1:3]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

try:
    from sklearn.linear_model import LogisticRegression
except ImportError:
    print("SKIP: scikit-learn (python3-sklearn, scripts/install-deps.sh) absent")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, ok=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if ok and p.returncode:
        print(p.stdout, p.stderr)
        raise SystemExit(f"{' '.join(args)} exited {p.returncode}")
    return p


def scores(probe, rec, work, isa=None):
    out = os.path.join(work, "scores.npy")
    run(SAEMON, "encode", "--sae", probe, "--input", rec, "--output", out, *(["--isa", isa] if isa else []))
    return np.load(out)


def main():
    work = tempfile.mkdtemp(prefix="saemon-probe-")
    _, e = gen.make_sae(work)
    rec, mask, spans = gen.make_recording(work, "rec", e, 20, 200, 3)
    labels = rec.replace(".npy", ".labels.jsonl")
    probe = os.path.join(work, "probe")
    run("/usr/bin/python3", os.path.join(SOURCE, "scripts", "probe_fit.py"), "--input", rec, "--labels", labels,
        "--out", probe, "--name", "planted", "--hook", "blocks.0.hook_resid_post")
    # the reference: the same fit, done here
    X = np.load(rec).reshape(-1, gen.D_IN).astype(np.float64)
    y = mask.reshape(-1).astype(bool)
    clf = LogisticRegression(max_iter=2000).fit(X, y)
    want = clf.predict_proba(X)[:, 1]
    variants = [ln.split()[0] for ln in run(SAEMON, "inspect", "--kernels").stdout.splitlines()
                if "runs here" in ln or "chosen" in ln]
    # an odd number of tokens: the vector sigmoid's tail (8 lanes AVX-512, 4 AVX2) is exercised too
    odd = os.path.join(work, "odd.npy")
    np.save(odd, np.load(rec).reshape(-1, gen.D_IN)[:3999])
    for isa in [None] + variants:
        got = scores(probe, rec, work, isa).reshape(-1)
        err = np.abs(got - want)
        check(err.max() <= 2e-6 and (err / np.maximum(want, 1e-30)).max() <= 2e-5,
              f"probe score vs predict_proba ({isa or 'default'}): max abs {err.max():.3g}")
        got = scores(probe, odd, work, isa).reshape(-1)
        err = np.abs(got - want[:3999])
        check(got.shape == (3999,) and err.max() <= 2e-6 and (err / np.maximum(want[:3999], 1e-30)).max() <= 2e-5,
              f"probe score vs predict_proba, 3999 tokens ({isa or 'default'}): max abs {err.max():.3g}"
              f" max rel {(err / np.maximum(want[:3999], 1e-30)).max():.3g} shape {got.shape}")
    # several probes from a coef_/intercept_ .npz, sigmoid and identity
    g = np.random.default_rng(4)
    coef, icpt = g.standard_normal((3, gen.D_IN)).astype(np.float32), np.array([0.5, -1, 2], np.float32)
    np.savez(os.path.join(work, "m.npz"), coef_=coef, intercept_=icpt)
    for act in ("sigmoid", "identity"):
        d = os.path.join(work, "multi-" + act)
        run("/usr/bin/python3", os.path.join(SOURCE, "scripts", "probe_convert.py"), os.path.join(work, "m.npz"),
            "--out", d, "--names", "a,b,c", "--activation", act)
        z = X @ coef.T.astype(np.float64) + icpt
        ref = 1 / (1 + np.exp(-z)) if act == "sigmoid" else np.maximum(z, 0)
        got = scores(d, rec, work).reshape(-1, 3)
        check(np.abs(got - ref).max() <= 1e-5, f"{act} probes from .npz: max abs {np.abs(got - ref).max():.3g}")
        check(f"probe-{act}" in run(SAEMON, "inspect", d).stdout, f"inspect names the {act} probe")
    # saemon run: a rule on one probe of three encodes that probe alone (subset plan), same alerts as all
    p1 = os.path.join(work, "p1.yaml")
    with open(p1, "w") as f:
        f.write("rules:\n  - name: p1\n    condition: {feature: 1, above: 0.9}\n")
    outs = []
    for mode in ("auto", "all"):
        a = os.path.join(work, f"alerts-{mode}.jsonl")
        p = run(SAEMON, "run", "--sae", os.path.join(work, "multi-sigmoid"), "--rules", p1, "--input", rec,
                "--encode", mode, "--alerts", a)
        outs.append([(j["stream"], j["token"], j["value"]) for j in map(json.loads, open(a))])
        if mode == "auto":
            check("watched" in p.stderr, "run on a probe: the subset plan is used")
    check(outs[0] == outs[1] and len(outs[0]) > 0, "run on a probe: subset plan alerts equal the full encode's")
    # rules, features and backtest use the probe's score as latent 0
    js = json.loads(run(SAEMON, "features", "--sae", probe, "--input", rec, "--labels", labels, "--format",
                        "json").stdout)
    check(js["features"][0]["latent"] == 0 and js["features"][0]["auroc"] > 0.99, "features on a probe")
    rules = os.path.join(work, "probe.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: probe\n    condition: {feature: 0, above: 0.5}\n")
    bt = json.loads(run(SAEMON, "backtest", rules, "--sae", probe, "--input", rec, "--labels", labels, "--format",
                        "json").stdout)
    r = bt["files"][0]["rules"][0]
    cond = (want > np.float32(0.5)).reshape(20, 200)
    prev = np.concatenate([np.zeros((20, 1), bool), cond[:, :-1]], axis=1)
    check(r["firings"] == int((cond & ~prev).sum()), "backtest on a probe: firings")
    # the probe names are feature labels: features shows them, rules name a probe by its name
    check(js["features"][0].get("label") == "planted", "features on a probe: its name as the label")
    named = os.path.join(work, "named.yaml")
    with open(named, "w") as f:
        f.write("feature_labels: %s\nrules:\n  - name: probe\n    condition: {feature: planted, above: 0.5}\n"
                % json.dumps(os.path.join(probe, "labels.json")))
    bt = json.loads(run(SAEMON, "backtest", named, "--sae", probe, "--input", rec, "--labels", labels, "--format",
                        "json").stdout)
    check(bt["files"][0]["rules"][0]["firings"] == r["firings"], "a rule naming the probe by its name")
    a = os.path.join(work, "alerts-named.jsonl")
    with open(os.path.join(work, "named3.yaml"), "w") as f:
        f.write("feature_labels: %s\nrules:\n  - name: pb\n    condition: {feature: b, above: 0.5}\n"
                % json.dumps(os.path.join(work, "multi-sigmoid", "labels.json")))
    run(SAEMON, "run", "--sae", os.path.join(work, "multi-sigmoid"), "--rules", os.path.join(work, "named3.yaml"),
        "--input", rec, "--alerts", a)
    al = [json.loads(ln) for ln in open(a)]
    check(al and all(ft.get("label") == "b" and ft["index"] == 1 for j in al for ft in j["features"]),
          "alerts of a rule on a named probe carry its name")
    # refusals
    bad = os.path.join(work, "bad")
    run("/usr/bin/python3", os.path.join(SOURCE, "scripts", "probe_convert.py"), os.path.join(work, "m.npz"),
        "--out", bad, "--names", "a,b,c")
    cfg = json.load(open(os.path.join(bad, "probe.json")))
    for change, needle in ((dict(d_in=15), "d_in 15 differs"), (dict(names=["a", "b"]), "2 names for 3 probes"),
                           (dict(activation="relu"), "activation"), (dict(extra=1), "unknown key"),
                           (dict(names=["a", "a", "b"]), "appears twice")):
        with open(os.path.join(bad, "probe.json"), "w") as f:
            json.dump({**cfg, **change}, f)
        p = run(SAEMON, "inspect", bad, ok=False)
        check(p.returncode == 1 and needle in p.stderr and "probe.json" in p.stderr,
              f"bad probe.json {change}: {p.stderr.strip()}")
    other = os.path.join(work, "wide.npy")
    np.save(other, np.zeros((4, gen.D_IN + 1), np.float32))
    p = run(SAEMON, "features", "--sae", probe, "--positive", other, "--negative", other, ok=False)
    check(p.returncode == 1 and "wide.npy" in p.stderr and str(gen.D_IN) in p.stderr,
          f"a recording whose d_in differs from the probe's: {p.stderr.strip()}")
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all probe checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
