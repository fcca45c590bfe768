"""The otlp sink (OTLP/HTTP JSON logs) against a loopback receiver that checks
every request against opentelemetry-proto's ExportLogsServiceRequest in the
proto3 JSON mapping (field names, types, nesting; unknown fields refused),
then the alert mapping: one LogRecord per alert, severity, body = summary,
attributes, resource service.name / service.instance.id; and that the
webhook's delivery carries over: Idempotency-Key, bearer auth and extra
headers, 5xx retried, 4xx counted failed and not retried, the spool kept for
the next run. Bad input: a non-http(s) url is refused at file:line:column.

usage: test_otlp.py SAEMON_CLI
"""
import datetime
import http.server
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading

import numpy as np


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# --- the OTLP JSON schema, from opentelemetry-proto (collector/logs/v1,
# logs/v1, common/v1, resource/v1). proto3 JSON: lowerCamelCase names,
# (u)int64/fixed64 as decimal strings (numbers accepted too), enums as
# integers, bytes as base64 (trace/span ids: hex in OTLP).

def is_u64(v):
    if isinstance(v, str):
        return re.fullmatch(r"0|[1-9][0-9]{0,19}", v) is not None and int(v) < 2 ** 64
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 64


def is_i64(v):
    if isinstance(v, str):
        return re.fullmatch(r"-?(0|[1-9][0-9]{0,18})", v) is not None and -2 ** 63 <= int(v) < 2 ** 63
    return isinstance(v, int) and not isinstance(v, bool) and -2 ** 63 <= v < 2 ** 63


