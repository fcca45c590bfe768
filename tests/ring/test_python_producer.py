#!/usr/bin/python3
"""The pure-Python producer (producers/python) against the real consumer
(tests/ring/ring_dump.c, which uses libsaemon's saemon_ring_*).

Checks: handshake and refusal, rows arrive bit-exact (CRC-32 of the fp32
rows on both sides), token positions, end-of-stream, drop counting and gap
marking, fp16/bf16 conversion, the verdict back-channel, and the PyTorch
forward hooks (skipped with a message if torch is not installed).
usage: test_python_producer.py RING_DUMP_EXE SOURCE_DIR
"""
import os
import subprocess
import sys
import time
import zlib

import numpy as np

RING_DUMP, SOURCE = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SOURCE, "producers", "python"))
import saemon_producer  # noqa: E402
from saemon_producer import Producer, RefusedError  # noqa: E402

D = 16
HOOK = "blocks.0.hook_resid_post"


class Dump:
    """A running ring-dump consumer and the lines it printed."""

    def __init__(self, name, d_in=D, hook=HOOK, verdict_on_eos=0):
        self.p = subprocess.Popen([RING_DUMP, name, str(d_in), hook, str(verdict_on_eos)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "READY"
        self.frames = []

    def read_frames(self, n):
        while len(self.frames) < n:
            line = self.p.stdout.readline()
            assert line.startswith("F "), "consumer ended early: %r" % line
            s, t, nr, gap, eos, dropped, crc = (int(x) for x in line.split()[1:])
            self.frames.append(dict(stream=s, token=t, n_rows=nr, gap=bool(gap), eos=bool(eos),
                                    dropped=dropped, crc=crc))
        return self.frames

    def finish(self):
        self.p.stdin.close()
        rest = self.p.stdout.read().splitlines()
        assert self.p.wait(10) == 0
        stats = [line for line in rest if line.startswith("S ")]
        assert stats, rest
        f = stats[0].split()
        return dict(tokens_received=int(f[1]), tokens_produced=int(f[2]), frames_dropped=int(f[3]),
                    rejected=int(f[4]), refused=int(f[5]), model=f[6], dtype=f[7])


def crc(rows):
    return zlib.crc32(np.ascontiguousarray(rows, dtype=np.float32).tobytes())


def ring_name(tag):
    return "py%d-%s" % (os.getpid(), tag)


def test_rows_tokens_eos_verdict():
    name = ring_name("basic")
    dump = Dump(name, verdict_on_eos=4)
    try:
        Producer(name, hook="blocks.1.hook_resid_post", d_in=D)
        raise AssertionError("a wrong hook must be refused")
    except RefusedError as e:
        assert "does not match" in str(e), e
    rng = np.random.default_rng(1)
    a = rng.standard_normal((10, D)).astype(np.float32)
    b = rng.standard_normal((5, D)).astype(np.float32)
    with Producer(name, hook=HOOK, d_in=D, model="py-test") as p:
        for t in range(10):
            assert p.publish(1, t, a[t])
        assert p.publish(2, 0, b)            # 5 rows in one frame (slot holds 8)
        assert p.end_stream(1, 10)
        assert p.end_stream(2, 5)
        frames = dump.read_frames(13)
        for t in range(10):
            f = frames[t]
            assert (f["stream"], f["token"], f["n_rows"]) == (1, t, 1), f
            assert f["crc"] == crc(a[t]), "rows arrive bit-exact"
            assert not f["gap"] and not f["eos"]
        assert (frames[10]["stream"], frames[10]["n_rows"], frames[10]["crc"]) == (2, 5, crc(b))
        assert frames[11]["eos"] and frames[12]["eos"] and frames[11]["n_rows"] == 0
        for _ in range(5000):  # the consumer sets the verdict when it sees end-of-stream
            if p.verdict(1) == 4 and p.verdict(2) == 4:
                break
            time.sleep(0.001)
        assert p.verdict(1) == saemon_producer.VERDICT_BLOCK
        assert p.verdict(3) == saemon_producer.VERDICT_NONE
        # header-only checksum variant is accepted too
    with Producer(name, hook=HOOK, d_in=D, checksum="header") as p:
        assert p.publish(3, 0, a[:2])
        f = dump.read_frames(14)[13]
        assert (f["stream"], f["n_rows"], f["crc"]) == (3, 2, crc(a[:2]))
    st = dump.finish()
    assert st["tokens_received"] == 17 and st["rejected"] == 0 and st["refused"] == 1, st
    assert st["model"] == "py-test" or st["model"] == "-", st


def test_close_releases_the_ring_at_once():
    """A closed producer frees the ring for the next one at once, even while
    a buffer view of its mapping (a hook's ctypes view, a numpy array) keeps
    the mapping alive: before, the lock went with the mapping's garbage
    collection and the next attach raised BusyError ("pid 0")."""
    name = ring_name("reattach")
    dump = Dump(name)
    for i in range(3):
        p = Producer(name, hook=HOOK, d_in=D, heartbeat=0.001)
        assert p.publish(1, i, np.zeros(D, np.float32))
        mm = getattr(p, "_mm", None)  # the pure-Python producer's mapping (the C one unmaps)
        view = memoryview(mm) if mm is not None else None  # keeps the mapping (and its file) referenced
        p.close()
        with Producer(name, hook=HOOK, d_in=D) as q:  # BusyError before the fix
            assert q.publish(1, 100 + i, np.ones(D, np.float32))
        time.sleep(0.01)  # a closed producer's heartbeat must not attach again
        with Producer(name, hook=HOOK, d_in=D) as q:
            assert q.publish(1, 200 + i, np.ones(D, np.float32))
        if view is not None:
            view.release()
    dump.read_frames(9)
    st = dump.finish()
    assert st["tokens_received"] == 9 and st["rejected"] == 0, st


def test_drops_counted_and_gap_marked():
    name = ring_name("drops")
    dump = Dump(name)
    p = Producer(name, hook=HOOK, d_in=D)
    # Stop the consumer from draining: SIGSTOP it, overflow the 64 slots.
    dump.p.send_signal(19)
    row = np.ones(D, np.float32)
    results = [p.publish(7, t, row) for t in range(100)]
    dump.p.send_signal(18)
    assert results.count(True) == 64 and results.count(False) == 36, results.count(True)
    assert p.stats["frames_dropped"] == 36
    dump.read_frames(64)
    for _ in range(10000):  # until the consumer has released its last slot
        if p.in_flight() == 0:
            break
        time.sleep(0.001)
    assert p.publish(7, 100, row)
    frames = dump.read_frames(65)
    assert [f["token"] for f in frames[:64]] == list(range(64))
    last = frames[64]
    assert last["token"] == 100 and last["gap"] and last["dropped"] == 36, last
    p.close()
    st = dump.finish()
    assert st["frames_dropped"] == 36 and st["tokens_produced"] == 101, st


def test_half_precision():
    for dtype, npdt in (("f16", np.float16), ("bf16", None)):
        name = ring_name(dtype)
        dump = Dump(name)
        x = np.linspace(-3, 3, D, dtype=np.float32)
        if npdt is not None:
            raw = x.astype(npdt)
            expect = raw.astype(np.float32)
        else:  # bf16: the top 16 bits of each fp32 (truncation is exact for these values' expectation)
            bits = x.view(np.uint32) >> 16
            raw = bits.astype(np.uint16)
            expect = (bits << 16).astype(np.uint32).view(np.float32)
        with Producer(name, hook=HOOK, d_in=D, dtype=dtype) as p:
            assert p.publish(1, 0, raw)
            f = dump.read_frames(1)[0]
            assert f["crc"] == crc(expect), dtype
        assert dump.finish()["dtype"] == dtype


def test_torch_hooks():
    try:
        import torch
    except ImportError:
        print("SKIP torch hooks: torch is not installed for %s" % sys.executable)
        return
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, D), torch.nn.Tanh(), torch.nn.Linear(D, 4))
    name = ring_name("torch")
    dump = Dump(name, hook="0.out")
    att = saemon_producer.attach(model, {"1": name}, stream=5, hook_names={"1": "0.out"})
    x = torch.randn(1, 6, 8)
    with torch.no_grad():
        # full recomputation over a growing prefix: each position is sent once
        for T in (3, 4, 5, 6):
            model(x[:, :T])
        # expected rows from forwards of the same shapes as the hooked ones:
        # a BLAS (OpenBLAS) may round a 3-row product differently from a 6-row one
        expect = torch.tanh(model[0](x))[0].numpy()
        first3 = torch.tanh(model[0](x[:, :3]))[0].numpy()
        single1 = torch.tanh(model[0](x[:, 1:2]))[0].numpy()
        att.new_stream(6)  # incremental decoding: one new position per pass
        for t in range(3):
            model(x[:, t:t + 1])
    att.end_stream(6)
    frames = dump.read_frames(8)
    s5 = [f for f in frames if f["stream"] == 5]
    assert [(f["token"], f["n_rows"]) for f in s5] == [(0, 3), (3, 1), (4, 1), (5, 1)], s5
    assert s5[0]["crc"] == crc(first3) and s5[3]["crc"] == crc(expect[5:6])
    s6 = [f for f in frames if f["stream"] == 6]
    assert [(f["token"], f["n_rows"], f["eos"]) for f in s6] == [(0, 1, False), (1, 1, False), (2, 1, False),
                                                                  (3, 0, True)], s6
    assert s6[1]["crc"] == crc(single1)
    assert att.verdict(5) == 0
    att.detach()
    st = dump.finish()
    assert st["tokens_received"] == 9 and st["rejected"] == 0, st


