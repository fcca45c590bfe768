"""Helpers for the sidecar tests: run `saemon serve` as a child process, read
its /metrics, write small SAELens dictionaries."""
import json
import re
import signal
import struct
import subprocess
import sys
import time
import urllib.request

import numpy as np


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Serve:
    def __init__(self, cli, args, log_path):
        self.log = open(log_path, "w+")
        self.proc = subprocess.Popen([cli, "serve"] + args, stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            text = open(log_path).read()
            m = re.search(r"metrics listening on \S+ \(port (\d+)\)", text)
            if m:
                self.port = int(m.group(1))
            if "ready:" in text and self.port:
                return
            if self.proc.poll() is not None:
                fail("saemon serve exited early:\n" + text)
            time.sleep(0.05)
        fail("saemon serve did not get ready:\n" + open(log_path).read())

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return r.read().decode()

    def value(self, name, **labels):
        total, found = 0.0, False
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
                found = True
        return total if found else None

    def wait_value(self, name, want, timeout=60, **labels):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = self.value(name, **labels)
            if v is not None and v >= want:
                return v
            time.sleep(0.05)
        fail(f"{name}{labels} did not reach {want} (last {self.value(name, **labels)})")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.log.seek(0)
        return rc, self.log.read()
