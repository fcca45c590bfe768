"""Engines' string request ids through `saemon serve` (issue 21 item 10), and
a wrong hook found before the first forward when saemon starts after the
model (item 4):
  1. Producer / NativeProducer (the ctypes path into libsaemon-producer):
     begin_request tags a stream; every alert of its sequence carries
     "request_id" in the JSONL sink (the resolved one too); a second request
     on the same stream carries its own id; a stream without an id has none;
     the verdict is asked by request id (request_verdict, with a wait);
     ids no producer may send raise ValueError;
  2. the forward hook: `with att.request(request_id=...)`, verdict by id, and
     `stream=` giving request ids per batch row; the Tap: new_stream(request_id=),
     publish/verdict/end_stream by id;
  3. attach() before `saemon serve` exists, with a wrong hook (with and
     without d_in): the refusal is warned once and shown by att.status()
     before any forward.
usage: test_request_ids.py SAEMON_CLI SOURCE_DIR [PRODUCER_LIB]
"""
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serve_harness import Serve, fail  # noqa: E402
from test_verdict_contract import D, alerts, make_sae  # noqa: E402

GOOD = np.zeros(D, np.float32)
BAD = np.array([10, 0, 0, 0], np.float32)


def wait_alerts(path, pred, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = [a for a in alerts(path) if pred(a)]
        if got:
            return got
        time.sleep(0.05)
    fail("no alert %s in %s" % (what, alerts(path)))


def producers_through_serve(sp, ring, alert_file, backends):
    for be in backends:
        p = sp.open_producer(ring, backend=be, hook="core", d_in=D, heartbeat=0.2)
        rid = "cmpl-8f3a-%s-\u00e9" % be
        s = 40 if be == "python" else 50
        p.begin_request(s, rid)
        p.publish(s, 0, GOOD)
        p.publish(s, 1, BAD)
        if p.request_verdict(rid, wait_us=2_000_000) != sp.VERDICT_BLOCK or p.stream_of(rid) != s:
            fail("%s: verdict by request id %r" % (be, p.request_verdict(rid)))
        p.end_stream(s, 2)
        if p.stream_of(rid) is not None or p.request_verdict(rid) is not None:
            fail("%s: an ended request is still known" % be)
        rid2 = "rid-2-%s" % be  # SGLang style, the same stream reused
        p.begin_request(s, rid2)
        p.publish(s, 0, BAD)
        if p.request_verdict(rid2, wait_us=2_000_000) != sp.VERDICT_BLOCK:
            fail("%s: second request's verdict" % be)
        p.end_stream(s, 1)
        p.publish(s + 1, 0, BAD)  # no request id
        p.verdict(s + 1, wait_us=2_000_000)
        p.end_stream(s + 1, 1)
        for bad in ("", "x" * 129, "a\nb", "esc\x1b", "nel\x85", "\ud800"):
            try:
                p.begin_request(1, bad)
            except ValueError:
                continue
            fail("%s: request id %r accepted" % (be, bad))
        p.close()
        firing = wait_alerts(alert_file, lambda a: a.get("request_id") == rid and a["status"] == "firing",
                             "firing for " + rid)
        wait_alerts(alert_file, lambda a: a.get("request_id") == rid and a["status"] == "resolved",
                    "resolved for " + rid)
        wait_alerts(alert_file, lambda a: a.get("request_id") == rid2 and a["status"] == "firing", "for " + rid2)
        plain = wait_alerts(alert_file, lambda a: a["stream"] == s + 1 and a["status"] == "firing", "untagged")
        if any("request_id" in a for a in plain) or firing[0]["stream"] != s:
            fail("%s: request ids on the wrong alerts: %s" % (be, alerts(alert_file)))
        print("ok %s producer: request ids in alerts (%s, %s), verdict by request id" % (be, rid, rid2))


def hook_and_tap(sp, torch, ring, alert_file, backends):
    model = torch.nn.Sequential(torch.nn.Identity())
    x_bad = torch.from_numpy(BAD).reshape(1, 1, D)
    for be in backends:
        att = sp.attach(model, {"0": ring}, hook_names={"0": "core"}, backend=be, positions="incremental")
        rid = "cmpl-hook-%s" % be
        with att.request(request_id=rid):
            model(x_bad)
            if att.verdict(request_id=rid, wait_us=2_000_000) != sp.VERDICT_BLOCK:
                fail("%s hook: verdict by request id" % be)
        # batch rows named by request ids
        att.stream = lambda: ["batch-a-" + be, "batch-b-" + be]
        model(torch.cat([x_bad, x_bad]))
        for r in ("batch-a-" + be, "batch-b-" + be):
            if att.verdict(request_id=r, wait_us=2_000_000) != sp.VERDICT_BLOCK:
                fail("%s hook: batch row %s" % (be, r))
            att.end_stream(request_id=r)
        try:
            att.new_stream(request_id="bad\nid")
            fail("%s hook: a request id with a newline accepted" % be)
        except ValueError:
            pass
        st = att.status()[ring]
        if st["errors"]:
            fail("%s hook: errors %s" % (be, st))
        att.detach()
        for r in (rid, "batch-a-" + be, "batch-b-" + be):
            wait_alerts(alert_file, lambda a, r=r: a.get("request_id") == r, "for " + r)
        tap = sp.Tap(ring, hook="core", d_in=D, max_tokens=8, backend=be)
        trid = "cmpl-tap-%s" % be
        tap.new_stream(request_id=trid)
        tap(x_bad)
        if tap.publish(trid) != 1 or tap.verdict(trid, wait_us=2_000_000) != sp.VERDICT_BLOCK:
            fail("%s tap: verdict by request id (status %s)" % (be, tap.status()))
        tap.end_stream(trid)
        tap.close()
        wait_alerts(alert_file, lambda a: a.get("request_id") == trid and a["status"] == "resolved", "for " + trid)
        print("ok %s hook and tap: request ids in alerts, verdict by request id" % be)


def early_refusal(sp, torch, cli, sae, rules, work, backends):
    model = torch.nn.Sequential(torch.nn.Identity())
    for be in backends:
        for d_in in (D, None):
            ring = "rl%d%s%s" % (os.getpid(), be[0], "d" if d_in else "n")
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                att = sp.attach(model, {"0": ring}, hook_names={"0": "wrong.hook"}, backend=be, d_in=d_in)
                srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--hook", "core", "--metrics",
                                  "127.0.0.1:0"],
                            os.path.join(work, "serve-%s.log" % ring))
                deadline = time.time() + 20
                while time.time() < deadline:
                    st = att.status()[ring]
                    if st["errors"] or st["refused"]:
                        break
                    time.sleep(0.02)
                st = att.status()[ring]
                told = [str(x.message) for x in w if "wrong.hook" in str(x.message)]
            if not (st["errors"] or st["refused"]) or "wrong.hook" not in (st["last_error"] + st["refuse_reason"]):
                fail("%s d_in=%s: the wrong hook is not reported before a forward: %s" % (be, d_in, st))
            if len(told) != 1:
                fail("%s d_in=%s: warned %d times: %s" % (be, d_in, len(told), told))
            model(torch.zeros(1, 1, D))  # the forward never raises
            att.detach()
            srv.stop()
            print("ok %s d_in=%s: a wrong hook reported once before the first forward (%s)"
                  % (be, d_in, st["last_error"] or st["refuse_reason"]))


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cli, source = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        os.environ["SAEMON_PRODUCER_LIB"] = sys.argv[3]
    sys.path.insert(0, os.path.join(source, "producers", "python"))
    import saemon_producer as sp
    backends = ["python"] + (["native"] if sp.native_available() else [])
    if len(backends) == 1:
        print("native path skipped: %s" % sp.native_error())
    work = tempfile.mkdtemp(prefix="saemon-rids-")
    ring = "rid%d" % os.getpid()
    try:
        sae, rules = make_sae(work)
        alert_file = os.path.join(work, "alerts.jsonl")
        srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", ring, "--slots", "16", "--metrics",
                          "127.0.0.1:0", "--alerts", alert_file, "--resolved"], os.path.join(work, "serve.log"))
        producers_through_serve(sp, ring, alert_file, backends)
        if srv.value("saemon_request_ids_total") < 2 * len(backends):
            fail("saemon_request_ids_total %s" % srv.value("saemon_request_ids_total"))
        try:
            import torch
        except ImportError:
            print("hook, tap and early refusal skipped: torch is not installed for %s" % sys.executable)
            torch = None
        if torch is not None:
            hook_and_tap(sp, torch, ring, alert_file, backends)
        rc, log = srv.stop()
        if rc != 0:
            fail("serve exit %d:\n%s" % (rc, log))
        if torch is not None:
            early_refusal(sp, torch, cli, sae, rules, work, backends)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
