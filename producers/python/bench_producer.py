#!/usr/bin/python3
"""Python producer cost per token (raw publish and the PyTorch forward hook).

usage: bench_producer.py SAEMON_BENCH_PRODUCER_EXE [--d-in 2304] [--tokens 20000]
                        [--rate 500 --seconds 4] [--sweep [--seconds 2]]
Starts `saemon-bench-producer --serve` as the draining consumer, then times
  * Producer.publish of one float32 row (checksum over rows, and header-only),
  * a forward pass of a hooked module minus the same pass unhooked
    (decode style: one new position per pass),
each through the pure-Python producer and, when libsaemon-producer loads
($SAEMON_PRODUCER_LIB or the loader's path), the ctypes path. Back to back
(the consumer busy) by default; --rate R paces one token every 1/R s (the
consumer idle between tokens, as beside a real decoder) and gives p50/p99.
--sweep: the PyTorch forward hook and the Tap, per token, paced at 50, 500
and 5,000 tokens/s and back to back, for the ctypes path and the pure-Python
fallback: p50/p99 of wall time and of the thread's CPU time (hooked forward
minus the bare forward's p50; tap: forward with the tap + tap.publish minus
the bare forward's p50).
Prints "key value unit" lines."""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import saemon_producer  # noqa: E402


CPU = {}


