#!/usr/bin/python3
"""Webhook receiver for the soak (bench/soak/soak.sh): records every POST's
Idempotency-Key and the delay from the alert's own timestamp to its arrival.
Writes KEY<TAB>latency_seconds<TAB>rule|stream|token|status per request to
the log given; prints its port on stdout."""
import json, socket, sys, time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = open(sys.argv[1], "a", buffering=1)

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        # headers and body go out in two writes: without TCP_NODELAY every
        # keep-alive request waits ~40 ms for a delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def log_message(self, *a):
        pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        now = time.time()
        try:
            a = json.loads(body)
            ts = datetime.strptime(a["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() - time.timezone
            ev = "%s|%s|%s|%s" % (a["rule"], a["stream"], a["token"], a["status"])
            log.write("%s\t%.6f\t%s\n" % (self.headers.get("Idempotency-Key", ""), now - ts, ev))
        except Exception as e:  # a malformed alert is a finding: record it
            log.write("BAD\t0\t%r\n" % (e,))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
