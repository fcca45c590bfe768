#!/usr/bin/python3
"""The Python producer's half of test_syscall_free.py: publishes like a
decoder (Producer.publish, or a PyTorch forward hook) into a ring served by
`saemon serve`, with marker system calls around the measured parts, while
test_syscall_free.py counts this thread's system calls under strace. Pacing
is a busy wait on time.monotonic_ns (vDSO, no system call).

usage: syscall_producer.py SOURCE_DIR RING D_IN TOKENS GAP_US BACKEND MODE
BACKEND: python | native; MODE: publish | hook. Prints "pid N" first."""
import os
import sys
import time

SOURCE, RING = sys.argv[1], sys.argv[2]
D_IN, TOKENS, GAP_NS = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) * 1000
BACKEND, MODE = sys.argv[6], sys.argv[7]
HOOK = "blocks.0.hook_resid_post"  # the hook of test_syscall_free.py's dictionary
sys.path.insert(0, os.path.join(SOURCE, "producers", "python"))
import numpy as np  # noqa: E402

import saemon_producer  # noqa: E402


def marker(what):
    try:
        os.close(os.open("/nonexistent-saemon-syscall-marker/" + what, os.O_RDONLY))
    except OSError:
        pass


def spin_until(t):
    while time.monotonic_ns() < t:
        pass


def main():
    print("pid %d" % os.getpid(), flush=True)
    row = (np.arange(D_IN, dtype=np.float32) % 11) * 0.01
    if MODE == "hook":
        import torch
        torch.set_num_threads(1)
        model = torch.nn.Sequential(torch.nn.Identity())
        att = saemon_producer.attach(model, {"0": RING}, stream=1, model_id="syscall-test", d_in=D_IN,
                                     positions="incremental", backend=BACKEND, hook_names={"0": HOOK})
        p = att.producers["0"]
        x = torch.from_numpy(row).reshape(1, 1, D_IN)
        torch.set_grad_enabled(False)

        def step(tok):
            model(x)
    else:
        att = None
        p = saemon_producer.open_producer(RING, hook=HOOK, d_in=D_IN, model="syscall-test", backend=BACKEND,
                                          handshake_timeout=10)

        def step(tok):
            p.publish(1, tok, row)
    assert p.connected, "not connected to %s" % RING
    assert getattr(p, "native", False) == (BACKEND == "native"), BACKEND
    t = time.monotonic_ns()
    tok = 0
    for _ in range(20):  # warm-up: the ring is in use, Python's caches are warm
        step(tok)
        tok += 1
        t += GAP_NS
        spin_until(t)
    verdicts = 0
    marker("begin-warm")
    for _ in range(TOKENS):
        t += GAP_NS
        spin_until(t)
        step(tok)
        tok += 1
        verdicts += p.verdict(1)
    marker("end-warm")
    spin_until(time.monotonic_ns() + 600_000_000)  # the daemon goes cold
    marker("begin-cold")
    step(tok)
    marker("end-cold")
    print("published %d dropped %d verdicts %d" % (p.stats["frames_published"], p.stats["frames_dropped"],
                                                   verdicts), flush=True)
    if att is not None:
        att.detach()
    else:
        p.close()


if __name__ == "__main__":
    main()