def is_u32(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 32


def check_fields(obj, where, allowed):
    if not isinstance(obj, dict):
        fail(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for k in obj:
        if k not in allowed:
            fail(f"{where}: field '{k}' is not in opentelemetry-proto (allowed: {sorted(allowed)})")


def check_list(v, where):
    if not isinstance(v, list):
        fail(f"{where}: expected a JSON array (repeated field), got {type(v).__name__}")
    return v


def check_any(v, where):
    """AnyValue: exactly one of the oneof `value` (empty is allowed by the
    proto, but we never send one)."""
    check_fields(v, where, {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue",
                            "bytesValue"})
    if len(v) != 1:
        fail(f"{where}: an AnyValue holds exactly one of its oneof fields, got {sorted(v)}")
    (k, x), = v.items()
    ok = {"stringValue": lambda x: isinstance(x, str),
          "boolValue": lambda x: isinstance(x, bool),
          "intValue": is_i64,
          "doubleValue": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          "bytesValue": lambda x: isinstance(x, str) and re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", x)}.get(k)
    if ok and not ok(x):
        fail(f"{where}.{k}: wrong JSON type {x!r}")
    if k == "arrayValue":
        check_fields(x, where + ".arrayValue", {"values"})
        for i, e in enumerate(check_list(x.get("values", []), where + ".arrayValue.values")):
            check_any(e, f"{where}.arrayValue.values[{i}]")
    if k == "kvlistValue":
        check_fields(x, where + ".kvlistValue", {"values"})
        check_keyvalues(x.get("values", []), where + ".kvlistValue.values")
    return k, x


def check_keyvalues(v, where):
    seen = set()
    for i, kv in enumerate(check_list(v, where)):
        check_fields(kv, f"{where}[{i}]", {"key", "value"})
        if not isinstance(kv.get("key"), str) or not kv["key"]:
            fail(f"{where}[{i}]: KeyValue.key must be a non-empty string")
        if kv["key"] in seen:
            fail(f"{where}[{i}]: duplicate key '{kv['key']}' (keys MUST be unique)")
        seen.add(kv["key"])
        if "value" not in kv:
            fail(f"{where}[{i}]: KeyValue without value")
        check_any(kv["value"], f"{where}[{i}].value")


def check_request(req):
    """ExportLogsServiceRequest; returns [(resource attrs, scope, record)]."""
    out = []
    check_fields(req, "request", {"resourceLogs"})
    for i, rl in enumerate(check_list(req.get("resourceLogs"), "resourceLogs")):
        w = f"resourceLogs[{i}]"
        check_fields(rl, w, {"resource", "scopeLogs", "schemaUrl"})
        res = rl.get("resource", {})
        check_fields(res, w + ".resource", {"attributes", "droppedAttributesCount", "entityRefs"})
        check_keyvalues(res.get("attributes", []), w + ".resource.attributes")
        if "droppedAttributesCount" in res and not is_u32(res["droppedAttributesCount"]):
            fail(w + ".resource.droppedAttributesCount: not a uint32")
        for j, sl in enumerate(check_list(rl.get("scopeLogs", []), w + ".scopeLogs")):
            ws = f"{w}.scopeLogs[{j}]"
            check_fields(sl, ws, {"scope", "logRecords", "schemaUrl"})
            scope = sl.get("scope", {})
            check_fields(scope, ws + ".scope", {"name", "version", "attributes", "droppedAttributesCount"})
            for f in ("name", "version"):
                if f in scope and not isinstance(scope[f], str):
                    fail(f"{ws}.scope.{f}: not a string")
            check_keyvalues(scope.get("attributes", []), ws + ".scope.attributes")
            for k, r in enumerate(check_list(sl.get("logRecords", []), ws + ".logRecords")):
                wr = f"{ws}.logRecords[{k}]"
                check_fields(r, wr, {"timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText",
                                     "body", "attributes", "droppedAttributesCount", "flags", "traceId", "spanId",
                                     "eventName"})
                for f in ("timeUnixNano", "observedTimeUnixNano"):
                    if f in r and not (isinstance(r[f], str) and is_u64(r[f])):
                        fail(f"{wr}.{f}: a fixed64 is a decimal string in OTLP/JSON, got {r[f]!r}")
                if "severityNumber" in r and not (isinstance(r["severityNumber"], int)
                                                  and 1 <= r["severityNumber"] <= 24):
                    fail(f"{wr}.severityNumber: an enum is an integer 1..24 (0 must not be used), "
                         f"got {r['severityNumber']!r}")
                if "severityText" in r and not isinstance(r["severityText"], str):
                    fail(f"{wr}.severityText: not a string")
                if "body" in r:
                    check_any(r["body"], wr + ".body")
                check_keyvalues(r.get("attributes", []), wr + ".attributes")
                for f in ("traceId", "spanId"):
                    if f in r and not re.fullmatch(r"[0-9a-f]*", r[f]):
                        fail(f"{wr}.{f}: ids are hex in OTLP/JSON")
                out.append((res.get("attributes", []), scope, r))
    return out


def attrs_dict(kvs):
    """KeyValue list -> plain dict (values unwrapped)."""
    def plain(any_value):
        (k, x), = any_value.items()
        if k == "arrayValue":
            return [plain(e) for e in x.get("values", [])]
        if k == "kvlistValue":
            return attrs_dict(x.get("values", []))
        if k == "intValue":
            return int(x)
        return x
    return {kv["key"]: plain(kv["value"]) for kv in kvs}


# --- the receiver ---

class Receiver:
    def __init__(self, status=200, fail_first=0, fail_status=503, token=None):
        self.requests, self.lock = [], threading.Lock()
        self.status, self.fail_first, self.fail_status, self.token = status, fail_first, fail_status, token
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rx.lock:
                    n = len(rx.requests)
                    rx.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = rx.fail_status if n < rx.fail_first else rx.status
                if rx.token and self.headers.get("Authorization") != "Bearer " + rx.token:
                    code = 401
                reply = b'{"partialSuccess":{}}' if code == 200 else b'{"code":3,"message":"refused"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/v1/logs"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- a dictionary, activations and rules that fire ---

def write_sae(d, d_in=16, d_sae=32):
    os.makedirs(d)
    w = np.random.default_rng(7).standard_normal((d_in, d_sae)).astype(np.float32)
    tensors = {"W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.zeros(d_sae, np.float32),
               "b_dec": np.zeros(d_in, np.float32)}
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(d, "sae_weights.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(os.path.join(d, "cfg.json"), "w") as f:
        json.dump({"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": "standard",
                   "apply_b_dec_to_input": True, "normalize_activations": "none",
                   "metadata": {"hook_name": "core", "model_name": "otlp-test"}}, f)


SECRET_MARKER = "PROMPT-TEXT-MUST-NOT-LEAVE"
RULES = f"""version: 1
rules:
  - name: hot
    severity: warning
    condition: {{feature: 2, above: 3.0}}
    annotations: {{summary: "feature 2 is hot", note: "{SECRET_MARKER}"}}
  - name: hotter
    severity: critical
    condition: {{feature: 5, above: 4.0}}
    labels: {{team: safety}}
    description: "feature 5 above 4"
  - name: loud
    severity: emergency
    condition: {{feature: 7, above: 5.0}}
  - name: calm
    severity: informational
    condition: {{feature: 9, above: 5.0}}
  - name: odd
    severity: debug
    condition: {{feature: 11, above: 5.0}}
"""
# The log data model's mapping of syslog severities.
SEVERITY = {"warning": 13, "critical": 18, "emergency": 22, "informational": 9, "debug": 5}


def run_saemon(cli, work, sinks_text, run_id="otlp-test", check=True):
    sinks = os.path.join(work, "sinks.yaml")
    with open(sinks, "w") as f:
        f.write(sinks_text)
    r = subprocess.run([cli, "run", "--sae", os.path.join(work, "sae"), "--rules", os.path.join(work, "rules.yaml"),
                        "--input", os.path.join(work, "acts.npy"), "--sinks", sinks, "--resolved",
                        "--run-id", run_id], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        fail(f"saemon run exited {r.returncode}:\n{r.stderr}")
    return r


def stats(stderr, name):
    m = re.search(r"sink " + re.escape(name) + r": (\d+) delivered, (\d+) retried, (\d+) spooled, (\d+) dropped, "
                  r"(\d+) failed", stderr)
    if not m:
        fail(f"no summary line for sink {name} in:\n{stderr}")
    return dict(zip(["delivered", "retried", "spooled", "dropped", "failed"], map(int, m.groups())))


def jsonl_alerts(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def main():
    cli = sys.argv[1]
    work = tempfile.mkdtemp(prefix="saemon-otlp-")
    receivers = []
    try:
        test(cli, work, receivers)
    finally:
        for rx in receivers:
            rx.stop()
        shutil.rmtree(work, ignore_errors=True)


def test(cli, work, receivers):
    write_sae(os.path.join(work, "sae"))
    np.save(os.path.join(work, "acts.npy"),
            np.random.default_rng(3).standard_normal((3, 40, 16)).astype(np.float32))
    with open(os.path.join(work, "rules.yaml"), "w") as f:
        f.write(RULES)
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write("otlp-token-123\n")
    os.chmod(token_file, 0o600)

    # 1. delivery and mapping: every request valid OTLP, one record per alert
    rx = Receiver(token="otlp-token-123")
    receivers.append(rx)
    alerts_path = os.path.join(work, "alerts.jsonl")
    r = run_saemon(cli, work, f"""sinks:
  - type: jsonl
    path: {alerts_path}
  - type: otlp
    name: collector
    url: {rx.url()}
    service_name: saemon-test
    service_instance: pod-7
    headers: {{X-Scope-OrgID: tenant-1}}
    authorization: {{credentials_file: {token_file}}}
""")
    alerts = jsonl_alerts(alerts_path)
    if len(alerts) < 4 or {a["rule"] for a in alerts} != {"hot", "hotter", "loud", "calm", "odd"} or \
            "resolved" not in {a["status"] for a in alerts}:
        fail(f"the scenario must raise both rules, firing and resolved; got {len(alerts)} alerts")
    st = stats(r.stderr, "collector")
    if st["delivered"] != len(alerts) or st["failed"] or len(rx.requests) != len(alerts):
        fail(f"{len(alerts)} alerts, {len(rx.requests)} requests, stats {st}")
    keys = set()
    for i, (req, want) in enumerate(zip(rx.requests, alerts)):
        if req["path"] != "/v1/logs":
            fail(f"request {i} went to {req['path']}; the url is used as given")
        h = req["headers"]
        if h.get("Content-Type") != "application/json":
            fail(f"request {i}: Content-Type {h.get('Content-Type')!r}; OTLP/HTTP JSON needs application/json")
        if h.get("X-Scope-OrgID") != "tenant-1":
            fail(f"request {i}: the configured header is missing")
        key = h.get("Idempotency-Key", "")
        if not re.fullmatch(r"[0-9a-f]{64}", key) or key in keys:
            fail(f"request {i}: Idempotency-Key {key!r} missing, malformed or repeated")
        keys.add(key)
        if SECRET_MARKER.encode() in req["body"]:
            fail(f"request {i}: an annotation other than the summary left saemon")
        records = check_request(json.loads(req["body"]))
        if len(records) != 1:
            fail(f"request {i}: {len(records)} log records; expected one per alert")
        res, scope, rec = records[0]
        res = attrs_dict(res)
        if res != {"service.name": "saemon-test", "service.instance.id": "pod-7"}:
            fail(f"request {i}: resource attributes {res}")
        if scope.get("name") != "saemon":
            fail(f"request {i}: scope {scope}")
        if rec.get("severityText") != want["severity"] or rec.get("severityNumber") != SEVERITY[want["severity"]]:
            fail(f"request {i}: severity {rec.get('severityText')}/{rec.get('severityNumber')} for a "
                 f"{want['severity']} rule")
        summary = {"hot": "feature 2 is hot", "hotter": "feature 5 above 4"}.get(want["rule"], want["rule"])
        if rec.get("body") != {"stringValue": summary}:
            fail(f"request {i}: body {rec.get('body')}; expected the summary {summary!r}")
        when = datetime.datetime.fromisoformat(want["timestamp"].replace("Z", "+00:00")).timestamp()
        if abs(int(rec["timeUnixNano"]) - when * 1e9) > 2e6:
            fail(f"request {i}: timeUnixNano {rec['timeUnixNano']} is not the alert's time {want['timestamp']}")
        a = attrs_dict(rec.get("attributes", []))
        allowed = {"rule", "status", "stream", "token", "fired_token", "dictionary", "group", "value", "features",
                   "labels"}
        if not set(a) <= allowed:
            fail(f"request {i}: unexpected attributes {set(a) - allowed}")
        expect = {"rule": want["rule"], "status": want["status"], "stream": str(want["stream"]),
                  "token": want["token"], "dictionary": want.get("dictionary")}
        for k, v in expect.items():
            if v is not None and a.get(k) != v:
                fail(f"request {i}: attribute {k} = {a.get(k)!r}, expected {v!r}")
        if want["status"] == "resolved" and a.get("fired_token") != want.get("fired_token"):
            fail(f"request {i}: fired_token {a.get('fired_token')} vs {want.get('fired_token')}")
        want_labels = want.get("labels", {})
        if a.get("labels") != want_labels:
            fail(f"request {i}: labels {a.get('labels')} vs {want_labels}")
        got_feats = [(f["index"], round(f["value"], 4)) for f in a.get("features", [])]
        want_feats = [(f["index"], round(f["value"], 4)) for f in want.get("features", [])]
        if got_feats != want_feats:
            fail(f"request {i}: features {got_feats} vs {want_feats}")
    print(f"mapping: {len(alerts)} alerts -> {len(alerts)} valid OTLP requests, one LogRecord each "
          f"(severity, summary body, attributes, resource)")

    # 2. 5xx and transport errors are retried, in order, with the same key
    rx2 = Receiver(fail_first=2, fail_status=503)
    receivers.append(rx2)
    r = run_saemon(cli, work, f"""sinks:
  - type: otlp
    name: flaky
    url: {rx2.url()}
    backoff: 0.01
""")
    st = stats(r.stderr, "flaky")
    if st["delivered"] != len(alerts) or st["retried"] != 2 or len(rx2.requests) != len(alerts) + 2:
        fail(f"503 twice: stats {st}, {len(rx2.requests)} requests for {len(alerts)} alerts")
    k = [q["headers"]["Idempotency-Key"] for q in rx2.requests[:3]]
    if len(set(k)) != 1:
        fail("a retried request must repeat its Idempotency-Key")
    print(f"5xx: retried twice with the same Idempotency-Key, then all {len(alerts)} delivered")

    # 3. 4xx: counted failed, never retried
    rx3 = Receiver(status=400)
    receivers.append(rx3)
    r = run_saemon(cli, work, f"""sinks:
  - type: otlp
    name: refusing
    url: {rx3.url()}
    backoff: 0.01
""", check=False)
    st = stats(r.stderr, "refusing")
    if st["failed"] != len(alerts) or st["retried"] or st["delivered"] or len(rx3.requests) != len(alerts):
        fail(f"400: stats {st}, {len(rx3.requests)} requests for {len(alerts)} alerts")
    print(f"4xx: {len(alerts)} alerts counted failed, {len(rx3.requests)} requests (no retry)")

    # 4. spool: an unreachable collector leaves the alerts on disk; the next
    # run delivers them first
    spool = os.path.join(work, "spool")
    dead = Receiver()
    dead_url = dead.url()
    dead.stop()
    r = run_saemon(cli, work, f"""sinks:
  - type: otlp
    name: spooled
    url: {dead_url}
    spool: {spool}
    backoff: 0.01
    backoff_max: 0.05
    drain_timeout: 0.5
""", check=False)
    files = sorted(f for f in os.listdir(spool) if f.endswith(".json"))
    if len(files) != len(alerts):
        fail(f"{len(files)} spool files for {len(alerts)} alerts:\n{r.stderr}")
    for name in files:
        with open(os.path.join(spool, name)) as f:
            check_request(json.load(f))
    rx4 = Receiver()
    receivers.append(rx4)
    r = run_saemon(cli, work, f"""sinks:
  - type: otlp
    name: spooled
    url: {rx4.url()}
    spool: {spool}
""", run_id="second-run")
    if len(rx4.requests) != 2 * len(alerts) or os.listdir(spool) != [".lock"] and \
            [f for f in os.listdir(spool) if f.endswith(".json")]:
        fail(f"spool replay: {len(rx4.requests)} requests, spool left {os.listdir(spool)}")
    for name, req in zip(files, rx4.requests):
        if req["headers"]["Idempotency-Key"] != name.split("-", 1)[1][:-5]:
            fail("the spooled alerts must go first, with their spooled Idempotency-Key")
    print(f"spool: {len(files)} OTLP bodies kept while the collector was down, delivered first by the next run")

    # 5. bad input: a url that is not http(s) is refused at file:line:column
    bad = os.path.join(work, "bad.yaml")
    with open(bad, "w") as f:
        f.write("sinks:\n  - type: otlp\n    url: grpc://collector:4317\n")
    r = subprocess.run([cli, "check", "--sinks", bad], capture_output=True, text=True)
    if r.returncode == 0 or not re.search(r"bad\.yaml:3:10: .*not an http:// or https:// URL", r.stderr):
        fail(f"a grpc:// url: exit {r.returncode}, {r.stderr!r}; expected bad.yaml:3:10")
    with open(bad, "w") as f:
        f.write("sinks:\n  - type: otlp\n    url: http://collector:4318/v1/logs\n    service: x\n")
    r = subprocess.run([cli, "check", "--sinks", bad], capture_output=True, text=True)
    if r.returncode == 0 or not re.search(r"bad\.yaml:4:5: .*service", r.stderr):
        fail(f"an unknown key: exit {r.returncode}, {r.stderr!r}; expected bad.yaml:4:5")
    with open(bad, "w") as f:
        f.write("sinks:\n  - type: otlp\n    url: http://collector:4318\n")
    r = subprocess.run([cli, "check", "--sinks", bad], capture_output=True, text=True)
    if r.returncode != 0 or not re.search(r"bad\.yaml:3:10: .*does not end with /v1/logs", r.stdout + r.stderr):
        fail(f"a base url: exit {r.returncode}, {r.stdout + r.stderr!r}; expected a warning at bad.yaml:3:10")
    print("bad input: grpc:// refused at 3:10, unknown key at 4:5, a base URL warned about")
    print("PASS")


if __name__ == "__main__":
    main()
