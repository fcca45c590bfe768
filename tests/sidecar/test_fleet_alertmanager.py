"""Fleet identity with the real Alertmanager (issue 21 item 10, issue 24 item
9): two `saemon serve` processes (replicas a and b), each with its own ring,
both see stream 7 fire the same rule. Before: the alerts shared one label set
and one Idempotency-Key, and b's resolve resolved a's still-firing alert.
Checked in Alertmanager's /api/v2/alerts: two distinct alerts (labels ring and
replica), and after b's stream ends only b's is resolved.
Skips when prometheus-alertmanager is not installed.
usage: test_fleet_alertmanager.py SAEMON_CLI SOURCE_DIR
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serve_harness import Serve, fail  # noqa: E402
from test_verdict_contract import BAD, D, GOOD, make_sae  # noqa: E402

AM = os.environ.get("SAEMON_ALERTMANAGER") or "/usr/bin/prometheus-alertmanager"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def am_alerts(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/alerts?active=true&silenced=false&inhibited=false"
                                % port, timeout=10) as r:
        return json.loads(r.read())


def main():
    cli, source = sys.argv[1], sys.argv[2]
    if not os.access(AM, os.X_OK):
        print("SKIP: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
        sys.exit(77)
    sys.path.insert(0, os.path.join(source, "producers", "python"))
    from saemon_producer import Producer

    work = tempfile.mkdtemp(prefix="saemon-fleet-")
    am = None
    try:
        cfg = os.path.join(work, "alertmanager.yml")
        with open(cfg, "w") as f:
            f.write("route:\n  receiver: blackhole\n  group_by: [alertname, dictionary]\n"
                    "receivers:\n  - name: blackhole\n")
        port = free_port()
        am = subprocess.Popen([AM, "--config.file=" + cfg, "--storage.path=" + os.path.join(work, "am"),
                               "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address=",
                               "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            fail("alertmanager did not become ready")
        sae, rules = make_sae(work)
        url = "http://127.0.0.1:%d" % port
        rings = {"a": "fleet%da" % os.getpid(), "b": "fleet%db" % os.getpid()}
        servers, producers = {}, {}
        for rep, ring in rings.items():
            servers[rep] = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--metrics", "127.0.0.1:0",
                                       "--alertmanager", url, "--resolved", "--replica", rep],
                                 os.path.join(work, "serve-%s.log" % rep))
            producers[rep] = Producer(ring, hook="core", d_in=D)
        for rep, p in producers.items():
            p.publish(7, 0, BAD)
            p.verdict(7, wait_us=2_000_000)
        deadline = time.time() + 30
        while time.time() < deadline:
            mine = [a for a in am_alerts(port) if a["labels"].get("stream") == "7"]
            if len(mine) == 2:
                break
            time.sleep(0.1)
        else:
            fail("expected two alerts for stream 7 (one per ring/replica), got %r" % mine)
        pairs = sorted((a["labels"].get("replica"), a["labels"].get("ring")) for a in mine)
        if pairs != sorted(rings.items()):
            fail("labels ring/replica: %r" % pairs)
        # replica b's request ends: its alert resolves, a's keeps firing
        producers["b"].end_stream(7, 1)
        deadline = time.time() + 30
        while time.time() < deadline:
            mine = [a for a in am_alerts(port) if a["labels"].get("stream") == "7"]
            if len(mine) == 1:
                break
            time.sleep(0.1)
        if len(mine) != 1 or mine[0]["labels"].get("replica") != "a":
            fail("after b's stream ended, the active alerts are %r (expected a's only)" % mine)
        for rep in rings:
            producers[rep].close()
            rc, log = servers[rep].stop()
            if rc not in (0,):
                fail("serve %s exited %d:\n%s" % (rep, rc, log))
        print("ok: two replicas, one stream id: two Alertmanager alerts (ring, replica labels); "
              "b's resolve left a's firing")
    finally:
        if am is not None:
            am.send_signal(signal.SIGTERM)
            try:
                am.wait(10)
            except subprocess.TimeoutExpired:
                am.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