def timed(fn, n, key=None):
    """Wall-clock µs per call; the thread's CPU µs per call goes to CPU[key]
    (CPU time is what the model process pays, and is robust to a loaded host)."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    wall = (time.perf_counter() - t0) / n * 1e6
    if key:
        CPU[key] = (time.thread_time() - c0) / n * 1e6
    return wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("exe")
    ap.add_argument("--d-in", type=int, default=2304)
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    name = "pybench%d" % os.getpid()
    srv = subprocess.Popen([a.exe, "--serve", name, "--d-in", str(a.d_in)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "READY"
    row = np.random.default_rng(0).standard_normal(a.d_in).astype(np.float32)
    if a.sweep:
        sweep(a, name, row)
        srv.stdin.close()
        print("consumer_received_dropped_rejected", srv.stdout.read().strip())
        srv.wait()
        return
    if a.rate > 0:
        paced(a, name, row)
        srv.stdin.close()
        print("consumer_received_dropped_rejected", srv.stdout.read().strip())
        srv.wait()
        return
    native = saemon_producer.native_available()
    if not native:
        print("py_native SKIPPED (%s)" % saemon_producer.native_error())
    for mode, wake, be in (("rows", False, "python"), ("header", False, "python"), ("rows", True, "python"),
                           ("rows", True, "native"))[:4 if native else 3]:
        with saemon_producer.open_producer(name, hook="bench", d_in=a.d_in, checksum=mode, wake=wake,
                                           backend=be) as p:
            timed(lambda i: p.publish(1, i, row), 2000)
            tag = "py_publish_native" if be == "native" else \
                "py_publish_checksum_%s%s" % (mode, "_wake" if wake else "")
            us = timed(lambda i: p.publish(2, i, row), a.tokens, tag)
            print("%s %.3f us wall, %.3f us cpu" % (tag, us, CPU[tag]))
            print("%s_dropped %d frames" % (tag, p.stats["frames_dropped"]))
    try:
        import torch
    except ImportError:
        print("py_hook SKIPPED (torch not installed for %s)" % sys.executable)
    else:
        torch.set_num_threads(1)
        model = torch.nn.Sequential(torch.nn.Identity())
        x = torch.from_numpy(row).reshape(1, 1, a.d_in)
        with torch.no_grad():
            n = a.tokens
            base = timed(lambda i: model(x), n, "bare")
            h = model[0].register_forward_hook(lambda m, i, o: None)
            noop = timed(lambda i: model(x), n, "noop")
            h.remove()
            print("py_hook_noop %.3f us wall, %.3f us cpu (PyTorch's own cost of having a forward hook)"
                  % (noop - base, CPU["noop"] - CPU["bare"]))
            for mode, be in (("rows", "python"), ("header", "python"), ("rows", "native"))[:3 if native else 2]:
                att = saemon_producer.attach(model, {"0": name}, stream=3, hook_names={"0": "bench"},
                                             checksum=mode, positions="incremental", backend=be)
                timed(lambda i: model(x), 2000)
                hooked = timed(lambda i: model(x), n, mode)
                print("py_hook_%s %.3f us wall, %.3f us cpu (forward %.3f us hooked vs %.3f us bare)"
                      % ("native" if be == "native" else "checksum_" + mode, hooked - base,
                         CPU[mode] - CPU["bare"], hooked, base))
                att.detach()
    srv.stdin.close()
    print("consumer_received_dropped_rejected", srv.stdout.read().strip())
    srv.wait()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1)))]


def paced(a, name, row):
    """Per-token cost at a.rate tokens/s, the consumer idle between tokens:
    publish, and the forward hook (hooked forward minus the bare forward's
    p50), pure Python and ctypes. Busy-waits between tokens."""
    n = max(50, int(a.rate * a.seconds))
    gap = 1e9 / a.rate

    def run(fn):
        out, t = [], time.perf_counter_ns()
        for i in range(n + 20):
            t += gap
            while time.perf_counter_ns() < t:
                pass
            c0 = time.perf_counter_ns()
            fn(i)
            out.append((time.perf_counter_ns() - c0) / 1e3)
        return out[20:]
    backends = ["python"] + (["native"] if saemon_producer.native_available() else [])
    if len(backends) == 1:
        print("py_paced_native SKIPPED (%s)" % saemon_producer.native_error())
    for be in backends:
        with saemon_producer.open_producer(name, hook="bench", d_in=a.d_in, backend=be) as p:
            v = run(lambda i: p.publish(2, i, row))
            print("py_paced_publish_%s %.0f tokens/s: p50 %.2f us p99 %.2f us (%d tokens, %d dropped)"
                  % (be, a.rate, pct(v, .5), pct(v, .99), len(v), p.stats["frames_dropped"]))
    try:
        import torch
    except ImportError:
        print("py_paced_hook SKIPPED (torch not installed for %s)" % sys.executable)
        return
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    model = torch.nn.Sequential(torch.nn.Identity())
    x = torch.from_numpy(row).reshape(1, 1, a.d_in)
    bare = pct(run(lambda i: model(x)), .5)
    for be in backends:
        att = saemon_producer.attach(model, {"0": name}, stream=3, hook_names={"0": "bench"},
                                     positions="incremental", backend=be, d_in=a.d_in)
        v = [t - bare for t in run(lambda i: model(x))]
        print("py_paced_hook_%s %.0f tokens/s: p50 %.2f us p99 %.2f us per token (hooked forward minus the "
              "bare forward's p50 %.2f us; %d tokens)" % (be, a.rate, pct(v, .5), pct(v, .99), bare, len(v)))
        att.detach()



def sweep(a, name, row):
    """Hook and tap cost per token at 50/500/5,000 tokens/s and back to back:
    p50/p99 wall and thread-CPU, ctypes path and pure Python."""
    import torch
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    backends = ["python"] + (["native"] if saemon_producer.native_available() else [])
    if len(backends) == 1:
        print("sweep_native SKIPPED (%s)" % saemon_producer.native_error())
    x = torch.from_numpy(row).reshape(1, 1, a.d_in)

    def run(fn, rate):
        n = 5000 if rate == 0 else max(100, int(rate * a.seconds))
        gap = 0 if rate == 0 else 1e9 / rate
        wall, cpu, t = [], [], time.perf_counter_ns()
        for i in range(n + 50):
            if gap:
                t += gap
                while time.perf_counter_ns() < t:
                    pass
            c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
            fn(i)
            w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            wall.append((w1 - w0) / 1e3)
            cpu.append((c1 - c0) / 1e3)
        return wall[50:], cpu[50:]

    bare_model = torch.nn.Sequential(torch.nn.Identity())
    for rate in (50, 500, 5000, 0):
        label = "%d/s" % rate if rate else "back-to-back"
        bw, bc = run(lambda i: bare_model(x), rate)
        bw50, bc50 = pct(bw, .5), pct(bc, .5)
        print("sweep_bare_forward %s: p50 %.2f us wall, %.2f us cpu" % (label, bw50, bc50))
        for be in backends:
            model = torch.nn.Sequential(torch.nn.Identity())
            att = saemon_producer.attach(model, {"0": name}, stream=3, hook_names={"0": "bench"},
                                         positions="incremental", backend=be, d_in=a.d_in)
            w, c = run(lambda i: model(x), rate)
            st = att.status()[name]
            att.detach()
            print("sweep_hook_%s %s: p50 %.2f us p99 %.2f us wall, p50 %.2f us p99 %.2f us cpu per token "
                  "(minus the bare forward; %d tokens, %d dropped, %d errors)"
                  % (be, label, pct(w, .5) - bw50, pct(w, .99) - bw50, pct(c, .5) - bc50, pct(c, .99) - bc50,
                     len(w), st["stats"].get("frames_dropped", 0), st["errors"]))
            tap = saemon_producer.Tap(name, hook="bench", d_in=a.d_in, max_tokens=4, backend=be)
            tmodel = torch.nn.Sequential(torch.nn.Identity(), tap)
            tap.new_stream(5)

            def step(i):
                tmodel(x)
                tap.publish(5, position=i)
            w, c = run(step, rate)
            ts = tap.status()
            tap.close()
            print("sweep_tap_%s %s: p50 %.2f us p99 %.2f us wall, p50 %.2f us p99 %.2f us cpu per token "
                  "(forward with the tap + publish, minus the bare forward; %d tokens, %d dropped, %d errors)"
                  % (be, label, pct(w, .5) - bw50, pct(w, .99) - bw50, pct(c, .5) - bc50, pct(c, .99) - bc50,
                     len(w), ts["stats"].get("frames_dropped", 0), ts["errors"]))


if __name__ == "__main__":
    main()
