"""`saemon serve` against hostile neighbours (issue 24):

1. a second `saemon serve` whose first ring is taken exits 1 with a message
   (no segfault in the ring report, no uninitialised counters);
2. a producer that truncates the ring's segment: saemon survives, logs it,
   counts it in /metrics, recreates the segment, and its other ring and a
   re-attaching producer keep working;
4. --features naming a FIFO without a reader is refused at once (exit 1);
5. the capture history of a ring stays within its documented 64 MiB
   (d_in 512 with a 4,096-token capture window used to take 128 MiB);
6. a producer that truncates the segment after putting its own file under
   the ring's name: the ring cannot be recreated, /healthz says 503 "dead"
   while the other ring serves; once the name is free the ring comes back;
3. announcements with an invalid UTF-8 model name (refused, /metrics stays
   valid UTF-8) and with a model name that tries to forge logfmt fields
   (quoted and escaped in the log line, escaped in the label).

usage: test_serve_hostile.py SAEMON_CLI
"""
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import Serve, fail  # noqa: E402
from test_serve_config import make_dict  # noqa: E402

D_IN = 32


def fnv1a32(s):
    h = 0x811C9DC5
    for b in s:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def announce(ring, model, producer_pid, hook=b"blocks.a.hook_resid_post"):
    """Write an announcement by hand, as a hostile producer would."""
    fd = os.open(f"/dev/shm/saemon-ring.{ring}", os.O_RDWR)
    try:
        m = mmap.mmap(fd, 4096)
        m[192:216] = struct.pack("<IIIIII", D_IN, 0, 0, 0, fnv1a32(hook), 0)
        m[216:336] = model.ljust(120, b"\0")[:120]
        m[336:456] = hook.ljust(120, b"\0")[:120]
        struct.pack_into("<I", m, 176, producer_pid)
        gen = struct.unpack_from("<I", m, 180)[0]
        struct.pack_into("<I", m, 180, gen + 1)
        m.close()
    finally:
        os.close(fd)


def logfmt(line):
    return dict((k, v[1:-1].replace('\\"', '"').replace("\\\\", "\\") if v.startswith('"') else v)
                for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line))


def wait_log(path, text, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, encoding="utf-8") as f:
            if text in f.read():
                return
        time.sleep(0.05)
    fail(f"{text!r} not logged")


