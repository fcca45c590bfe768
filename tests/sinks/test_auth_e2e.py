"""Credentials on every network edge, end to end, loopback only.

Certificates are made here with the openssl CLI (a CA, a server certificate,
a receiver certificate that names only receiver.test, a client certificate,
an expired one). Then:
  1. receivers (Python ssl + http.server): one requiring a client certificate,
     one requiring basic auth, one requiring a bearer token; and the real
     prometheus-alertmanager started with --web.config.file (TLS + bcrypt
     basic auth). `saemon check --sinks` passes, `saemon demo --sinks` delivers
     every alert to each, authenticated;
  2. wrong credentials (password, token, no client certificate) are refused,
     reported and counted failed, 401s never retried; insecure_skip_verify
     works and is warned about;
  3. `saemon check --sinks` reports an expired certificate, a key that does
     not match its certificate, an unreadable secret file (file:line:column)
     and warns about a secret file others can read;
  4. `saemon serve --web-config` (TLS with client certificates + basic auth):
     curl with both gets /metrics, without either is refused;
  5. no secret value (nor its base64 form) appears in any output, log, spool
     file, alert file or request body of the whole run.
Usage: test_auth_e2e.py SAEMON_CLI"""
import base64
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # libxcrypt's crypt(3); deprecated in Python 3.11, present in Debian 12

CLI = sys.argv[1]
OUTPUTS = []  # every stdout/stderr text of the run, for the final grep


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(args, env=None, check_rc=None, **kw):
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=240, **kw)
    OUTPUTS.append(p.stdout + p.stderr)  # not argv: curl -u carries a password there
    if check_rc is not None and p.returncode != check_rc:
        fail(f"{' '.join(args)}: exit {p.returncode}, want {check_rc}\n{p.stdout}\n{p.stderr}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# --- certificates (openssl CLI) -------------------------------------------

def make_certs(d):
    def ossl(*args):
        run(["openssl"] + list(args), check_rc=0, cwd=d)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "90", "-subj", "/CN=saemon test CA")

    def leaf(name, cn, ext):
        write(os.path.join(d, name + ".ext"), ext + "\n", 0o644)
        ossl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", name + ".crt", "-days", "90", "-extfile", name + ".ext")

    leaf("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    leaf("server2", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    leaf("receiver", "receiver.test", "subjectAltName=DNS:receiver.test\nextendedKeyUsage=serverAuth")
    leaf("client", "saemon", "extendedKeyUsage=clientAuth")
    # A client certificate from a CA nobody trusts.
    ossl("req", "-x509", *ec, "-keyout", "rogue-ca.key", "-out", "rogue-ca.crt", "-days", "90", "-subj", "/CN=rogue")
    write(os.path.join(d, "rogue.ext"), "extendedKeyUsage=clientAuth\n", 0o644)
    ossl("req", *ec, "-keyout", "rogue.key", "-out", "rogue.csr", "-subj", "/CN=saemon")
    ossl("x509", "-req", "-in", "rogue.csr", "-CA", "rogue-ca.crt", "-CAkey", "rogue-ca.key", "-CAcreateserial",
         "-out", "rogue.crt", "-days", "90", "-extfile", "rogue.ext")
    # An expired certificate: `openssl ca` takes explicit dates.
    write(os.path.join(d, "ca.cnf"), "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
          "serial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n", 0o644)
    write(os.path.join(d, "index.txt"), "", 0o644)
    write(os.path.join(d, "serial"), "1000\n", 0o644)
    ossl("req", *ec, "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired")
    ossl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "expired.csr",
         "-out", "expired.crt", "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")
    ver = run(["openssl", "version"], check_rc=0).stdout.strip()
    return ver


# --- receivers ------------------------------------------------------------

