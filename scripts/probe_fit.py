#!/usr/bin/python3
"""Fit a logistic-regression probe on raw activations with scikit-learn
(Debian python3-sklearn) and write a probe folder saemon loads as a
dictionary (docs/formats.md "Dense linear probes"):

  scripts/probe_fit.py --positive P.npy --negative N.npy --out PROBE_DIR --name deception
  scripts/probe_fit.py --input X.npy --labels X.labels.jsonl --out PROBE_DIR --name saint-hyphen

Recordings are .npy [n, d_in] or [batch, seq, d_in]; labels are the JSONL
spans or 0/1 .npy masks of docs/authoring.md. The probe's score is
predict_proba[:, 1] = sigmoid(coef_·x + intercept_)."""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from probe_convert import write_probe  # noqa: E402


def mask_for(x, labels):
    lead = x.shape[:-1]
    if labels.endswith(".npy"):
        m = np.load(labels, allow_pickle=False)
        if m.shape != lead:
            sys.exit(f"{labels}: mask shape {list(m.shape)} differs from the recording's {list(lead)}")
        return m.astype(bool).reshape(-1)
    m = np.zeros(lead if len(lead) == 2 else (1,) + lead, bool)
    with open(labels) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                s = json.loads(line)
                m[s.get("stream", 0), s["start"]:s["end"]] = True
    return m.reshape(-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positive", action="append", default=[])
    ap.add_argument("--negative", action="append", default=[])
    ap.add_argument("--input", action="append", default=[])
    ap.add_argument("--labels", action="append", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="probe-0")
    ap.add_argument("--hook", default="")
    ap.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength (default 1)")
    ap.add_argument("--balanced", action="store_true", help="class_weight='balanced'")
    ap.add_argument("--max-iter", type=int, default=2000)
    a = ap.parse_args()
    if len(a.labels) != len(a.input):
        sys.exit("give one --labels per --input")
    from sklearn.linear_model import LogisticRegression
    xs, ys = [], []
    for path, lab in [(p, 1) for p in a.positive] + [(p, 0) for p in a.negative]:
        x = np.load(path, allow_pickle=False)
        xs.append(x.reshape(-1, x.shape[-1]))
        ys.append(np.full(len(xs[-1]), lab, bool))
    for path, labels in zip(a.input, a.labels):
        x = np.load(path, allow_pickle=False)
        xs.append(x.reshape(-1, x.shape[-1]))
        ys.append(mask_for(x, labels))
    if not xs:
        sys.exit("no recordings: give --positive/--negative or --input/--labels")
    X = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys)
    if y.all() or not y.any():
        sys.exit("need both positive and negative tokens")
    clf = LogisticRegression(C=a.C, max_iter=a.max_iter, class_weight="balanced" if a.balanced else None)
    clf.fit(X, y)
    write_probe(a.out, clf.coef_, clf.intercept_, [a.name], "sigmoid", a.hook)
    print(f"wrote {a.out}: d_in {X.shape[1]}, {int(y.sum())} positive / {int((~y).sum())} negative tokens, "
          f"training accuracy {clf.score(X, y):.4f}")


if __name__ == "__main__":
    main()
