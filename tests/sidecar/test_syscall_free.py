#!/usr/bin/python3
"""The model's thread makes no system call when it publishes into a ring that
`saemon serve` consumes and that is idle between tokens (issue 25): the C
producer, the pure-Python producer, the ctypes path into libsaemon-producer
and the PyTorch forward hook, each run under strace; the system calls of the
publishing thread between two marker calls are counted. Not a timing test:
whatever the machine's speed, a publish either calls the kernel or not.
After 600 ms of silence the daemon sleeps on the futex; the first publish then
may make exactly one FUTEX_WAKE and nothing else.

usage: test_syscall_free.py SAEMON_CLI SYSCALL_PRODUCER_EXE SOURCE_DIR [PRODUCER_LIB]
(PRODUCER_LIB: libsaemon-producer.so for the ctypes path; omitted in
sanitizer builds, where Python cannot load an instrumented library).
Exit 77 (skipped) when strace is missing or ptrace is not permitted."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import Serve, fail, write_safetensors  # noqa: E402

CLI, PRODUCER, SOURCE = sys.argv[1], sys.argv[2], sys.argv[3]
PRODUCER_LIB = sys.argv[4] if len(sys.argv) > 4 else ""
D_IN, D_SAE, TOKENS, GAP_US = 64, 128, 150, 3000
HOOK = "blocks.0.hook_resid_post"
# clock_gettime is a vDSO call wherever the clocksource allows it; where it
# does not (some VMs), that is the machine's clock, not a saemon cost.
CLOCK_CALLS = {"clock_gettime", "clock_gettime64", "gettimeofday"}


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def make_dict(work):
    g = np.random.default_rng(3)
    w = g.standard_normal((D_IN, D_SAE)).astype(np.float32) / np.sqrt(D_IN)
    sae = os.path.join(work, "sae")
    os.makedirs(sae)
    write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
        "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.full(D_SAE, -0.3, np.float32),
        "b_dec": np.zeros(D_IN, np.float32)})
    with open(os.path.join(sae, "cfg.json"), "w") as f:
        json.dump({"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": HOOK, "model_name": "generated"}}, f)
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("version: 1\nrules:\n  - name: hot\n    severity: warning\n"
                "    condition: {feature: 2, above: 0.6}\n")
    return sae, rules


def window(lines, name):
    """System calls between the begin-NAME and end-NAME markers."""
    calls, inside = [], False
    for line in lines:
        m = re.match(r"\s*([a-z0-9_]+)\(", line)
        if not m:
            continue  # signals, resumed/unfinished fragments
        if "saemon-syscall-marker/begin-" + name in line:
            inside = True
            continue
        if "saemon-syscall-marker/end-" + name in line:
            return calls
        if inside and m.group(1) not in CLOCK_CALLS:
            calls.append(line.strip())
    fail("markers of window %s not found in the strace log" % name)


def traced(work, tag, argv):
    """Run argv under strace -ff; the publishing (main) thread's calls."""
    prefix = os.path.join(work, "strace-" + tag)
    env = dict(os.environ)  # LeakSanitizer cannot run under ptrace (ASan builds)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
    proc = subprocess.run(["strace", "-ff", "-qq", "-o", prefix] + argv, capture_output=True, text=True,
                          timeout=300, env=env)
    if proc.returncode != 0:
        fail("%s failed (%d):\n%s\n%s" % (tag, proc.returncode, proc.stdout, proc.stderr))
    m = re.search(r"^pid (\d+)$", proc.stdout, re.M)
    if not m:
        fail("%s printed no pid:\n%s" % (tag, proc.stdout))
    with open("%s.%s" % (prefix, m.group(1))) as f:
        lines = f.read().splitlines()
    stats = re.search(r"^published (\d+) dropped (\d+)", proc.stdout, re.M)
    if not stats or int(stats.group(1)) < TOKENS + 21 or int(stats.group(2)) != 0:
        fail("%s: not every frame was published: %s" % (tag, proc.stdout))
    return lines


def check(tag, lines):
    warm = window(lines, "warm")
    cold = window(lines, "cold")
    if warm:
        fail("%s: %d system calls in %d publishes into an idle (warm) daemon, e.g.:\n  %s"
             % (tag, len(warm), TOKENS, "\n  ".join(warm[:10])))
    names = [c.split("(", 1)[0] for c in cold]
    if len(cold) > 1 or any(n != "futex" for n in names):
        fail("%s: the first publish after a pause made %s (at most one futex wake expected)" % (tag, cold))
    print("ok %s: 0 system calls in %d publishes %d us apart; after 600 ms of silence: %s"
          % (tag, TOKENS, GAP_US, names or "none"))


def main():
    if not shutil.which("strace"):
        skip("strace is not installed (scripts/install-deps.sh installs it)")
    probe = subprocess.run(["strace", "-qq", "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        skip("strace cannot trace here (ptrace not permitted?): " + probe.stderr.strip())
    work = tempfile.mkdtemp(prefix="saemon-syscall-")
    srv = None
    try:
        sae, rules = make_dict(work)
        ring = "sysc%d" % os.getpid()
        srv = Serve(CLI, ["--sae", sae, "--rules", rules, "--ring", ring, "--metrics", "127.0.0.1:0",
                          "--alerts", os.path.join(work, "alerts.jsonl")], os.path.join(work, "serve.log"))
        check("C producer", traced(work, "c", [PRODUCER, ring, str(D_IN), str(TOKENS), str(GAP_US)]))
        py = [sys.executable, os.path.join(SOURCE, "tests", "sidecar", "syscall_producer.py"), SOURCE, ring,
              str(D_IN), str(TOKENS), str(GAP_US)]
        check("Python producer", traced(work, "py", py + ["python", "publish"]))
        if PRODUCER_LIB:
            os.environ["SAEMON_PRODUCER_LIB"] = PRODUCER_LIB
            check("Python producer (ctypes path)", traced(work, "pyc", py + ["native", "publish"]))
        else:
            print("SKIP ctypes path: no libsaemon-producer given (sanitizer build)")
        try:
            import torch  # noqa: F401
        except ImportError:
            print("SKIP forward hook: torch is not installed for %s" % sys.executable)
        else:
            check("PyTorch forward hook (pure Python)", traced(work, "hook", py + ["python", "hook"]))
            if PRODUCER_LIB:
                check("PyTorch forward hook (ctypes path)", traced(work, "hookc", py + ["native", "hook"]))
        idle = srv.value("saemon_consumer_idle_cpu_seconds_total")
        if idle is None or srv.value("saemon_consumer_cpu_seconds_total") is None:
            fail("/metrics lacks the consumer CPU counters")
        print("consumer idle CPU so far: %.3f s" % idle)
    finally:
        if srv:
            try:
                srv.stop()  # SIGTERM: serve removes its ring segment (SIGKILL left it in /dev/shm)
            except Exception:
                srv.kill()
        for f in glob.glob(os.path.join(work, "strace-*")):
            os.unlink(f)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
