"""Every Grafana panel expression, every dashboard variable query and every
recording and alerting rule expression of deploy/ run through the HTTP query
API of Debian's real Prometheus, scraping a real `saemon serve`.

The scenario provokes what the alerts watch:
  ring `fed`      fed by `saemon produce` (alerts fire, verdicts are raised)
  ring `drops`    a producer publishes while saemon is stopped (SIGSTOP): the
                  full ring drops frames; then a frame with a NaN is rejected
  ring `quiet`    a producer that heartbeats and never sends a token
  ring `idle`     no producer at all (saemon_producer_up 0)
  ring `refused`  `saemon produce --hook wrong`: refused
  sinks           jsonl (delivers), exec /bin/false (fails), a webhook to a
                  closed port with a spool (the spool grows)
  rules           a broken rules file: the reload fails
  job saemon      a second target on a closed port (up 0)

Each expression must parse and return series, with the dashboard variables
substituted. Four alerts legitimately return nothing here; each is named in
NOT_PROVOKED with the reason, and is checked with its thresholds relaxed
(`> N` -> `> -Inf`) instead, which proves names, labels and joins.

Bounded: Prometheus listens on a free loopback port with a temporary
storage directory and is always killed; the whole run has a deadline.

usage: test_live_prometheus.py SAEMON_CLI SOURCE_ROOT
Exit 77 (skipped) when the prometheus binary is not installed.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sidecar"))
from serve_harness import Serve, fail, write_safetensors  # noqa: E402

DEADLINE = time.monotonic() + 240
RATE_INTERVAL = "20s"  # Grafana's $__rate_interval: at least 4 scrape intervals (1 s here)

NOT_PROVOKED = {
    "SaemonAbsent": "absent() is empty while the saemon job has targets, as it does here "
                    "(promtool's unit test shows it firing)",
    "SaemonLagGrowing": "needs a consumer slower than its producer for minutes; a stopped daemon "
                        "cannot be scraped and this tiny dictionary encodes in microseconds",
    "SaemonEncodeLatencyHigh": "the test dictionary (16 x 32) encodes a batch in microseconds, far "
                               "below the 10 ms budget",
    "SaemonSinkSpoolErrors": "needs a spool write to fail (a full disk); CI runs as root, which "
                             "ignores permissions",
}


def left():
    return DEADLINE - time.monotonic()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Prometheus:
    def __init__(self, binary, work, targets, rules):
        self.port = free_port()
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            yaml.safe_dump({
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": [rules],
                "scrape_configs": [{"job_name": "saemon", "static_configs": [{"targets": targets}]}],
            }, f)
        self.log = open(os.path.join(work, "prometheus.log"), "w+")
        self.proc = subprocess.Popen([binary, f"--config.file={cfg}",
                                      f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
                                      f"--web.listen-address=127.0.0.1:{self.port}",
                                      "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                                     stdout=self.log, stderr=self.log)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or left() < 0:
                self.log.seek(0)
                fail("Prometheus did not start:\n" + self.log.read())
            time.sleep(0.1)

    def query(self, expr):
        """Instant query; returns the result list, or fails with Prometheus' error."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            fail(f"Prometheus refused the query {expr!r}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]["result"]

    def wait_for(self, expr, what):
        while left() > 0:
            if self.query(expr):
                return
            time.sleep(0.25)
        fail(f"timed out waiting for {what} ({expr})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_sae(d, d_in=16, d_sae=32):
    os.makedirs(d)
    w = np.random.default_rng(7).standard_normal((d_in, d_sae)).astype(np.float32)
    write_safetensors(os.path.join(d, "sae_weights.safetensors"), {
        "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.zeros(d_sae, np.float32),
        "b_dec": np.zeros(d_in, np.float32)})
    with open(os.path.join(d, "cfg.json"), "w") as f:
        json.dump({"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": "core", "model_name": "ops-test"}}, f)


RULES = """version: 1
rules:
  - name: hot
    severity: warning
    condition: {feature: 2, above: 3.0}
  - name: stop
    severity: critical
    action: block
    condition: {feature: 5, above: 4.0}
"""


def relax(expr):
    """Thresholds of comparisons replaced by -Inf (and == 0 by >= 0), so the
    expression holds for any sample: what remains tested is that every
    selector, function, aggregation and join finds its series."""
    expr = re.sub(r"(?<![=!<>])(>=?)\s*[0-9][0-9.e+-]*", r"\1 -Inf", expr)
    return re.sub(r"==\s*[0-9][0-9.e+-]*", ">= 0", expr)


def substitute(expr, values):
    for k, v in values.items():
        expr = expr.replace("$" + k, v)
    if "$" in expr:
        fail(f"an unsubstituted variable is left in {expr!r}")
    return expr