class Receiver:
    """HTTPS receiver on 127.0.0.1: answers 200 when `authorized(headers)`,
    401 otherwise; records every request."""

    def __init__(self, certs, cert, authorized, client_ca=None):
        self.requests = []  # (status, authorization header, X-Team header, body)
        self.handshake_failures = 0
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                ok = authorized(self.headers)
                recv.requests.append((200 if ok else 401, self.headers.get("Authorization"),
                                      self.headers.get("X-Team"), body))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                recv.handshake_failures += 1

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, cert + ".crt"), os.path.join(certs, cert + ".key"))
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(os.path.join(certs, client_ca))
        self.server = Server(("127.0.0.1", 0), Handler)
        # Handshake in the handler thread, so a refused client does not stop the accept loop.
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        orig = self.server.finish_request

        def finish(request, client_address):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                recv.handshake_failures += 1
                return
            orig(request, client_address)

        self.server.finish_request = finish
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        self.requests = []
        self.handshake_failures = 0

    def stop(self):
        self.server.shutdown()


# --- alertmanager -----------------------------------------------------------

def start_alertmanager(work, certs, am_hash):
    binary = os.environ.get("SAEMON_ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
    if not os.access(binary, os.X_OK):
        return None, None, None
    d = os.path.join(work, "am")
    os.makedirs(d)
    write(os.path.join(d, "alertmanager.yml"), "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    write(os.path.join(d, "web.yml"),
          f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/server.key\n"
          f"basic_auth_users:\n  saemon: {am_hash}\n")
    port = free_port()
    log = open(os.path.join(d, "alertmanager.log"), "w")
    proc = subprocess.Popen([binary, f"--config.file={d}/alertmanager.yml", f"--storage.path={d}/data",
                             f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={d}/web.yml",
                             "--cluster.listen-address=", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        code, _ = am_get(port, certs, "/-/ready", None)
        if code == 401:  # up, and refusing a request without credentials
            return proc, port, binary
        if proc.poll() is not None:
            fail("alertmanager exited:\n" + open(os.path.join(d, "alertmanager.log")).read())
        time.sleep(0.1)
    fail("alertmanager did not start:\n" + open(os.path.join(d, "alertmanager.log")).read())


def am_get(port, certs, path, auth):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.crt"))
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


# --- helpers for the runs ---------------------------------------------------

def stats_line(stderr, name):
    m = re.search(re.escape(f"sink {name}: ") + r"(\d+) delivered, (\d+) retried, (\d+) spooled, (\d+) dropped, "
                  r"(\d+) failed", stderr)
    if not m:
        fail(f"no counters for sink {name} in:\n{stderr}")
    return [int(x) for x in m.groups()]


def count_lines(path):
    with open(path) as f:
        return sum(1 for _ in f)


def write_sae(d):
    """A tiny SAELens dictionary for `saemon serve` (no producer needed)."""
    import numpy as np
    os.makedirs(d)
    d_in, d_sae = 16, 32
    w = np.random.default_rng(0).standard_normal((d_in, d_sae)).astype(np.float32)
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
                   "metadata": {"hook_name": "core", "model_name": "auth-test"}}, f)


def main():
    work = tempfile.mkdtemp(prefix="saemon-auth-")
    procs = []
    try:
        test(work, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(work, ignore_errors=True)


def test(work, procs):
    certs = os.path.join(work, "certs")
    os.makedirs(certs)
    openssl_version = make_certs(certs)

    # Every secret of the run: random, so a hit in the final grep is a leak.
    sec = {name: f"{name}-{secrets.token_hex(12)}" for name in
           ["hook-password", "hook-token", "am-password", "metrics-password", "metrics-password2", "wrong-password",
            "wrong-token"]}
    write(os.path.join(work, "hook-password"), sec["hook-password"] + "\n")
    write(os.path.join(work, "hook-token"), sec["hook-token"] + "\n")
    write(os.path.join(work, "wrong-password"), sec["wrong-password"] + "\n")
    env = dict(os.environ, SAEMON_AM_PASSWORD=sec["am-password"], SAEMON_WRONG_TOKEN=sec["wrong-token"])
    basic = "Basic " + base64.b64encode(f"saemon:{sec['hook-password']}".encode()).decode()

    mtls = Receiver(certs, "receiver", lambda h: True, client_ca="ca.crt")
    basic_rx = Receiver(certs, "server", lambda h: h.get("Authorization") == basic)
    bearer_rx = Receiver(certs, "server", lambda h: h.get("Authorization") == "Bearer " + sec["hook-token"])
    receivers = [mtls, basic_rx, bearer_rx]

    # bcrypt hashes (libxcrypt via Python's crypt); Alertmanager (Go's bcrypt) checks one of them.
    am_hash = crypt.crypt(sec["am-password"], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    metrics_hash = crypt.crypt(sec["metrics-password"], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    metrics_hash2 = crypt.crypt(sec["metrics-password2"], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    am, am_port, am_bin = start_alertmanager(work, certs, am_hash)
    if am:
        procs.append(am)
        v = run([am_bin, "--version"])
        am_version = (v.stdout + v.stderr).splitlines()[0:1] or ["?"]
    else:
        print("SKIP part: prometheus-alertmanager not installed ($SAEMON_ALERTMANAGER)", file=sys.stderr)

    # 1. Everything right: check passes, every alert reaches every receiver.
    am_sink = (f"  - type: alertmanager\n    url: https://127.0.0.1:{am_port}\n"
               f"    basic_auth: {{username: saemon, password_env: SAEMON_AM_PASSWORD}}\n"
               f"    tls_config: {{ca_file: certs/ca.crt}}\n") if am else ""
    good = write(os.path.join(work, "sinks.yaml"),
                 "sinks:\n"
                 "  - type: jsonl\n"
                 f"    path: {work}/alerts.jsonl\n"
                 "  - type: webhook\n"
                 "    name: mtls\n"
                 f"    url: https://127.0.0.1:{mtls.port}/hook\n"
                 "    tls_config:\n"
                 "      ca_file: certs/ca.crt          # relative to this file, as in Prometheus\n"
                 "      cert_file: certs/client.crt\n"
                 "      key_file: certs/client.key\n"
                 "      server_name: receiver.test\n"
                 "      min_version: TLS12\n"
                 "  - type: webhook\n"
                 "    name: basic\n"
                 f"    url: https://127.0.0.1:{basic_rx.port}/hook\n"
                 f"    spool: {work}/spool-basic\n"
                 "    basic_auth: {username: saemon, password_file: hook-password}\n"
                 "    tls_config: {ca_file: certs/ca.crt}\n"
                 "  - type: webhook\n"
                 "    name: bearer\n"
                 f"    url: https://127.0.0.1:{bearer_rx.port}/hook\n"
                 "    headers: {X-Team: safety}\n"
                 "    authorization: {type: Bearer, credentials_file: hook-token}\n"
                 "    tls_config: {ca_file: certs/ca.crt}\n" + am_sink)
    n_sinks = 5 if am else 4
    p = run([CLI, "check", "--sinks", good], env=env, check_rc=0)
    if f"OK ({n_sinks} sinks)" not in p.stdout or p.stderr:
        fail(f"check --sinks: {p.stdout}{p.stderr}")
    p = run([CLI, "demo", "--tokens", "1000", "--sinks", good], env=env, check_rc=0)
    n = count_lines(os.path.join(work, "alerts.jsonl"))
    if n == 0:
        fail("the demo raised no alert")
    for rx, name in [(mtls, "mtls"), (basic_rx, "basic"), (bearer_rx, "bearer")]:
        got = stats_line(p.stderr, name)
        if got != [n, 0, 0, 0, 0]:
            fail(f"sink {name}: counters {got}, want {n} delivered and nothing else\n{p.stderr}")
        if len(rx.requests) != n or any(r[0] != 200 for r in rx.requests):
            fail(f"receiver {name}: {len(rx.requests)} requests, statuses {[r[0] for r in rx.requests]}")
    if any(r[2] != "safety" for r in bearer_rx.requests):
        fail("the X-Team header did not reach the bearer receiver")
    if os.listdir(os.path.join(work, "spool-basic")) not in ([], [".lock"]):
        fail(f"spool not empty after delivery: {os.listdir(os.path.join(work, 'spool-basic'))}")
    if am:
        if stats_line(p.stderr, f"alertmanager:https://127.0.0.1:{am_port}")[0] != n:
            fail(f"alertmanager sink did not deliver {n}:\n{p.stderr}")
        code, body = am_get(am_port, certs, "/api/v2/alerts?active=true&silenced=true&inhibited=true",
                            f"saemon:{sec['am-password']}")
        if code != 200 or "alarm-direction-sustained" not in body and "pair-co-activation" not in body:
            fail(f"alertmanager does not hold saemon's alerts: HTTP {code} {body[:300]}")
        OUTPUTS.append(body)
        if am_get(am_port, certs, "/api/v2/alerts", None)[0] != 401:
            fail("alertmanager answers without credentials: its web config is not in force")
    print(f"delivered {n} alerts to each of {n_sinks - 1} authenticated receivers")

    # The same through the command-line flags (the common case).
    bearer_rx.reset()
    write(os.path.join(work, "am-password"), sec["am-password"] + "\n")
    hook_url = f"https://127.0.0.1:{bearer_rx.port}/hook"
    flags = ["--webhook", hook_url, "--webhook-bearer-file", os.path.join(work, "hook-token"),
             "--ca-file", os.path.join(certs, "ca.crt")]
    if am:
        flags += ["--alertmanager", f"https://127.0.0.1:{am_port}", "--alertmanager-user", "saemon",
                  "--alertmanager-password-file", os.path.join(work, "am-password")]
    p = run([CLI, "demo", "--tokens", "1000", "--alerts", os.path.join(work, "flags.jsonl")] + flags, check_rc=0)
    if stats_line(p.stderr, "webhook:" + hook_url.rsplit("/", 1)[0]) != [n, 0, 0, 0, 0] or len(bearer_rx.requests) != n:
        fail(f"--webhook-bearer-file: not every alert delivered:\n{p.stderr}")
    if am and stats_line(p.stderr, f"alertmanager:https://127.0.0.1:{am_port}")[0] != n:
        fail(f"--alertmanager-user/--alertmanager-password-file: not every alert delivered:\n{p.stderr}")

    # 2. Wrong credentials: refused, reported, counted, 401 not retried.
    for rx in receivers:
        rx.reset()
    am_wrong = (f"  - type: alertmanager\n    url: https://127.0.0.1:{am_port}\n"
                f"    basic_auth: {{username: saemon, password_file: wrong-password}}\n"
                f"    tls_config: {{ca_file: certs/ca.crt}}\n") if am else ""
    wrong = write(os.path.join(work, "sinks-wrong.yaml"),
                  "sinks:\n"
                  "  - type: webhook\n"
                  "    name: basic\n"
                  f"    url: https://127.0.0.1:{basic_rx.port}/hook\n"
                  f"    spool: {work}/spool-wrong\n"
                  "    basic_auth: {username: saemon, password_file: wrong-password}\n"
                  "    tls_config: {ca_file: certs/ca.crt}\n"
                  "  - type: webhook\n"
                  "    name: bearer\n"
                  f"    url: https://127.0.0.1:{bearer_rx.port}/hook\n"
                  "    authorization: {credentials_env: SAEMON_WRONG_TOKEN}\n"
                  "    tls_config: {ca_file: certs/ca.crt}\n"
                  "  - type: webhook\n"
                  "    name: no-client-cert\n"
                  f"    url: https://127.0.0.1:{mtls.port}/hook\n"
                  "    retries: 1\n"
                  "    backoff: 0.01\n"
                  "    tls_config: {ca_file: certs/ca.crt, server_name: receiver.test}\n"
                  "  - type: webhook\n"
                  "    name: skip-verify\n"
                  f"    url: https://127.0.0.1:{bearer_rx.port}/hook\n"
                  "    authorization: {credentials_file: hook-token}\n"
                  "    tls_config: {insecure_skip_verify: true}\n" + am_wrong)
    p = run([CLI, "demo", "--tokens", "1000", "--sinks", wrong], env=env)
    if p.returncode != 1:
        fail(f"alerts lost to a TLS failure must fail the run (exit {p.returncode}):\n{p.stderr}")
    for name in ["basic", "bearer"] + ([f"alertmanager:https://127.0.0.1:{am_port}"] if am else []):
        got = stats_line(p.stderr, name)
        if got != [0, 0, 0, 0, n]:
            fail(f"sink {name} with wrong credentials: counters {got}, want {n} failed, 0 retried\n{p.stderr}")
        if f"sink {name}: the receiver refused the credentials (HTTP 401)" not in p.stderr:
            fail(f"sink {name}: the refusal is not reported:\n{p.stderr}")
    got = stats_line(p.stderr, "no-client-cert")
    if got[0] != 0 or got[4] != n or got[1] != n:
        fail(f"sink no-client-cert: counters {got}, want {n} failed after 1 retry each\n{p.stderr}")
    if "sink no-client-cert: " + str(n) + " alerts could not be delivered" not in p.stderr:
        fail(f"the lost alerts are not reported:\n{p.stderr}")
    if mtls.requests or mtls.handshake_failures < n:
        fail(f"the client-certificate receiver let a request through ({len(mtls.requests)}) or saw "
             f"{mtls.handshake_failures} refused handshakes")
    if stats_line(p.stderr, "skip-verify")[0] != n:
        fail(f"insecure_skip_verify did not deliver:\n{p.stderr}")
    if "sink skip-verify: tls_config insecure_skip_verify is true" not in p.stderr:
        fail(f"insecure_skip_verify is not warned about:\n{p.stderr}")
    rejected = os.listdir(os.path.join(work, "spool-wrong"))
    if sum(f.endswith(".rejected") for f in rejected) != n:
        fail(f"refused alerts are not set aside in the spool: {rejected}")
    print(f"wrong credentials: {n} alerts refused per sink, reported, never retried")

    # 3. saemon check --sinks finds broken credentials without sending anything.
    for rx in receivers:
        rx.reset()
    os.chmod(os.path.join(work, "hook-token"), 0o644)

    def check_bad(name, tls, want):
        path = write(os.path.join(work, name), "sinks:\n  - type: webhook\n"
                     f"    url: https://127.0.0.1:{bearer_rx.port}/hook\n" + tls)
        p = run([CLI, "check", "--sinks", path], env=env)
        if p.returncode != 1 or not re.search(want, p.stderr):
            fail(f"check --sinks {name}: exit {p.returncode}, want 1 and /{want}/ in:\n{p.stderr}")

    check_bad("expired.yaml", "    tls_config: {ca_file: certs/ca.crt, cert_file: certs/expired.crt, "
              "key_file: certs/expired.key}\n",
              r"expired\.yaml:4:52: tls_config cert_file .*expired\.crt: the certificate expired on 2020-01-02")
    check_bad("mismatch.yaml", "    tls_config: {cert_file: certs/client.crt, key_file: certs/server.key}\n",
              r"mismatch\.yaml:4:57: tls_config key_file .*server\.key does not match the certificate")
    check_bad("unreadable.yaml", "    authorization: {credentials_file: no-such-token}\n",
              r"unreadable\.yaml:4:39: .*no-such-token: cannot open")
    check_bad("not-a-cert.yaml", "    tls_config: {ca_file: hook-password}\n",
              r"not-a-cert\.yaml:4:27: tls_config ca_file .*hook-password: no PEM certificate")
    p = run([CLI, "check", "--sinks", good], env=env, check_rc=0)
    if not re.search(r"sinks\.yaml:23:53: authorization credentials file .*hook-token is readable by group or "
                     r"others", p.stderr):
        fail(f"no warning for a secret file others can read:\n{p.stderr}")
    if any(rx.requests or rx.handshake_failures for rx in receivers):
        fail("saemon check sent something")
    os.chmod(os.path.join(work, "hook-token"), 0o600)
    print("check --sinks: expired certificate, key mismatch, unreadable secret, loose permissions reported")

    # 4. The daemon's endpoint: TLS with client certificates + basic auth.
    write_sae(os.path.join(work, "sae"))
    write(os.path.join(work, "rules.yaml"),
          "version: 1\nrules:\n  - name: f0\n    severity: warning\n    condition: {feature: 0, above: 100}\n")
    # The endpoint's certificate lives where a rotation (cert-manager, certbot)
    # replaces it: certs/metrics.{crt,key}, first server's, later server2's.
    for ext in ("crt", "key"):
        shutil.copyfile(f"{certs}/server.{ext}", f"{certs}/metrics.{ext}")

    def web_yml(cert, pw_hash):
        return write(os.path.join(work, "web.yml"),
                     f"tls_server_config:\n  cert_file: {cert}\n  key_file: certs/metrics.key\n"
                     "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: certs/ca.crt\n"
                     f"basic_auth_users:\n  prometheus: {pw_hash}\n")
    web = web_yml("certs/metrics.crt", metrics_hash)
    ring = f"authtest-{os.getpid()}"
    log_path = os.path.join(work, "serve.log")
    with open(log_path, "w") as log:
        srv = subprocess.Popen([CLI, "serve", "--sae", os.path.join(work, "sae"), "--rules",
                                os.path.join(work, "rules.yaml"), "--ring", ring, "--metrics", "127.0.0.1:0",
                                "--web-config", web, "--sinks", good],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    procs.append(srv)
    port, deadline = None, time.time() + 60
    while time.time() < deadline and not port:
        m = re.search(r"metrics listening on \S+ \(port (\d+)\): /metrics /healthz over https with basic auth",
                      open(log_path).read())
        port = m and int(m.group(1))
        if srv.poll() is not None:
            fail("saemon serve exited:\n" + open(log_path).read())
        time.sleep(0.05)
    if not port:
        fail("saemon serve did not listen:\n" + open(log_path).read())
    url = f"https://127.0.0.1:{port}/metrics"
    client = ["--cert", f"{certs}/client.crt", "--key", f"{certs}/client.key"]

    def curl(*args):
        p = run(["curl", "-sS", "-o", "-", "-w", "\\n%{http_code}", "--cacert", f"{certs}/ca.crt"] + list(args))
        lines = p.stdout.rsplit("\n", 1)
        return (int(lines[-1]) if lines[-1].isdigit() else 0), lines[0] if len(lines) > 1 else ""

    code, body = curl(*client, "-u", f"prometheus:{sec['metrics-password']}", url)
    if code != 200 or "saemon_" not in body or 'sink="basic"' not in body:
        fail(f"/metrics with client certificate and password: HTTP {code} (want the sinks' counters too)\n"
             f"{body[:300]}")
    code2, _ = curl(*client, "-u", f"prometheus:{sec['metrics-password']}", url)  # cached check
    code_h, _ = curl(*client, "-u", f"prometheus:{sec['metrics-password']}", url.replace("/metrics", "/healthz"))
    if code2 != 200 or code_h not in (200, 503):
        fail(f"second scrape HTTP {code2}, /healthz HTTP {code_h}")
    refusals = {
        "no password": curl(*client, url)[0],
        "wrong password": curl(*client, "-u", f"prometheus:{sec['wrong-password']}", url)[0],
        "unknown user": curl(*client, "-u", f"admin:{sec['metrics-password']}", url)[0],
        "no client certificate": curl("-u", f"prometheus:{sec['metrics-password']}", url)[0],
        "untrusted client certificate": curl("--cert", f"{certs}/rogue.crt", "--key", f"{certs}/rogue.key", "-u",
                                             f"prometheus:{sec['metrics-password']}", url)[0],
        "plain http": curl("-u", f"prometheus:{sec['metrics-password']}", url.replace("https:", "http:"))[0],
    }
    want = {"no password": 401, "wrong password": 401, "unknown user": 401}
    for what, code in refusals.items():
        if code != want.get(what, code) or code == 200 or (what not in want and code not in (0, 403)):
            fail(f"/metrics with {what}: HTTP {code}")

    # 4b. Rotation: SIGHUP re-reads the web config and its files (as Prometheus
    # exporters do), without refusing a connection; a broken one keeps the old.
    def served_cert():
        ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
        ctx.load_cert_chain(f"{certs}/client.crt", f"{certs}/client.key")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.getpeercert(binary_form=True)

    def der(name):
        with open(f"{certs}/{name}.crt") as fh:
            return ssl.PEM_cert_to_DER_cert(fh.read())

    def sighup_and_wait(message):
        seen = open(log_path).read().count(message)
        srv.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while open(log_path).read().count(message) == seen:
            if time.time() > deadline or srv.poll() is not None:
                fail(f"no '{message}' after SIGHUP:\n" + open(log_path).read())
            time.sleep(0.05)

    if served_cert() != der("server"):
        fail("the endpoint does not serve certs/metrics.crt (server.crt) before the rotation")
    for ext in ("crt", "key"):
        shutil.copyfile(f"{certs}/server2.{ext}", f"{certs}/metrics.{ext}")
    web_yml("certs/metrics.crt", metrics_hash2)
    sighup_and_wait("web config reloaded")
    rotated = {"certificate is server2's": served_cert() == der("server2"),
               "new password 200": curl(*client, "-u", f"prometheus:{sec['metrics-password2']}", url)[0] == 200,
               "old password 401": curl(*client, "-u", f"prometheus:{sec['metrics-password']}", url)[0] == 401,
               "no client certificate refused": curl("-u", f"prometheus:{sec['metrics-password2']}", url)[0]
               in (0, 403)}
    if not all(rotated.values()):
        fail(f"after SIGHUP with a rotated certificate and password: {rotated}")
    web_yml("certs/no-such.crt", metrics_hash)
    sighup_and_wait("web config not reloaded")
    kept = served_cert() == der("server2") and \
        curl(*client, "-u", f"prometheus:{sec['metrics-password2']}", url)[0] == 200
    if not kept or not re.search(r"web config not reloaded, keeping the old one: .*no-such\.crt", open(log_path).read()):
        fail("a broken web config on SIGHUP did not keep the old one:\n" + open(log_path).read())
    srv.send_signal(signal.SIGTERM)
    srv.wait(timeout=60)
    print(f"serve --web-config: 200 with client certificate + password; refused: {refusals}; "
          f"SIGHUP rotated the certificate and the password; a broken web config kept the old one")

    # 5. No secret anywhere.
    needles = {k: v for k, v in sec.items()}
    for k in ["hook-password", "am-password", "metrics-password", "wrong-password"]:
        for user in ["saemon", "prometheus"]:
            needles[f"{k} as basic auth of {user}"] = base64.b64encode(f"{user}:{sec[k]}".encode()).decode()
    secret_files = {os.path.join(work, f) for f in ["hook-password", "hook-token", "wrong-password", "am-password"]}
    texts = [("output", t) for t in OUTPUTS]
    for root, _, files in os.walk(work):
        for f in files:
            path = os.path.join(root, f)
            if path in secret_files or f.endswith((".key", ".crt", ".csr", ".pem")) or "/am/data" in path:
                continue
            with open(path, "rb") as fh:
                texts.append((path, fh.read().decode("utf-8", "replace")))
    texts += [(f"request body of receiver {i}", r[3]) for i, rx in enumerate(receivers) for r in rx.requests]
    # The grep can fail: it finds each secret in the file that holds it.
    with open(os.path.join(work, "hook-token")) as fh:
        if needles["hook-token"] not in fh.read():
            fail("the leak grep does not see a secret where it is")
    for where, text in texts:
        for what, value in needles.items():
            if value in text:
                fail(f"secret {what} leaked into {where}")
    print(f"no secret in {len(texts)} outputs, logs, spool and alert files, request bodies")
    print(f"tested with: {openssl_version}; curl {run(['curl', '--version']).stdout.split()[1]}; "
          f"Python {sys.version.split()[0]} ssl ({ssl.OPENSSL_VERSION})"
          + (f"; {am_version[0]}" if am else ""))
    for rx in receivers:
        rx.stop()


main()
