"""The metrics endpoint of `saemon serve` against hostile clients (issue 24):

1. slowloris: 32 connections from another address, each dribbling one header
   line a second, do not keep /healthz from answering, and are shut down at
   the request deadline;
2. a wrong-password flood (31 clients, bcrypt cost 10) does not starve a
   scraper whose credentials are cached; the flood is throttled (429) instead
   of buying one bcrypt per request.

Assertions are "answers at all within a generous bound", never latencies.
The attackers use 127.0.0.2 (any 127/8 address is loopback on Linux).

usage: test_serve_http_hostile.py SAEMON_CLI
"""
import base64
import http.client
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import Serve, fail  # noqa: E402
from test_serve_config import make_dict  # noqa: E402

# "pw", bcrypt cost 10 (what htpasswd -nBC 10 makes)
HASH = "$2b$10$dFUGrzZJvstRAgLisgn1.OqnccBvY3A1/YYo8n4e3ER7QO320.BgC"
GOOD = "Basic " + base64.b64encode(b"prometheus:pw").decode()
BAD = "Basic " + base64.b64encode(b"prometheus:wrong").decode()


def get(port, path, auth, source="127.0.0.1", timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        c.request("GET", path, headers={"Authorization": auth})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics", headers={"Authorization": GOOD})
        body = c.getresponse().read().decode()
    finally:
        c.close()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    fail(f"{name} not in /metrics")


def slowloris(port, n, stop, closed):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    i = 0
    while not stop.is_set():
        for k, s in enumerate(socks):
            if k in closed:
                continue
            try:
                s.sendall(b"X-Slow-%d: %d\r\n" % (k, i))
                s.settimeout(0.001)
                if s.recv(1) == b"":
                    closed.add(k)
            except socket.timeout:
                pass
            except OSError:
                closed.add(k)
        i += 1
        stop.wait(1.0)
    for s in socks:
        s.close()


def main():
    cli = sys.argv[1]
    work = tempfile.mkdtemp(prefix="saemon-http-")
    try:
        sae, _, rules = make_dict(work, "a", 16, 8, 3)
        web = os.path.join(work, "web.yml")
        with open(web, "w") as f:
            f.write(f"basic_auth_users:\n  prometheus: {HASH}\n")
        srv = Serve(cli, ["--sae", sae, "--rules", rules, "--ring", f"http-{os.getpid()}",
                          "--metrics", "127.0.0.1:0", "--web-config", web], os.path.join(work, "serve.log"))
        port = srv.port
        if get(port, "/healthz", GOOD) != 200 or get(port, "/healthz", BAD) != 401:
            fail("basic auth does not work at all")

        # 1. slowloris
        stop, closed = threading.Event(), set()
        t = threading.Thread(target=slowloris, args=(port, 32, stop, closed))
        t.start()
        time.sleep(2)
        for _ in range(3):
            if get(port, "/healthz", GOOD) != 200:
                fail("/healthz beside 32 slow connections")
            time.sleep(0.5)
        deadline = time.time() + 40
        while len(closed) < 32 and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        t.join()
        if len(closed) < 32:
            fail(f"only {len(closed)} of 32 slow connections were shut down at the request deadline")
        if metric(port, "saemon_http_request_timeouts_total") < 32:
            fail("the shut-down slow connections are not counted")
        print("slowloris: /healthz answered beside 32 slow connections; all 32 shut down at the deadline")

        # 2. credential flood
        stop = threading.Event()
        codes, lock = {}, threading.Lock()

        def flood():
            while not stop.is_set():
                try:
                    c = get(port, "/metrics", BAD, source="127.0.0.2", timeout=30)
                except OSError:
                    c = "error"
                with lock:
                    codes[c] = codes.get(c, 0) + 1

        threads = [threading.Thread(target=flood) for _ in range(31)]
        for th in threads:
            th.start()
        scrapes = 0
        try:
            end = time.time() + 8
            while time.time() < end:
                if get(port, "/metrics", GOOD, timeout=10) != 200:
                    fail("a scrape with the right (cached) password was refused during the flood")
                scrapes += 1
                time.sleep(0.25)
        except OSError as e:
            fail(f"a scrape did not answer within 10 s during the flood: {e}")
        finally:
            stop.set()
            for th in threads:
                th.join()
        if not codes.get(429):
            fail(f"the flood was not throttled: {codes}")
        # burst 10 + 1/s over ~10 s + the checks in flight: far below one bcrypt per request
        if codes.get(401, 0) > 40:
            fail(f"the flood bought {codes[401]} bcrypt checks: {codes}")
        if metric(port, "saemon_http_auth_throttled_total") != codes.get(429):
            fail(f"saemon_http_auth_throttled_total is not the {codes.get(429)} refusals")
        print(f"flood: {scrapes} scrapes answered 200 meanwhile; flood answers {codes}")
        rc, log = srv.stop()
        if rc != 0:
            fail(f"saemon serve exited {rc}:\n{log}")
        print("PASS")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