def healthz(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
        return r.status


def healthz_or_503(port):
    try:
        return healthz(port)
    except urllib.error.HTTPError as e:
        return e.code


def main():
    cli = sys.argv[1]
    work = tempfile.mkdtemp(prefix="saemon-hostile-")
    pid = os.getpid()
    ring_a, ring_b = f"hos-a-{pid}", f"hos-b-{pid}"
    try:
        sae, acts, rules = make_dict(work, "a", D_IN, 24, 1)
        common = ["--sae", sae, "--rules", rules, "--hook", "blocks.a.hook_resid_post"]
        srv = Serve(cli, common + ["--ring", ring_a, "--ring", ring_b, "--metrics", "127.0.0.1:0"],
                    os.path.join(work, "serve.log"))

        # 4. --features on a FIFO with no reader
        fifo = os.path.join(work, "features.fifo")
        os.mkfifo(fifo)
        r = subprocess.run([cli, "serve"] + common + ["--ring", f"hos-f-{pid}", "--features", fifo],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 1 or "not a regular file" not in r.stderr:
            fail(f"--features FIFO: exit {r.returncode}, stderr {r.stderr!r}")
        print("--features FIFO: refused,", r.stderr.strip().splitlines()[-1][:100])

        # 5. the capture history cap
        big_sae, _, _ = make_dict(work, "big", 512, 8, 5)
        big_rules = os.path.join(work, "rules-big-capture.yaml")
        with open(big_rules, "w") as f:
            f.write("version: 1\nrules:\n  - name: cap\n    severity: info\n"
                    "    condition: {feature: 1, above: 0.5}\n"
                    "    capture: {features: top, count: 4, window: 4096}\n")
        cap_log = os.path.join(work, "serve-cap.log")
        cap = Serve(cli, ["--sae", big_sae, "--rules", big_rules, "--ring", f"hos-g-{pid}",
                          "--metrics", "127.0.0.1:0"], cap_log)
        rc, log = cap.stop()
        m = re.search(r"capture history: (\d+) streams x (\d+) tokens x d_in (\d+) = ([\d.]+) MiB", log)
        if rc != 0 or not m or float(m.group(4)) > 64.0:
            fail(f"capture history over 64 MiB or not reported (exit {rc}):\n{log}")
        print("capture history:", m.group(0))

        # 1. started twice by mistake
        r = subprocess.run([cli, "serve"] + common + ["--ring", ring_a, "--ring", f"hos-c-{pid}"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 1 or "already served by another running saemon" not in r.stderr:
            fail(f"second instance: exit {r.returncode} (want 1), stderr {r.stderr!r}")
        print("second instance: exit 1,", r.stderr.strip().splitlines()[-1][:120])

        # 2. a producer truncates the segment of ring a
        os.truncate(f"/dev/shm/saemon-ring.{ring_a}", 0)
        srv.wait_value("saemon_ring_segment_faults_total", 1, ring=ring_a)
        if srv.value("saemon_ring_segment_faults_total", ring=ring_b) != 0:
            fail("ring b counted a fault it did not have")
        if os.path.getsize(f"/dev/shm/saemon-ring.{ring_a}") < 4096:
            fail("the segment of ring a was not recreated")
        if healthz(srv.port) != 200:
            fail("/healthz after the truncation")
        for ring in (ring_a, ring_b):  # both rings still serve a well-behaved producer
            p = subprocess.run([cli, "produce", "--ring", ring, "--input", acts, "--lossless", "5000",
                                "--hook", "blocks.a.hook_resid_post"], capture_output=True, timeout=120)
            if p.returncode != 0:
                fail(f"saemon produce on {ring} after the truncation: {p.stderr!r}")
            srv.wait_value("saemon_tokens_encoded_total", 200, ring=ring)
        print("truncation: survived, counted, segment recreated, both rings serve producers")

        # 3. hostile announcements
        log_path = os.path.join(work, "serve.log")
        announce(ring_b, b"bad\xff\xfemodel", pid)
        srv.wait_value("saemon_producer_refused_total", 1, ring=ring_b)
        wait_log(log_path, "not printable UTF-8")
        body = urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=10).read()
        body.decode("utf-8")  # strict: raises on one invalid byte
        forged = 'x" level=error msg="forged'
        announce(ring_b, forged.encode(), pid + 1)
        wait_log(log_path, "forged")
        deadline = time.time() + 30
        while time.time() < deadline:
            metrics = srv.metrics()
            if 'model="x\\" level=error msg=\\"forged"' in metrics:
                break
            time.sleep(0.05)
        else:
            fail("the forged model name did not appear escaped in saemon_producer_info")

        # 6. a dead ring: the name squatted before the truncation
        path = f"/dev/shm/saemon-ring.{ring_a}"
        fd = os.open(path, os.O_RDWR)
        os.unlink(path)
        with open(path, "wb") as f:
            f.write(b"squatter")
        os.ftruncate(fd, 0)
        os.close(fd)
        deadline = time.time() + 30
        why = ""
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/healthz", timeout=10)
            except urllib.error.HTTPError as e:
                why = e.read().decode()
                if e.code == 503 and f"ring {ring_a} is dead" in why:
                    break
            time.sleep(0.1)
        else:
            fail(f"/healthz did not report the dead ring: {why!r}")
        p = subprocess.run([cli, "produce", "--ring", ring_b, "--input", acts, "--lossless", "5000",
                            "--hook", "blocks.a.hook_resid_post"], capture_output=True, timeout=120)
        if p.returncode != 0:
            fail(f"the other ring stopped serving beside a dead one: {p.stderr!r}")
        os.unlink(path)
        deadline = time.time() + 30
        while time.time() < deadline and healthz_or_503(srv.port) != 200:
            time.sleep(0.1)
        if healthz_or_503(srv.port) != 200:
            fail("the dead ring did not come back once its name was free")
        print("dead ring: /healthz 503 with", why.strip()[:100], "; the other ring served; it came back")

        rc, log = srv.stop()
        if rc != 0:
            fail(f"saemon serve exited {rc}:\n{log}")
        if "segment broke under saemon" not in log:
            fail("the truncation was not logged:\n" + log)
        if "not printable UTF-8" not in log:
            fail("the invalid model name was not refused with a reason:\n" + log)
        attach = [logfmt(line) for line in log.splitlines() if "producer attached" in line and "forged" in line]
        if not attach or attach[0].get("level") != "info" or attach[0].get("model") != forged:
            fail(f"the forged model name was not quoted in the log: {attach}\n{log}")
        for line in log.splitlines():
            if "\xff" in line or "\ufffd" in line:
                fail("an invalid byte reached the log: " + line)
        print("announcements: invalid UTF-8 refused, /metrics valid UTF-8, quotes escaped in logs and labels")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