def main():
    cli, root = sys.argv[1], os.path.abspath(sys.argv[2])
    binary = shutil.which("prometheus")
    if not binary:
        print("SKIP: prometheus not found (Debian package prometheus; scripts/install-deps.sh installs it)")
        sys.exit(77)
    # meson's timeout sends SIGTERM: unwind through the finally below, so
    # Prometheus and saemon are always killed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated (timeout)"))
    work = tempfile.mkdtemp(prefix="saemon-prom-")
    owned = {"prom": None, "serve": None, "producers": [], "tag": f"ops{os.getpid()}"}
    try:
        test(cli, root, work, binary, owned)
    finally:
        if owned["serve"] is not None:
            try:
                os.kill(owned["serve"].proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            if owned["serve"].proc.poll() is None:
                owned["serve"].proc.terminate()  # lets it unlink its rings
                try:
                    owned["serve"].proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    owned["serve"].kill()
        if owned["prom"] is not None:
            owned["prom"].stop()
        for p in owned["producers"]:
            p.close()
        for name in os.listdir("/dev/shm"):  # after a kill, no segment is left behind
            if name.startswith(f"saemon-ring.{owned['tag']}-"):
                os.unlink(os.path.join("/dev/shm", name))
        shutil.rmtree(work, ignore_errors=True)


def test(cli, root, work, binary, owned):
    sys.path.insert(0, os.path.join(root, "producers", "python"))
    from saemon_producer.ring import Producer  # noqa: E402

    sae = os.path.join(work, "sae")
    write_sae(sae)
    acts = os.path.join(work, "acts.npy")
    np.save(acts, np.random.default_rng(3).standard_normal((4, 60, 16)).astype(np.float32))
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    tag = owned["tag"]
    ring = {k: f"{tag}-{k}" for k in ("fed", "drops", "quiet", "idle", "refused")}
    with open(os.path.join(work, "sinks.yaml"), "w") as f:
        f.write(f"""sinks:
  - {{type: jsonl, name: archive, path: {os.path.join(work, 'alerts.jsonl')}}}
  - {{type: exec, name: pager, command: [/bin/false]}}
  - type: webhook
    name: hook
    url: http://127.0.0.1:{free_port()}/hook
    spool: {os.path.join(work, 'spool')}
    backoff: 0.2
    backoff_max: 0.5
    drain_timeout: 0.5
""")
    cfg = os.path.join(work, "saemon.yaml")
    with open(cfg, "w") as f:
        f.write(f"""version: 1
metrics: 127.0.0.1:0
heartbeat_timeout: 3
sinks: sinks.yaml
dictionaries:
  - name: ops
    sae: sae
    hook: core
    rules: rules.yaml
    rings:
      - {{name: {ring['fed']}, slots: 64, max_rows: 8}}
      - {{name: {ring['drops']}, slots: 4, max_rows: 1}}
      - {ring['quiet']}
      - {ring['idle']}
      - {ring['refused']}
""")
    srv = owned["serve"] = Serve(cli, ["--config", cfg], os.path.join(work, "serve.log"))
    target = f"127.0.0.1:{srv.port}"
    dead = f"127.0.0.1:{free_port()}"
    prom = owned["prom"] = Prometheus(binary, work, [target, dead],
                                      os.path.join(root, "deploy/prometheus/saemon-alerts.yml"))
    with urllib.request.urlopen(f"http://127.0.0.1:{prom.port}/api/v1/rules", timeout=10) as r:
        loaded = {g["name"]: len(g["rules"]) for g in json.load(r)["data"]["groups"]}
    if set(loaded) != {"saemon.recording", "saemon.alerts"}:
        fail(f"Prometheus did not load deploy/prometheus/saemon-alerts.yml: groups {loaded}")
    # every counter scraped at its starting value before anything happens
    prom.wait_for(f'count_over_time(saemon_tokens_received_total{{ring="{ring["fed"]}"}}[1m]) >= 2',
                  "two scrapes of saemon")

    # -- provoke --
    quiet = Producer(ring["quiet"], hook="core", d_in=16, model="quiet")
    owned["producers"].append(quiet)
    stop_beating = threading.Event()

    def beat():
        while not stop_beating.wait(0.5):
            quiet.heartbeat()
    beater = threading.Thread(target=beat, daemon=True)
    beater.start()

    r = subprocess.run([cli, "produce", "--ring", ring["fed"], "--input", acts, "--lossless", "5000"],
                       capture_output=True, text=True, timeout=max(left(), 1))
    if r.returncode != 0:
        fail(f"saemon produce failed: {r.stderr}")
    r = subprocess.run([cli, "produce", "--ring", ring["refused"], "--input", acts, "--hook", "wrong"],
                       capture_output=True, text=True, timeout=max(left(), 1))
    if r.returncode != 1:
        fail(f"a producer with the wrong hook: exit {r.returncode}, expected 1 (refused): {r.stderr}")

    drops = Producer(ring["drops"], hook="core", d_in=16, model="drops")
    owned["producers"].append(drops)
    row = np.ones(16, np.float32)
    os.kill(srv.proc.pid, signal.SIGSTOP)  # the consumer stops: the 4-slot ring fills
    try:
        for t in range(40):
            drops.publish(1, t, row)
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    if drops.stats["frames_dropped"] < 30:
        fail(f"the stopped consumer should have made the ring drop: {drops.stats}")
    time.sleep(0.5)  # let the consumer drain the ring
    bad = row.copy()
    bad[3] = np.nan
    drops.publish(2, 0, bad)  # non-finite: rejected

    with open(rules, "a") as f:
        f.write("  - name: broken\n    condition: {feature: 2, abve: 1}\n")
    srv.proc.send_signal(signal.SIGHUP)

    r = subprocess.run([cli, "produce", "--ring", ring["fed"], "--input", acts, "--lossless", "5000",
                        "--first-stream", "100"], capture_output=True, text=True, timeout=max(left(), 1))
    if r.returncode != 0:
        fail(f"saemon produce (second run) failed: {r.stderr}")

    # -- wait until Prometheus has scraped all of it and the rules evaluated --
    for expr, what in [
        (f'saemon_tokens_dropped_total{{ring="{ring["drops"]}"}} > 0', "the drops"),
        (f'saemon_frames_rejected_total{{ring="{ring["drops"]}", reason="nonfinite"}} > 0', "the rejected frame"),
        (f'saemon_producer_refused_total{{ring="{ring["refused"]}"}} > 0', "the refused producer"),
        ('saemon_rules_reload_total{result="failure"} > 0', "the failed reload"),
        ('saemon_sink_failed_total{sink="pager"} > 0', "the failing exec sink"),
        ('saemon_sink_spooled{sink="hook"} > 0', "the growing spool"),
        (f'saemon_tokens_encoded_total{{ring="{ring["fed"]}"}} >= 480', "the second feed"),
        (f'saemon_producer_up{{ring="{ring["quiet"]}"}} == 1', "the quiet producer"),
    ]:
        prom.wait_for(expr, what)
    time.sleep(3)  # a few more scrapes and rule evaluations
    prom.wait_for("dictionary_ring:saemon_tokens_dropped:ratio_rate5m > 0", "the recording rules")

    # -- the expressions --
    values = {"instance": target, "dictionary": "ops", "ring": "|".join(ring.values()),
              "__rate_interval": RATE_INTERVAL, "datasource": "prometheus"}
    checked = 0
    with open(os.path.join(root, "deploy/grafana/saemon-dashboard.json")) as f:
        dash = json.load(f)
    for var in dash["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.*), (\w+)\)", var["definition"])
        if not m:
            fail(f"variable {var['name']}: expected label_values(SELECTOR, LABEL), got {var['definition']}")
        res = prom.query(substitute(m.group(1), values))
        if not [s for s in res if m.group(2) in s["metric"]]:
            fail(f"variable {var['name']}: {var['definition']} finds no {m.group(2)} label")
        checked += 1
    print(f"dashboard: {checked} variable queries return their label")
    n_panels = 0
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = substitute(t["expr"], values)
            if not prom.query(expr):
                fail(f"panel {p['title']!r}: {expr} returned no series")
            checked += 1
        n_panels += bool(p.get("targets"))
    print(f"dashboard: {n_panels} panels, every expression returns series")

    with open(os.path.join(root, "deploy/prometheus/saemon-alerts.yml")) as f:
        groups = yaml.safe_load(f)["groups"]
    for g in groups:
        for rule in g["rules"]:
            expr = rule["expr"]
            if "record" in rule:
                for e in (expr, rule["record"]):
                    if not prom.query(e):
                        fail(f"recording rule {rule['record']}: {e} returned no series")
                checked += 2
                continue
            name = rule["alert"]
            got = prom.query(expr)
            checked += 1
            if name in NOT_PROVOKED:
                if got:
                    fail(f"{name} is listed as not provoked but returned {got}")
                relaxed = relax(expr)
                if name == "SaemonAbsent":
                    relaxed = expr.replace("absent(", "(")  # its argument must find the targets
                if relaxed == expr or not prom.query(relaxed):
                    fail(f"{name}: relaxed {relaxed!r} returned no series")
                print(f"alert {name}: parses; empty here as expected ({NOT_PROVOKED[name]}); "
                      f"relaxed form returns series")
                continue
            if not got:
                fail(f"alert {name}: {expr} returned no series although the scenario provokes it")
            print(f"alert {name}: fires on {len(got)} series, e.g. "
                  f"{ {k: v for k, v in got[0]['metric'].items() if k in ('ring', 'sink', 'reason', 'instance', 'result')} }")
    alerts = prom.query('ALERTS{alertname=~"Saemon.*"}')
    print(f"Prometheus holds {len(alerts)} Saemon* alerts pending or firing")
    stop_beating.set()
    beater.join()
    rc, log = srv.stop()
    if "Sanitizer" in log or "runtime error:" in log:
        fail("saemon serve reported a sanitizer error:\n" + log)
    if rc != 3:  # cli_sinks_close: 3 = deliveries failed for good (the exec sink /bin/false)
        fail(f"saemon serve exited {rc}; expected 3, deliveries of the failing exec sink:\n{log}")
    print("saemon serve stopped cleanly, exit status 3 (the failing sink's deliveries)")
    print(f"{checked} expressions checked against Prometheus")
    print("PASS")


if __name__ == "__main__":
    main()
