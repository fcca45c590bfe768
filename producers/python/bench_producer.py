#!/usr/bin/python3
"""Python producer cost per token (raw publish and the PyTorch forward hook).

usage: bench_producer.py SAEMON_BENCH_PRODUCER_EXE [--d-in 2304] [--tokens 20000]
Starts `saemon-bench-producer --serve` as the draining consumer, then times
  * Producer.publish of one float32 row (checksum over rows, and header-only),
  * a forward pass of a hooked module minus the same pass unhooked
    (decode style: one new position per pass).
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
    a = ap.parse_args()
    name = "pybench%d" % os.getpid()
    srv = subprocess.Popen([a.exe, "--serve", name, "--d-in", str(a.d_in)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "READY"
    row = np.random.default_rng(0).standard_normal(a.d_in).astype(np.float32)
    for mode, wake in (("rows", False), ("header", False), ("rows", True)):
        with saemon_producer.Producer(name, hook="bench", d_in=a.d_in, checksum=mode, wake=wake) as p:
            timed(lambda i: p.publish(1, i, row), 2000)
            tag = "py_publish_checksum_%s%s" % (mode, "_wake" if wake else "")
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
            for mode in ("rows", "header"):
                att = saemon_producer.attach(model, {"0": name}, stream=3, hook_names={"0": "bench"},
                                             checksum=mode, positions="incremental")
                timed(lambda i: model(x), 2000)
                hooked = timed(lambda i: model(x), n, mode)
                print("py_hook_checksum_%s %.3f us wall, %.3f us cpu (forward %.3f us hooked vs %.3f us bare)"
                      % (mode, hooked - base, CPU[mode] - CPU["bare"], hooked, base))
                att.detach()
    srv.stdin.close()
    print("consumer_received_dropped_rejected", srv.stdout.read().strip())
    srv.wait()


if __name__ == "__main__":
    main()
