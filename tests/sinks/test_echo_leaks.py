"""Secrets never leave through a receiver that echoes the request (issue 24):
the webhook refuses every alert with 401 and a body repeating every request
header; the URL carries a Slack-style path token and a ?token=; the sink has
basic auth and two extra headers, one from a file (value_file), one inline.
None of those secrets (nor the base64 of user:password) may appear on
stderr, in the sink's name or in the counters; the value_file header still
reaches the receiver.

usage: test_echo_leaks.py SAEMON_CLI
"""
import base64
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading

SECRETS = {
    "path token": "PATHTOKEN7f3a",
    "query token": "QUERYTOKEN91bc",
    "password": "PASSWORD55de",
    "header from a file": "FILEHEADER0c2e",
    "inline header": "INLINEHEADER8d4f",
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Echo(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Echo.seen.append(dict(self.headers))
        body = ("denied: " + " ".join(f"{k}={v}" for k, v in self.headers.items())).encode()
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    cli = sys.argv[1]
    work = tempfile.mkdtemp(prefix="saemon-echo-")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        key = os.path.join(work, "api-key")
        with open(key, "w") as f:
            f.write(SECRETS["header from a file"] + "\n")
        os.chmod(key, 0o600)
        url = (f"http://127.0.0.1:{srv.server_port}/services/T0/B0/{SECRETS['path token']}"
               f"?token={SECRETS['query token']}")
        sinks = os.path.join(work, "sinks.yaml")
        with open(sinks, "w") as f:
            f.write(f"""sinks:
  - type: webhook
    url: "{url}"
    drain_timeout: 2
    basic_auth: {{username: alice, password: {SECRETS['password']}}}
    headers:
      X-Api-Key: {{value_file: {key}}}
      X-Team: {SECRETS['inline header']}
""")
        r = subprocess.run([cli, "demo", "--tokens", "400", "--sinks", sinks], capture_output=True, text=True,
                           timeout=120)
        if not Echo.seen:
            fail(f"the receiver got nothing (exit {r.returncode}):\n{r.stderr}")
        got = Echo.seen[0]
        if got.get("X-Api-Key") != SECRETS["header from a file"] or got.get("X-Team") != SECRETS["inline header"]:
            fail(f"the headers did not arrive as configured: {got}")
        if "Authorization" not in got:
            fail("basic auth was not sent")
        leaked = dict(SECRETS)
        leaked["basic auth (base64)"] = base64.b64encode(f"alice:{SECRETS['password']}".encode()).decode()
        out = r.stdout + r.stderr
        for what, secret in leaked.items():
            if secret in out:
                fail(f"the {what} leaked to the output:\n{out}")
        if f"webhook:http://127.0.0.1:{srv.server_port}:" not in r.stderr:
            fail(f"the default sink name is not scheme://host:port:\n{r.stderr}")
        if "HTTP 401" not in r.stderr and "refused" not in r.stderr:
            fail(f"the refusal is not reported at all:\n{r.stderr}")
        print(f"{len(Echo.seen)} posts echoed back; no secret on stdout/stderr; sink name "
              f"webhook:http://127.0.0.1:{srv.server_port}")
        print("PASS")
    finally:
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
