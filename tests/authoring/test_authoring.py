"""saemon features / calibrate / backtest on generated data with a planted
feature: every number the commands print is recomputed here with numpy from
the same inputs (the features themselves come from `saemon encode`), the
planted feature must rank first, and bad input is refused with the file and
position named.

usage: test_authoring.py SAEMON_EXE"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

SAEMON = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, ok=True, env=None):
    p = subprocess.run([SAEMON, *args], capture_output=True, text=True, env=env)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"saemon {' '.join(args)} exited {p.returncode}")
    return p


def features_of(work, sae, rec):
    out = os.path.join(work, os.path.basename(rec) + ".features.npy")
    run("encode", "--sae", sae, "--input", rec, "--output", out)
    return np.load(out).reshape(-1, gen.D_SAE).astype(np.float64)


# ------------------------------------------------------------ references
def auroc(pos, neg):
    """Mann-Whitney: P(pos > neg) + P(pos == neg) / 2, all pairs."""
    gt = (pos[:, None] > neg[None, :]).sum()
    eq = (pos[:, None] == neg[None, :]).sum()
    return (2 * gt + eq) / (2 * len(pos) * len(neg))


def best_threshold(pos, neg, max_fpr=None):
    cands = np.unique(np.concatenate([pos, neg, [0.0]]))[::-1]  # strictest first
    best = None
    for t in cands:
        tp, fp = int((pos > t).sum()), int((neg > t).sum())
        tpr, fpr = tp / len(pos), fp / len(neg)
        if max_fpr is not None:
            if fpr <= max_fpr and (best is None or tp > best[1]):
                best = (t, tp, fp)
        elif best is None or tpr - fpr > best[3]:
            best = (t, tp, fp, tpr - fpr)
    return best[:3]


def firings(cond):
    """Firing tokens of a default rule (for 1, no cooldown): rising edges per stream."""
    prev = np.concatenate([np.zeros((cond.shape[0], 1), bool), cond[:, :-1]], axis=1)
    return np.argwhere(cond & ~prev)


def score(cond, spans):
    fire = firings(cond)
    inside = {}
    for s in spans:
        inside.setdefault(s["stream"], []).append(s)
    tp = fp = 0
    hit = {}
    for st, tok in fire:
        sp = next((s for s in inside.get(int(st), []) if s["start"] <= tok < s["end"]), None)
        if sp is None:
            fp += 1
            continue
        tp += 1
        key = (sp["stream"], sp["start"])
        hit.setdefault(key, int(tok) - sp["start"])
    delays = sorted(hit.values())

    def pct(p):
        if not delays:
            return None
        k = max(1, int(np.ceil(p / 100 * len(delays))))
        return delays[k - 1]

    n = len(fire)
    prec = tp / n if n else None
    rec = len(hit) / len(spans)
    return {"firings": n, "tp": tp, "fp": fp, "spans_detected": len(hit), "misses": len(spans) - len(hit),
            "precision": prec, "recall": rec, "delay_p50": pct(50), "delay_p90": pct(90),
            "alerts_per_1k": 1000 * n / cond.size}


def close(a, b, tol=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


# ------------------------------------------------------------ tests
def test_features(work, sae, rec, mask, spans_path):
    F = features_of(work, sae, rec)
    m = mask.reshape(-1).astype(bool)
    for labels in (spans_path, rec.replace(".npy", ".mask.npy")):
        for max_fpr in (None, 0.01):
            args = ["features", "--sae", sae, "--input", rec, "--labels", labels, "--top", str(gen.D_SAE),
                    "--format", "json"]
            if max_fpr is not None:
                args += ["--max-fpr", str(max_fpr)]
            out = json.loads(run(*args).stdout)
            check(out["positives"] == m.sum() and out["negatives"] == (~m).sum(), "features: side counts")
            check(out["features"][0]["latent"] == gen.PLANTED, "features: the planted latent ranks first")
            ref = sorted(range(gen.D_SAE), key=lambda l: (-auroc(F[m, l], F[~m, l]), l))
            check([f["latent"] for f in out["features"]] == ref, "features: ranking equals numpy's")
            for f in out["features"]:
                l = f["latent"]
                pos, neg = F[m, l], F[~m, l]
                check(close(f["auroc"], auroc(pos, neg), 1e-12), f"features: AUROC of latent {l}")
                t, tp, fp = best_threshold(pos, neg, max_fpr)
                check(np.float32(f["threshold"]) == np.float32(t) and f["tp"] == tp and f["fp"] == fp,
                      f"features: threshold of latent {l} ({f['threshold']} {f['tp']} {f['fp']} vs {t} {tp} {fp})")
                for side, v in (("positive", pos), ("negative", neg)):
                    check(close(f[side]["frequency"], (v > 0).mean()) and close(f[side]["mean"], v.mean(), 1e-6)
                          and np.float32(f[side]["max"]) == np.float32(v.max()), f"features: {side} stats of {l}")
    # --per stream with whole files: the max of each stream
    neg_path = os.path.join(work, "benign.npy")
    out = json.loads(run("features", "--sae", sae, "--positive", rec, "--negative", neg_path, "--per", "stream",
                         "--top", "3", "--format", "json").stdout)
    Fp = features_of(work, sae, rec).reshape(20, 200, gen.D_SAE).max(axis=1)
    Fn = features_of(work, sae, neg_path).reshape(50, 200, gen.D_SAE).max(axis=1)
    check(out["positives"] == 20 and out["negatives"] == 50, "features --per stream: counts")
    for f in out["features"]:
        check(close(f["auroc"], auroc(Fp[:, f["latent"]], Fn[:, f["latent"]]), 1e-12), "features --per stream: AUROC")
    # --rules-out writes a loadable starter file with the measured numbers
    rules = os.path.join(work, "starter.yaml")
    run("features", "--sae", sae, "--input", rec, "--labels", spans_path, "--top", "2", "--rules-out", rules)
    text = open(rules).read()
    check("feature: %d, above:" % gen.PLANTED in text and "precision" in text and "recall" in text,
          "features --rules-out: the planted feature's rule with precision/recall comments")
    check(run("check", rules).returncode == 0, "features --rules-out: the file passes `saemon check`")
    fl = os.path.join(work, "labels.json")
    with open(fl, "w") as f:
        json.dump([{"index": gen.PLANTED, "description": 'the "planted" direction'}], f)
    js = json.loads(run("features", "--sae", sae, "--input", rec, "--labels", spans_path, "--top", "2",
                        "--feature-labels", fl, "--format", "json").stdout)
    check(js["features"][0].get("label") == 'the "planted" direction' and "label" not in js["features"][1],
          "features --feature-labels: the explanation of the planted latent")
    with open(fl, "w") as f:
        json.dump({str(gen.D_SAE): "past the dictionary"}, f)
    refused(["features", "--sae", sae, "--input", rec, "--labels", spans_path, "--feature-labels", fl],
            "labels.json", "below %d" % gen.D_SAE)
    # --plot: a PNG with gnuplot; without gnuplot a note, no file, exit 0
    import shutil
    png = os.path.join(work, "roc.png")
    if shutil.which("gnuplot"):
        run("features", "--sae", sae, "--input", rec, "--labels", spans_path, "--top", "3", "--plot", png)
        check(open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "features --plot writes a PNG")
        os.unlink(png)
    else:
        print("SKIP-PART: gnuplot (gnuplot-nox) absent: --plot only checked without it")
    p = run("features", "--sae", sae, "--input", rec, "--labels", spans_path, "--plot", png,
            env={**os.environ, "PATH": "/nonexistent"})
    check(p.returncode == 0 and "gnuplot not found" in p.stderr and not os.path.exists(png),
          "features --plot without gnuplot: reported, nothing written")
    for fmt in ("table", "csv"):
        check(str(gen.PLANTED) in run("features", "--sae", sae, "--input", rec, "--labels", spans_path,
                                      "--format", fmt).stdout, f"features --format {fmt}")


RULES = """# a comment that must survive
version: 1
rules:
  - name: planted   # trailing comment
    condition: {feature: %d, above: 0.5}
  - name: nested
    description: keep me
    condition:
      all:
        - {feature: %d, above: 0.25}
        - {feature: 0, below: 1000.0}
  - name: listy
    condition: {any: [{feature: 1, above: 0.1}]}
