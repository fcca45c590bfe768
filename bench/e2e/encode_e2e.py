#!/usr/bin/env python3
"""Whole-process `saemon encode --sparse` against numpy doing the same job.

Writes a trained-like JumpReLU dictionary in the SAELens layout (the
generator of bench/synth.c, in numpy: unit decoder rows, encoder rows =
decoder + noise, b_enc ~ N(0, 0.05^2), tokens = 40-80 decoder directions x
(0.5 + Exp(1)) + 10 % noise, one threshold calibrated to a mean L0 of 70),
and TOKENS activations, then times, as separate processes, start to exit:
  saemon encode --sae DIR --input x.npy --sparse out.jsonl [--isa V]
  numpy: load the safetensors and the .npy, x @ W_enc + b_enc, JumpReLU, write
         the same JSON lines (one per token: stream, token, index, value).
Both outputs are compared (same latents; values to 1e-4 relative).
Usage: encode_e2e.py SAEMON [--shape gpt2|gemma] [--tokens N] [--isa V,...]
                    [--repeat R] [--dir DIR] [--cpu C]
Stdlib + numpy only; nothing is downloaded."""
import argparse, json, os, struct, subprocess, sys, tempfile, time
import numpy as np

SHAPES = {"gpt2": (768, 24576), "gemma": (2304, 16384)}


def write_safetensors(path, tensors):
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for a in blobs:
            a.tofile(f)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = np.fromfile(f, dtype=np.uint8)
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = data[a:b].view(np.float32).reshape(t["shape"])
    return out


def make(dirname, d_in, d_sae, tokens, seed=1):
    rng = np.random.default_rng(seed)
    dec = rng.standard_normal((d_sae, d_in), dtype=np.float32)
    dec /= np.linalg.norm(dec, axis=1, keepdims=True)
    noise = rng.standard_normal((d_sae, d_in), dtype=np.float32)
    noise *= 0.2 / np.sqrt(d_in)  # cos(enc, dec) ~ 0.98
    enc_rows = dec + noise
    b_enc = (0.05 * rng.standard_normal(d_sae)).astype(np.float32)
    x = np.empty((tokens, d_in), dtype=np.float32)
    for t in range(tokens):
        k = rng.integers(40, 81)
        idx = rng.choice(d_sae, size=k, replace=False)
        coef = (0.5 + rng.exponential(1.0, size=k)).astype(np.float32)
        v = coef @ dec[idx]
        v += 0.1 * np.linalg.norm(v) / np.sqrt(d_in) * rng.standard_normal(d_in).astype(np.float32)
        x[t] = v
    pre = x[:256] @ enc_rows.T + b_enc
    theta = np.float32(np.quantile(pre, 1 - 70.0 / d_sae))  # mean L0 70 on these tokens
    os.makedirs(dirname, exist_ok=True)
    write_safetensors(os.path.join(dirname, "sae_weights.safetensors"), {
        "W_enc": enc_rows.T, "b_enc": b_enc, "W_dec": dec, "b_dec": np.zeros(d_in, np.float32),
        "threshold": np.full(d_sae, theta, np.float32)})
    with open(os.path.join(dirname, "cfg.json"), "w") as f:
        json.dump({"d_in": d_in, "d_sae": d_sae, "architecture": "jumprelu", "apply_b_dec_to_input": False,
                   "normalize_activations": "none", "dtype": "float32",
                   "metadata": {"hook_name": "blocks.0.hook_resid_post", "model_name": "synthetic"}}, f)
    np.save(os.path.join(dirname, "x.npy"), x)
    return float(theta)


def numpy_encode(sae_dir, x_path, out_path, batch=256):
    """The peer, as a user would write it (run in its own process)."""
    t = read_safetensors(os.path.join(sae_dir, "sae_weights.safetensors"))
    W, b, th = t["W_enc"], t["b_enc"], t["threshold"]
    x = np.load(x_path)
    with open(out_path, "w") as f:
        for r0 in range(0, x.shape[0], batch):
            pre = x[r0:r0 + batch] @ W + b
            for i, row in enumerate(pre):
                idx = np.flatnonzero(row > th)
                f.write('{"stream":0,"token":%d,"index":%s,"value":%s}\n' % (
                    r0 + i, json.dumps(idx.tolist()), json.dumps([float(v) for v in row[idx]])))


def timed(cmd, env=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr))
    return dt


def compare(a_path, b_path, theta):
    """(tokens that differ, of which only by latents within 1e-5 of the
    threshold: fp32 sums in another order may land on either side)."""
    bad = boundary = 0
    with open(a_path) as fa, open(b_path) as fb:
        for la, lb in zip(fa, fb):
            a, b = json.loads(la), json.loads(lb)
            if a["index"] == b["index"] and np.allclose(a["value"], b["value"], rtol=1e-4, atol=1e-5):
                continue
            bad += 1
            va, vb = dict(zip(a["index"], a["value"])), dict(zip(b["index"], b["value"]))
            odd = set(va) ^ set(vb)
            same = set(va) & set(vb)
            if all(abs({**va, **vb}[i] - theta) <= 1e-5 * abs(theta) for i in odd) and \
                    all(np.isclose(va[i], vb[i], rtol=1e-4, atol=1e-5) for i in same):
                boundary += 1
    return bad, boundary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("saemon")
    ap.add_argument("--shape", default="gpt2", choices=sorted(SHAPES))
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--isa", default="", help="comma list of variants for --isa ('' = saemon's own choice)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="")
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--numpy-worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.numpy_worker:
        numpy_encode(*a.numpy_worker)
        return
    work = a.dir or tempfile.mkdtemp(prefix="saemon-e2e-")
    d_in, d_sae = SHAPES[a.shape]
    sae = os.path.join(work, a.shape)
    if not os.path.exists(os.path.join(sae, "x.npy")):
        theta = make(sae, d_in, d_sae, a.tokens)
        print("wrote %s (%dx%d, theta %.5f, %d tokens)" % (sae, d_in, d_sae, theta, a.tokens))
    x = os.path.join(sae, "x.npy")
    a.tokens = np.load(x, mmap_mode="r").shape[0]
    theta = float(read_safetensors(os.path.join(sae, "sae_weights.safetensors"))["threshold"][0])
    pin = ["taskset", "-c", str(a.cpu)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    ref = os.path.join(work, "numpy.jsonl")
    runs = {"numpy": [timed(pin + [sys.executable, __file__, "x", "--numpy-worker", sae, x, ref], env)
                      for _ in range(a.repeat)]}
    for isa in a.isa.split(","):
        out = os.path.join(work, "saemon-%s.jsonl" % (isa or "auto"))
        cmd = pin + [a.saemon, "encode", "--sae", sae, "--input", x, "--sparse", out] + (["--isa", isa] if isa else [])
        runs["saemon " + (isa or "auto")] = [timed(cmd, env) for _ in range(a.repeat)]
        bad, boundary = compare(out, ref, theta)
        print("saemon %s vs numpy: %d of %d tokens differ, %d of them only by a latent within 1e-5 of "
              "the threshold" % (isa or "auto", bad, a.tokens, boundary))
    best_np = min(runs["numpy"])
    print("%s %dx%d, %d tokens, whole process, best of %d (s), pinned to CPU %d:" % (
        a.shape, d_in, d_sae, a.tokens, a.repeat, a.cpu))
    for name, ts in runs.items():
        print("  %-34s %8.3f  (all: %s)  numpy/this = %.2f" % (
            name, min(ts), " ".join("%.3f" % t for t in ts), best_np / min(ts)))


if __name__ == "__main__":
    main()
