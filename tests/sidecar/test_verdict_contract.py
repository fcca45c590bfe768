"""The safety contract of `saemon serve` verdicts with the Python producer
(issue 21 items 1-3, 5, 6), against the real daemon:
  1. reuse: the default attach path uses one stream id for every request;
     after a blocked request ends, the next request on the same id starts
     clean (before: every later request read block);
  2. wait: Producer.verdict(stream, wait_us=...) returns the verdict of the
     token just published, for 20 of 20 offending sequences (before: a plain
     read right after the token caught 6 of 20);
  3. restart: a new producer (a restarted model server reusing request ids)
     does not inherit the old one's verdicts, and the old one's still-firing
     alert is resolved;
  4. flood: 20,000 one-token streams into a 16-slot ring without lossless
     mode: every end-of-stream arrives (before: 47,512 of 100,000 lost), and
     saemon_streams_open returns to 0;
  5. idle: a producer idle longer than heartbeat_timeout is not reported
     down (the library heartbeat thread), nor after a clean detach;
  6. SIGTERM resolves what is still firing (--resolved);
  7. bounds (issue 24 item 4): beyond --max-streams a new stream goes
     unmonitored, is counted, and /healthz answers 503 with the reason
     (before: verdict 0, no alert, /healthz ok); --stream-idle-timeout ends
     (resolves, frees) the streams of a producer that vanished;
  8. a consumer killed mid-stream: the producer notices (consumer lock),
     stops writing into the dead ring, and the next daemon shows what was
     lost in saemon_tokens_lost_total{reason="consumer_down"} (before: 0).
A tiny identity SAE (feature i = relu(x_i)) makes the rule exact.
usage: test_verdict_contract.py SAEMON_CLI SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serve_harness import Serve, fail, write_safetensors  # noqa: E402

D = 4
GOOD = np.zeros(D, np.float32)
BAD = np.array([10, 0, 0, 0], np.float32)


def make_sae(work):
    sae = os.path.join(work, "sae")
    os.makedirs(sae)
    eye = np.eye(D, dtype=np.float32)
    write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
        "W_enc": eye, "W_dec": eye, "b_enc": np.zeros(D, np.float32), "b_dec": np.zeros(D, np.float32)})
    with open(os.path.join(sae, "cfg.json"), "w") as f:
        json.dump({"d_in": D, "d_sae": D, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": False, "normalize_activations": "none",
                   "metadata": {"hook_name": "core", "model_name": "identity"}}, f)
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write("version: 1\nrules:\n  - name: bad\n    severity: critical\n    action: block\n"
                "    condition: {feature: 0, above: 5}\n")
    return sae, rules


def alerts(path):
    """The alert file's complete lines: a line saemon is still writing (no
    newline yet) is left for the next look."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n") and line.strip()]


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cli, source = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(source, "producers", "python"))
    from saemon_producer import VERDICT_BLOCK, Producer

    work = tempfile.mkdtemp(prefix="saemon-verdicts-")
    ring = "vc%d" % os.getpid()
    try:
        sae, rules = make_sae(work)
        # ring_group needs ring_mode 0660: refused with file:line:column
        bad = os.path.join(work, "bad.yaml")
        with open(bad, "w") as f:
            f.write("version: 1\nring_group: root\ndictionaries:\n  - {sae: %s, rules: %s, rings: [x%d]}\n"
                    % (sae, rules, os.getpid()))
        r = subprocess.run([cli, "serve", "--config", bad], capture_output=True, text=True)
        if r.returncode != 1 or "bad.yaml:2:13" not in r.stderr or "0660" not in r.stderr:
            fail("ring_group without ring_mode 0660: %d %r" % (r.returncode, r.stderr))
        alert_file = os.path.join(work, "alerts.jsonl")
        srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--slots", "16", "--metrics",
                          "127.0.0.1:0", "--alerts", alert_file, "--resolved", "--heartbeat-timeout", "1"],
                    os.path.join(work, "serve.log"))

        # 1. reuse of stream id 0 after a blocked request
        p = Producer(ring, hook="core", d_in=D, heartbeat=0.2)
        p.publish(0, 0, GOOD)
        p.publish(0, 1, BAD)
        v, fresh = p.verdict_wait(0, 2_000_000)
        if (v, fresh) != (VERDICT_BLOCK, True):
            fail("reuse: the offending request reads %r" % ((v, fresh),))
        p.end_stream(0, 2)
        p.publish(0, 0, GOOD)  # the next request, same id
        if p.verdict(0) != 0:
            fail("reuse: a new request on stream 0 reads the old verdict %d" % p.verdict(0))
        v, fresh = p.verdict_wait(0, 2_000_000)
        if (v, fresh) != (0, True):
            fail("reuse: after saemon evaluated the new request it reads %r" % ((v, fresh),))
        p.end_stream(0, 1)
        print("ok reuse: a new sequence on a reused stream id starts clean")

        # 2. the verdict of the token just published, 20 of 20
        caught = 0
        for s in range(100, 120):
            for t in range(5):
                p.publish(s, t, GOOD)
            p.publish(s, 5, BAD)
            caught += p.verdict(s, wait_us=2_000_000) == VERDICT_BLOCK
            p.end_stream(s, 6)
        if caught != 20:
            fail("wait: %d of 20 offending sequences read block right after the token" % caught)
        if p.stats["verdict_timeouts"]:
            fail("wait: %d timeouts" % p.stats["verdict_timeouts"])
        print("ok wait: 20 of 20 blocked before the next token")

        # 3. a restarted producer reusing ids: no inherited verdict, old alert resolved
        p.publish(7, 0, BAD)
        if p.verdict(7, wait_us=2_000_000) != VERDICT_BLOCK:
            fail("restart: stream 7 not blocked")
        p.close()  # "crash" without end_stream
        q = Producer(ring, hook="core", d_in=D, heartbeat=0.2)
        if q.verdict(7) != 0:
            fail("restart: the new producer reads the old producer's block before publishing")
        q.publish(7, 0, GOOD)
        v, fresh = q.verdict_wait(7, 2_000_000)
        if (v, fresh) != (0, True):
            fail("restart: the new producer's stream 7 reads %r" % ((v, fresh),))
        deadline = time.time() + 20
        while time.time() < deadline:
            resolved = [a for a in alerts(alert_file) if a.get("stream") == 7 and a.get("status") == "resolved"]
            if resolved:
                break
            time.sleep(0.05)
        else:
            fail("restart: the old producer's alert on stream 7 was never resolved")
        q.end_stream(7, 1)
        print("ok restart: a new producer starts clean, the old one's streams are resolved")

        # 4. end-of-stream flood
        ended0 = srv.value("saemon_streams_ended_total") or 0
        n = 20000
        for s in range(10_000, 10_000 + n):
            q.publish(s, 0, GOOD)
            q.end_stream(s, 1)
        srv.wait_value("saemon_streams_ended_total", ended0 + n, timeout=120)
        if q.stats["eos_lost"]:
            fail("flood: %d end-of-stream frames lost" % q.stats["eos_lost"])
        deadline = time.time() + 20
        while srv.value("saemon_streams_open") != 0 and time.time() < deadline:
            time.sleep(0.05)
        if srv.value("saemon_streams_open") != 0:
            fail("flood: saemon_streams_open is %s after every stream ended" % srv.value("saemon_streams_open"))
        print("ok flood: %d of %d ends arrived (%d frames of rows dropped)"
              % (srv.value("saemon_streams_ended_total") - ended0, n, q.stats["frames_dropped"]))

        # 5. idle longer than heartbeat_timeout (1 s), then a clean detach
        time.sleep(2.5)
        if srv.value("saemon_producer_down") != 0 or srv.value("saemon_producer_up") != 1:
            fail("idle: down=%s up=%s" % (srv.value("saemon_producer_down"), srv.value("saemon_producer_up")))
        # 6. something firing at SIGTERM
        q.publish(99, 0, BAD)
        q.verdict(99, wait_us=2_000_000)
        q.close()
        time.sleep(0.3)
        if srv.value("saemon_producer_down") != 0:
            fail("a clean detach is reported down")
        if srv.value("saemon_verdicts_evicted_total") is None:
            fail("saemon_verdicts_evicted_total is not exported")
        rc, log = srv.stop()
        if rc != 0:
            fail("saemon serve exited %d:\n%s" % (rc, log))
        if "stopped heartbeating" in log or "is gone" in log:
            fail("idle or detached producer reported down:\n" + log)
        if not [a for a in alerts(alert_file) if a.get("stream") == 99 and a.get("status") == "resolved"]:
            fail("SIGTERM did not resolve the alert still firing on stream 99:\n" + log)
        print("ok idle: not down while idle or after a clean detach; SIGTERM resolves what fires")

        # 7. max_streams and stream_idle_timeout
        alert2 = os.path.join(work, "alerts2.jsonl")
        ring2 = ring + "b"
        srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring2, "--metrics", "127.0.0.1:0",
                          "--alerts", alert2, "--resolved", "--max-streams", "4", "--stream-idle-timeout", "1"],
                    os.path.join(work, "serve2.log"))
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % srv.port, timeout=10) as r:
            if r.status != 200:
                fail("healthz before the limit: %d" % r.status)
        p = Producer(ring2, hook="core", d_in=D, heartbeat=0.2)
        for s in range(4):
            p.publish(s, 0, BAD if s == 0 else GOOD)
        p.publish(4, 0, BAD)  # the fifth: over the limit
        v, fresh = p.verdict_wait(4, 2_000_000)
        if srv.value("saemon_streams_unmonitored_total") != 1:
            fail("max_streams: unmonitored = %s" % srv.value("saemon_streams_unmonitored_total"))
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % srv.port, timeout=10)
            fail("healthz is ok while a stream goes unmonitored")
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            if e.code != 503 or "unmonitored" not in body:
                fail("healthz: %d %r" % (e.code, body))
        p.close()  # the producer vanishes without ending its streams
        srv.wait_value("saemon_streams_idle_ended_total", 4, timeout=30)
        if srv.value("saemon_streams_open") != 0:
            fail("stream_idle_timeout: %s streams still open" % srv.value("saemon_streams_open"))
        deadline = time.time() + 20
        while not [a for a in alerts(alert2) if a.get("stream") == 0 and a.get("status") == "resolved"]:
            if time.time() > deadline:
                fail("stream_idle_timeout did not resolve the alert of stream 0")
            time.sleep(0.05)
        rc, log = srv.stop()
        if rc != 0:
            fail("saemon serve (bounds) exited %d:\n%s" % (rc, log))
        print("ok bounds: max_streams counted with /healthz 503, idle streams of a vanished producer resolved")

        # 8. kill -9 the consumer while the producer publishes, then restart it
        args3 = ["--sae", sae, "--rules", rules, "--ring", ring2, "--metrics", "127.0.0.1:0", "--slots", "16"]
        srv = Serve(cli, args3, os.path.join(work, "serve3.log"))
        Producer(ring2, hook="core", d_in=D).close()  # a short-lived producer still gets its log line
        time.sleep(0.4)
        with open(os.path.join(work, "serve3.log")) as f:
            if "attached (and detached within" not in f.read():
                fail("a producer that attached and detached between two looks was not logged")
        p = Producer(ring2, hook="core", d_in=D, heartbeat=0.05)
        for t in range(50):
            p.publish(1, t, GOOD)
        srv.kill()  # SIGKILL: the segment stays, nobody reads it
        time.sleep(0.1)
        for t in range(50, 150):
            p.publish(1, t, GOOD)  # into the dead ring (until noticed), then dropped
        lost = p.stats["tokens_lost_consumer_down"]
        if lost == 0:
            fail("consumer_down: the producer did not notice the dead consumer")
        srv = Serve(cli, args3, os.path.join(work, "serve4.log"))
        deadline = time.time() + 20
        while srv.value("saemon_tokens_lost_total", reason="consumer_down") != lost and time.time() < deadline:
            p.heartbeat()
            time.sleep(0.05)
        got = srv.value("saemon_tokens_lost_total", reason="consumer_down")
        if got != lost:
            fail("consumer_down: the new daemon shows %s lost, the producer counted %d" % (got, lost))
        p.close()
        rc, log = srv.stop()
        if rc != 0:
            fail("saemon serve (restarted) exited %d:\n%s" % (rc, log))
        print("ok consumer_down: %d tokens lost while saemon was down, visible on the next daemon's /metrics" % lost)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