""" % (gen.PLANTED, gen.PLANTED)


def exact_scan(cands, fires, target_n):
    """The reference: the last candidate before the first whose firing count exceeds the target."""
    for i, f in enumerate(fires):
        if f > target_n:
            return i - 1
    return len(cands) - 1


def coarse_scan(cands, fires, passing, target_n):
    """The search calibrate used to do (single-leaf shortcut, 8 steps, steps of x1.25 tokens,
    bisection): kept here to show the exact scan answers differently on a non-monotone rate."""
    m, lo, frm = len(cands), -1, 0
    while frm < m and passing[frm] <= target_n:
        lo, frm = frm, frm + 1
    if frm == m:
        return m - 1
    steps, last = [], (passing[lo] if lo >= 0 else 0)
    for i in range(frm, m):
        if i < frm + 8 or i + 1 == m or passing[i] >= 1.25 * last:
            steps.append(i)
            last = passing[i] if passing[i] else 1
    hi = -1
    for i in steps:
        if fires[i] <= target_n:
            lo = i
        else:
            hi = i
            break
    if hi < 0 or lo < 0:
        return lo
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        lo, hi = (mid, hi) if fires[mid] <= target_n else (lo, mid)
    return lo


def test_exact_scan(work, sae, benign):
    """The firing-event rate is not monotone in the threshold (runs merge as it loosens): on a
    target where a looser candidate than the first exceeding one holds again, calibrate must stop
    before the first exceeding one, for a single-leaf rule (shortcut) and a compound one (none)."""
    F = features_of(work, sae, benign).astype(np.float32)
    found = None
    for f in range(gen.D_SAE):
        if f == gen.PLANTED:
            continue
        x = F[:, f].reshape(50, 200)
        cands = np.concatenate([np.unique(x[x > 0])[::-1], [np.float32(0)]])
        fires = [len(firings(x > t)) for t in cands]
        passing = [int((x > t).sum()) for t in cands]
        for tn in range(1, max(fires)):
            want = exact_scan(cands, fires, tn)
            if want >= 0 and coarse_scan(cands, fires, passing, tn) != want \
                    and any(fi <= tn for fi in fires[want + 2:]):
                found = (f, tn, cands, want)
                break
        if found:
            break
    check(found is not None, "calibrate: generated data has a non-monotone firing rate")
    if not found:
        return
    f, tn, cands, want = found
    other = 1 if f != 1 else 2
    rules = os.path.join(work, "nonmono.yaml")
    with open(rules, "w") as fh:
        fh.write("rules:\n  - name: leaf\n    condition: {feature: %d, above: 100.0}\n"
                 "  - name: both\n    condition:\n      all:\n        - {feature: %d, above: 100.0}\n"
                 "        - {feature: %d, below: 1000.0}\n"
                 "  - name: either\n    condition:\n      any:\n        - {feature: %d, above: 100.0}\n"
                 "        - {feature: %d, above: 1000.0}\n" % (f, f, other, f, other))
    rate = (tn + 0.5) / F.shape[0]
    p = run("calibrate", rules, "--sae", sae, "--input", benign, "--max-rate", repr(rate),
            "--tune", "both:condition.all.0.above", "--tune", "either:condition.any.0.above")
    print(p.stdout)
    for name in ("leaf", "both", "either"):  # bound: runs, tokens, none
        line = [ln for ln in p.stdout.splitlines() if ln.startswith(name + " ")][0].split()
        check(np.float32(line[3]) == cands[want],
              f"calibrate: {name} stops before the first candidate over the target: {line[3]} vs {cands[want]!r}"
              f" (feature {f}, at most {tn} firings)")
    # `for: 3`: a firing needs 3 true tokens in a row (the bound counts runs of at least 3)
    x = F[:, f].reshape(50, 200)

    def fires_for3(c):
        n = 0
        for row in c:
            run_len = 0
            for v in row:
                run_len = run_len + 1 if v else 0
                n += run_len == 3
        return n
    fc = [fires_for3(x > t) for t in cands]
    for tn in (fc[len(fc) // 2], max(fc) - 1):
        want = exact_scan(cands, fc, tn)
        with open(rules, "w") as fh:
            fh.write("rules:\n  - name: three\n    for: 3\n    condition: {feature: %d, above: 100.0}\n" % f)
        p = run("calibrate", rules, "--sae", sae, "--input", benign, "--max-rate", repr((tn + 0.5) / F.shape[0]))
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("three ")][0].split()
        check(np.float32(line[3]) == cands[want], f"calibrate: for 3, at most {tn} firings: {line[3]} vs {cands[want]!r}")
    # `below`: candidate 0 lets nothing through, the next every token where the feature is 0
    x = F[:, f].reshape(50, 200)
    bc = np.concatenate([[np.float32(0)], np.unique(x[x > 0])])
    bf = [len(firings(x < t)) for t in bc]
    for tn in (bf[1] + 3, (bf[1] + max(bf)) // 2, max(bf) - 1):
        want = exact_scan(bc, bf, tn)
        with open(rules, "w") as fh:
            fh.write("rules:\n  - name: low\n    condition: {feature: %d, below: 0.0}\n" % f)
        p = run("calibrate", rules, "--sae", sae, "--input", benign, "--max-rate", repr((tn + 0.5) / F.shape[0]))
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("low ")][0].split()
        check(np.float32(line[3]) == bc[want], f"calibrate: below, at most {tn} firings: {line[3]} vs {bc[want]!r}")


def test_calibrate_backtest(work, sae, rec, spans_path, spans):
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    benign = os.path.join(work, "benign.npy")
    tuned = os.path.join(work, "tuned.yaml")
    p = run("calibrate", rules, "--sae", sae, "--input", benign, "--max-alerts-per-1k", "3", "--positives", rec,
            "--tune", "nested:condition.all.0.above", "-o", tuned)
    print(p.stdout)
    check("not tunable" in p.stdout and "listy" in p.stdout, "calibrate: a rule without a feature leaf is reported")
    text = open(tuned).read()
    check(text.startswith("# a comment that must survive") and "# trailing comment" in text
          and "description: keep me" in text, "calibrate -o: comments and keys unchanged")
    check(text.count("\n") == RULES.count("\n"), "calibrate -o: no line added or removed")
    Fb = features_of(work, sae, benign)[:, gen.PLANTED].reshape(50, 200)
    cands = np.unique(np.concatenate([Fb.reshape(-1), features_of(work, sae, rec)[:, gen.PLANTED], [0.0]]))
    target = 3 / 1000
    import re
    chosen = {}
    for name in ("planted", "nested"):
        line = [ln for ln in p.stdout.splitlines() if ln.startswith(name + " ")][0].split()
        t = chosen[name] = np.float32(line[3])
        rate = len(firings(Fb > t)) / Fb.size
        check(rate <= target and close(float(line[5]), 1000 * rate, 1e-3), f"calibrate: {name} rate at {t}")
        looser = cands[cands < t]
        if len(looser):
            check(len(firings(Fb > looser.max())) / Fb.size > target,
                  f"calibrate: {name}: the next looser threshold exceeds the target")
        check(re.search(r"above: %s\b" % re.escape(line[3]), text) is not None, f"calibrate -o: {name} edited")
        Fr = features_of(work, sae, rec)[:, gen.PLANTED].reshape(20, 200)
        check(close(float(line[7]), (Fr > t).any(axis=1).mean(), 1e-3), f"calibrate: {name} recall")
        check(close(float(line[8]), ((Fb > t).sum() + (Fr > t).sum()) / (Fb.size + Fr.size), 1e-3),
              f"calibrate: {name} firing share")
    # a rule-language probe's `above` (a probability)
    pr = os.path.join(work, "probe-rule.yaml")
    with open(pr, "w") as f:
        f.write("rules:\n  - name: lin\n    condition:\n      probe: {weights: {%d: 2.0, 1: 0.5}, bias: -3.0, "
                "above: 0.5}\n" % gen.PLANTED)
    p = run("calibrate", pr, "--sae", sae, "--input", benign, "--max-alerts-per-1k", "3", "--positives", rec)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("lin ")][0].split()
    Fall = features_of(work, sae, benign)
    z = -3.0 + 2.0 * Fall[:, gen.PLANTED].astype(np.float32).astype(np.float64) + 0.5 * Fall[:, 1]
    prob = (1 / (1 + np.exp(-z))).astype(np.float32).reshape(50, 200)
    rate = len(firings(prob > np.float32(line[3]))) / prob.size
    check(line[1] == "condition.probe.above" and line[-1] == "tuned" and rate <= target
          and close(float(line[5]), 1000 * rate, 1e-3), f"calibrate: probe above {line}")
    test_exact_scan(work, sae, benign)
    # unreachable: a rule true on almost every token fires once per stream at the strictest threshold
    low = os.path.join(work, "below.yaml")
    with open(low, "w") as f:
        f.write("rules:\n  - name: always\n    condition: {feature: %d, below: 100.0}\n" % gen.PLANTED)
    p = run("calibrate", low, "--sae", sae, "--input", benign, "--max-rate", "0.5")
    check("always" in p.stdout, "calibrate: below threshold scanned")
    p = run("calibrate", low, "--sae", sae, "--input", benign, "--max-rate", "0.0001")
    check("unreachable" in p.stdout or "tuned" in p.stdout, "calibrate: unreachable or tuned reported")

    # backtest: every number against numpy (default rules: firings are rising edges)
    F = features_of(work, sae, rec)[:, gen.PLANTED].reshape(20, 200)
    out = json.loads(run("backtest", rules, tuned, "--sae", sae, "--input", rec, "--labels", spans_path,
                         "--format", "json").stdout)
    thr = [{"planted": np.float32(0.5), "nested": np.float32(0.25)}, chosen]
    for fi, file in enumerate(out["files"]):
        for r in file["rules"]:
            if r["name"] not in ("planted", "nested"):
                continue
            ref = score(F > thr[fi][r["name"]], spans)
            ref["firing_tokens"] = int((F > thr[fi][r["name"]]).sum())  # a default rule fires while true
            for k, v in ref.items():
                check(close(r[k], v), f"backtest {file['rules_file']} {r['name']} {k}: {r[k]} vs {v}")
    # --per-stream: every stream's counts, against numpy, summing to the totals
    ps = json.loads(run("backtest", rules, "--sae", sae, "--input", rec, "--labels", spans_path, "--format", "json",
                        "--per-stream").stdout)["files"][0]["rules"][0]
    cond = F > np.float32(0.5)
    for st in ps["streams"]:
        s_spans = [sp for sp in spans if sp["stream"] == st["stream"]]
        one = score(cond[st["stream"]:st["stream"] + 1], [{**sp, "stream": 0} for sp in s_spans]) if s_spans else None
        n_fire = len(firings(cond[st["stream"]:st["stream"] + 1]))
        check(st["firings"] == n_fire and st["spans"] == len(s_spans)
              and (one is None or (st["tp"] == one["tp"] and st["spans_detected"] == one["spans_detected"])),
              f"backtest --per-stream: stream {st['stream']}")
    check(sum(st["firings"] for st in ps["streams"]) == ps["firings"], "backtest --per-stream: sums to the total")
    import shutil
    if shutil.which("gnuplot"):
        png = os.path.join(work, "bt.png")
        run("backtest", rules, tuned, "--sae", sae, "--input", rec, "--labels", spans_path, "--plot", png)
        check(open(png, "rb").read(4) == b"\x89PNG", "backtest --plot writes a PNG")
    # gates
    check(run("backtest", rules, "--sae", sae, "--input", rec, "--labels", spans_path, "--min-precision", "0.5",
              ok=False).returncode == 1, "backtest: a failing --min-precision gate (rule listy) exits 1")
    check(run("backtest", rules, "--sae", sae, "--input", rec, "--labels", spans_path, "--min-recall", "0.99",
              ok=False).returncode == 1, "backtest: a failing --min-recall gate exits 1")
    planted_only = os.path.join(work, "planted.yaml")
    with open(planted_only, "w") as f:
        f.write("rules:\n  - name: planted\n    condition: {feature: %d, above: 0.5}\n" % gen.PLANTED)
    check(run("backtest", planted_only, "--sae", sae, "--input", rec, "--labels", spans_path, "--min-recall", "0.9",
              "--min-precision", "0.3", ok=False).returncode == 0, "backtest: passing gates exit 0")


def refused(args, *needles):
    p = run(*args, ok=False)
    good = p.returncode == 1 and all(n in p.stderr for n in needles)
    check(good, f"refused {args[0]} {needles}: rc {p.returncode}, stderr {p.stderr.strip()}")


def test_bad_input(work, sae, rec):
    def labels(name, lines):
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path
    base = ["features", "--sae", sae, "--input", rec, "--labels"]
    refused(base + [labels("past.jsonl", ['{"stream": 0, "start": 1, "end": 2}', '{"stream": 3, "start": 190, "end": 201}'])],
            "past.jsonl:2:", "past the recording")
    refused(base + [labels("pasts.jsonl", ['{"stream": 20, "start": 1, "end": 2}'])], "pasts.jsonl:1:", "stream 20")
    refused(base + [labels("over.jsonl", ['{"stream": 1, "start": 5, "end": 9}', '{"stream": 0, "start": 1, "end": 2}',
                                          '{"stream": 1, "start": 8, "end": 12}'])], "over.jsonl:3:", "line 1")
    refused(base + [labels("bad.jsonl", ['{"stream": 1, "start": 5, "end": 9}', '{"stream": 1, "start": 5'])],
            "bad.jsonl:2:")
    refused(base + [labels("empty.jsonl", ['{"stream": 1, "start": 5, "end": 5}'])], "empty.jsonl:1:", "exclusive")
    refused(base + [labels("key.jsonl", ['{"stream": 1, "begin": 5, "end": 6}'])], "key.jsonl:1:", "begin")
    refused(base + [labels("neg.jsonl", ['{"stream": 1, "start": -1, "end": 6}'])], "neg.jsonl:1:", "start")
    shape = os.path.join(work, "shape.npy")
    np.save(shape, np.zeros((20, 199), np.uint8))
    refused(base + [shape], "shape.npy", "[20, 199]", "[20, 200]")
    val = os.path.join(work, "val.npy")
    v = np.zeros((20, 200), np.int64)
    v[2, 7] = 2
    np.save(val, v)
    refused(base + [val], "val.npy", "stream 2, token 7")
    refused(["features", "--sae", sae, "--positive", rec], "positives without negatives")
    refused(base + [labels("none.jsonl", [""])], "no positive token")
    rules = os.path.join(work, "rules.yaml")
    for r in ("0", "1.5", "-1", "nan"):
        p = run("calibrate", rules, "--sae", sae, "--input", rec, "--max-rate", r, ok=False)
        check(p.returncode == 2 and "--max-rate" in p.stderr, f"calibrate --max-rate {r} refused")
    p = run("calibrate", rules, "--sae", sae, "--input", rec, "--max-alerts-per-1k", "0", ok=False)
    check(p.returncode == 2, "calibrate --max-alerts-per-1k 0 refused")
    out = os.path.join(work, "never.yaml")
    p = run("calibrate", rules, "--sae", sae, "--input", rec, "--labels", os.path.join(work, "past.jsonl"),
            "--max-rate", "0.01", "-o", out, ok=False)
    check(p.returncode == 1 and not os.path.exists(out), "calibrate: nothing written when the run fails")
    check(not [f for f in os.listdir(work) if ".tmp." in f], "calibrate: no temporary file left")


def main():
    with tempfile.TemporaryDirectory(prefix="saemon-authoring-") as work:
        sae, e = gen.make_sae(work)
        rec, mask, spans = gen.make_recording(work, "rec", e, 20, 200, 3)
        gen.make_recording(work, "benign", e, 50, 200, 7, span_rate=0.0)
        spans_path = rec.replace(".npy", ".labels.jsonl")
        test_features(work, sae, rec, mask, spans_path)
        test_calibrate_backtest(work, sae, rec, spans_path, spans)
        test_bad_input(work, sae, rec)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all authoring checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
