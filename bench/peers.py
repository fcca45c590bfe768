#!/usr/bin/python3
"""Peers of saemon's encode, timed the same way as the C benchmark.

Run by saemon-bench-kernels and `saemon bench` with /usr/bin/python3 (Debian's
numpy / PyTorch), with --threads threads (the caller sets OPENBLAS_NUM_THREADS to
the same number before numpy loads; torch.set_num_threads here). Reads the dictionary the C bench wrote to --dir:
  W_rows.npy [d_sae, d_in] encoder rows, b.npy [d_sae], x.npy [n, d_in]
and --theta, the calibrated JumpReLU threshold (> 0, so the mask implies ReLU).
Prints one JSON object per line on stdout.
With --latency-tokens N it first times N batch-1 calls one by one, cycling
through the rows of x.npy, and prints their distribution (kind "latency").

numpy : h = x @ W; h += b; h *= (h > theta)        (dense result, no index list)
torch : torch.addmm(b, x, W, out=h); F.threshold_(h, theta, 0)   (in place, the fair
        peer: an out-of-place relu on a fresh [B, d_sae] tensor costs more than the matmul)
"""
import argparse
import json
import os
import sys
import time


def measure(fn, min_time, max_time, min_calls):
    """Same rule as bench/timing.c: warm-up, then until min_calls and min_time, or max_time."""
    t0 = time.perf_counter()
    fn()
    if time.perf_counter() - t0 < 0.05:
        fn()
    samples = []
    start = time.perf_counter()
    while True:
        a = time.perf_counter()
        fn()
        b = time.perf_counter()
        samples.append(b - a)
        elapsed = b - start
        if elapsed >= max_time:
            break
        if len(samples) >= min_calls and elapsed >= min_time:
            break
    samples.sort()
    n = len(samples)
    med = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    rank = max(1, min(n, -(-99 * n // 100)))  # nearest-rank p99
    return med, samples[rank - 1], n


def distribution(samples, cdf_points):
    """Nearest-rank percentiles as bench/timing.c computes them, plus CDF quantiles."""
    s = sorted(samples)
    n = len(s)

    def pct(p):
        rank = max(1, min(n, int(-(-p * n // 100))))
        return s[rank - 1]

    cdf = [1e3 * s[int(round(i / (cdf_points - 1) * (n - 1)))] for i in range(cdf_points)]
    return {"calls": n, "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99), "p999_s": pct(99.9),
            "max_s": s[-1], "mean_s": sum(s) / n, "cdf_ms": cdf}


def latency(fn, rows, tokens, max_time):
    """Batch-1 calls on distinct rows, each timed on its own (after 50 warm-up calls)."""
    for i in range(min(50, tokens)):
        fn(rows[i % len(rows)])
    samples = []
    start = time.perf_counter()
    for i in range(tokens):
        r = rows[i % len(rows)]
        a = time.perf_counter()
        fn(r)
        b = time.perf_counter()
        samples.append(b - a)
        if max_time > 0 and b - start > max_time:
            break
    return samples


def mean_l0(fn, rows):
    """Mean active features per token over (up to) the first 64 rows, outside the timing."""
    rows = rows[:64]
    return sum(int((fn(r) != 0).sum()) for r in rows) / len(rows)


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--shape", required=True)
    ap.add_argument("--theta", type=float, required=True)
    ap.add_argument("--batches", default="1,8,64,256")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--max-time", type=float, default=2.0)
    ap.add_argument("--min-calls", type=int, default=30)
    ap.add_argument("--config", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latency-tokens", type=int, default=0)
    ap.add_argument("--latency-max-time", type=float, default=0.0)
    ap.add_argument("--cdf-points", type=int, default=201)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b]

    import numpy as np

    w_rows = np.load(os.path.join(args.dir, "W_rows.npy"))
    W = np.ascontiguousarray(w_rows.T)  # [d_in, d_sae], SAELens layout
    del w_rows
    b = np.load(os.path.join(args.dir, "b.npy"))
    X = np.load(os.path.join(args.dir, "x.npy"))
    theta = np.float32(args.theta)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}
    (X[:1] @ W[:, :8])  # load the BLAS library, then name it
    blas = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "blas" in ln.lower()})
    emit({"info": "numpy", "version": np.__version__, "env": env, "config": args.config, "blas": blas,
          "threads": args.threads})

    if args.latency_tokens > 0:
        rows = [np.ascontiguousarray(X[i:i + 1]) for i in range(X.shape[0])]

        def enc1(x):
            h = x @ W
            h += b
            h *= h > theta
            return h

        smp = latency(enc1, rows, args.latency_tokens, args.latency_max_time)
        d = distribution(smp, args.cdf_points)
        d.update({"peer": "numpy", "kind": "latency", "shape": args.shape, "batch": 1,
                  "threads": args.threads, "config": args.config,
                  "mean_l0": mean_l0(enc1, rows)})
        emit(d)

    for n in batches:
        x = np.ascontiguousarray(X[:n])

        def enc():
            h = x @ W
            h += b
            h *= h > theta
            enc.h = h

        med, p99, calls = measure(enc, args.min_time, args.max_time, args.min_calls)
        l0 = float(np.count_nonzero(enc.h)) / n
        emit({"peer": "numpy", "kind": "throughput", "shape": args.shape, "batch": n, "median_s": med,
              "p99_s": p99, "calls": calls, "mean_l0": l0, "config": args.config, "threads": args.threads})

    try:
        import torch
    except Exception as e:  # noqa: BLE001 - report any import failure
        emit({"peer": "torch", "error": "PyTorch unavailable: %s" % e})
        return 0
    torch.set_num_threads(args.threads)
    emit({"info": "torch", "version": torch.__version__, "config": args.config,
          "threads": torch.get_num_threads()})
    Wt = torch.from_numpy(W)
    bt = torch.from_numpy(b)
    with torch.no_grad():
        if args.latency_tokens > 0:
            rows_t = [torch.from_numpy(np.ascontiguousarray(X[i:i + 1])) for i in range(X.shape[0])]
            h1 = torch.empty((1, W.shape[1]), dtype=torch.float32)

            def enc1_t(xt):
                torch.addmm(bt, xt, Wt, out=h1)
                torch.nn.functional.threshold_(h1, float(theta), 0.0)
                return h1

            smp = latency(enc1_t, rows_t, args.latency_tokens, args.latency_max_time)
            d = distribution(smp, args.cdf_points)
            d.update({"peer": "torch", "kind": "latency", "shape": args.shape, "batch": 1,
                      "threads": args.threads, "config": args.config,
                      "mean_l0": mean_l0(enc1_t, rows_t)})
            emit(d)
        for n in batches:
            xt = torch.from_numpy(np.ascontiguousarray(X[:n]))
            h = torch.empty((n, W.shape[1]), dtype=torch.float32)

            def enc_t():
                torch.addmm(bt, xt, Wt, out=h)
                torch.nn.functional.threshold_(h, float(theta), 0.0)

            med, p99, calls = measure(enc_t, args.min_time, args.max_time, args.min_calls)
            l0 = float(torch.count_nonzero(h)) / n
            emit({"peer": "torch", "kind": "throughput", "shape": args.shape, "batch": n,
                  "median_s": med, "p99_s": p99, "calls": calls, "mean_l0": l0, "config": args.config,
                  "threads": args.threads})
    return 0


if __name__ == "__main__":
    sys.exit(main())