def test_torch_hooks_fail_at_attach_never_in_forward():
    """issue 21 item 4: a wrong hook fails at attach(); a wrong width never
    raises from the forward pass (counted, warned once, att.status())."""
    try:
        import torch
    except ImportError:
        print("SKIP torch hooks: torch is not installed for %s" % sys.executable)
        return
    import warnings
    model = torch.nn.Sequential(torch.nn.Linear(8, D), torch.nn.Tanh(), torch.nn.Linear(D, 4))
    name = ring_name("attachfail")
    dump = Dump(name, hook="0.out")
    try:
        saemon_producer.attach(model, {"1": name}, stream=1, hook_names={"1": "wrong.hook"})
        raise AssertionError("a wrong hook must fail at attach()")
    except RefusedError as e:
        assert "does not match" in str(e), e
    # the right hook name on a module of the wrong width (4, the ring wants 16)
    att = saemon_producer.attach(model, {"2": name}, stream=1, hook_names={"2": "0.out"})
    assert att.status()[name]["connected"], att.status()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(1, 2, 8))  # must not raise
    st = att.status()[name]
    assert st["errors"] == 3 and st["width_mismatches"] == 3, st
    assert "4 wide" in st["last_error"], st
    assert sum("not monitoring" in str(w.message) for w in caught) == 1, [str(w.message) for w in caught]
    att.detach()
    # new_stream / request end the previous sequence of a reused id
    att = saemon_producer.attach(model, {"1": name}, stream=3, hook_names={"1": "0.out"})
    with torch.no_grad():
        with att.request(3):
            model(torch.randn(1, 2, 8))
        att.new_stream(3)
        model(torch.randn(1, 1, 8))
        att.new_stream(3)  # ends the sequence above
    frames = dump.read_frames(4)
    assert [(f["token"], f["n_rows"], f["eos"]) for f in frames] == [(0, 2, False), (2, 0, True), (0, 1, False),
                                                                     (1, 0, True)], frames
    att.detach()
    # item 13: the server gives the positions (a cached prefix of 5 tokens)
    pos = {"p": 5}
    att = saemon_producer.attach(model, {"1": name}, stream=4, hook_names={"1": "0.out"}, position=lambda: pos["p"])
    with torch.no_grad():
        model(torch.randn(1, 2, 8))
        pos["p"] = 7
        model(torch.randn(1, 1, 8))
    att.end_stream(4)
    frames = dump.read_frames(7)[4:]
    assert [(f["token"], f["n_rows"], f["eos"]) for f in frames] == [(5, 2, False), (7, 1, False), (8, 0, True)], frames
    att.detach()
    dump.finish()


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
