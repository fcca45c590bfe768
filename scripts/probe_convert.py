#!/usr/bin/python3
"""Write a dense linear probe folder saemon loads as a dictionary
(docs/formats.md "Dense linear probes") from an existing scikit-learn or
numpy probe saved as .npz (no pickles):

  np.savez("probe.npz", coef_=clf.coef_, intercept_=clf.intercept_)
  scripts/probe_convert.py probe.npz --out PROBE_DIR --names deception --hook blocks.8.hook_resid_post

coef_ is [k, d_in] (or [d_in] for one probe), intercept_ [k] (or a scalar);
the keys coef/intercept and weight/bias are accepted too. The folder gets
probe.safetensors (weight [k, d_in], bias [k], float32) and probe.json
({"names", "activation", "hook", "d_in"})."""
import argparse
import json
import os
import struct
import sys

import numpy as np


def write_probe(out, weight, bias, names, activation="sigmoid", hook=""):
    weight = np.ascontiguousarray(np.atleast_2d(np.asarray(weight, np.float32)))
    bias = np.ascontiguousarray(np.atleast_1d(np.asarray(bias, np.float32)))
    k, d_in = weight.shape
    if bias.shape != (k,):
        raise SystemExit(f"probe: bias shape {bias.shape} does not match weight [{k}, {d_in}]")
    if len(names) != k:
        raise SystemExit(f"probe: {len(names)} name(s) for {k} probe(s)")
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise SystemExit("probe: weight or bias holds NaN/Inf")
    os.makedirs(out, exist_ok=True)
    header, off = {}, 0
    for name, a in (("weight", weight), ("bias", bias)):
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    tmp = os.path.join(out, ".probe.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + weight.tobytes() + bias.tobytes())
    os.replace(tmp, os.path.join(out, "probe.safetensors"))
    with open(os.path.join(out, "probe.json"), "w") as f:
        json.dump({"names": list(names), "activation": activation, "hook": hook, "d_in": int(d_in)}, f, indent=1)
        f.write("\n")
    # the names as feature labels (docs/rules.md "Feature labels"): a rule file with
    # `feature_labels: PROBE_DIR/labels.json` names a probe by its name, alerts carry it
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump({str(i): n for i, n in enumerate(names)}, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz")
    ap.add_argument("--out", required=True)
    ap.add_argument("--names", help="comma-separated probe names (default probe-0, probe-1, ...)")
    ap.add_argument("--activation", choices=["sigmoid", "identity"], default="sigmoid")
    ap.add_argument("--hook", default="")
    a = ap.parse_args()
    with np.load(a.npz, allow_pickle=False) as z:
        keys = set(z.files)
        pair = next((p for p in (("coef_", "intercept_"), ("coef", "intercept"), ("weight", "bias"))
                     if set(p) <= keys), None)
        if pair is None:
            sys.exit(f"{a.npz}: expected arrays coef_ and intercept_ (or coef/intercept, weight/bias); has {sorted(keys)}")
        w, b = z[pair[0]], z[pair[1]]
    w = np.atleast_2d(w)
    names = a.names.split(",") if a.names else [f"probe-{i}" for i in range(w.shape[0])]
    write_probe(a.out, w, b, names, a.activation, a.hook)
    print(f"wrote {a.out}: {w.shape[0]} probe(s), d_in {w.shape[1]}, {a.activation}")


if __name__ == "__main__":
    main()
