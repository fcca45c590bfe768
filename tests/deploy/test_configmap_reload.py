"""A rules ConfigMap update reloads `saemon serve`'s rules, without a signal.

The kubelet updates a ConfigMap volume atomically: the files are symlinks
through `..data`, a symlink to a timestamped directory; an update writes a
new directory, points `..data_tmp` at it and renames `..data_tmp` over
`..data`. The rule file's own name never changes, so a watcher that only
looks for it misses the update. This test lays out a volume exactly that
way (no cluster needed), swaps it, and waits for the reload to be counted
and the new rule to be in force; then a broken update is counted as a
failed reload (the old rules stay).

usage: test_configmap_reload.py SAEMON_CLI
"""
import os
import shutil
import signal
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sidecar"))
from serve_harness import Serve, fail, write_safetensors  # noqa: E402

RULES_V1 = "version: 1\nrules:\n  - {name: first, severity: warning, condition: {feature: 2, above: 3.0}}\n"
RULES_V2 = "version: 1\nrules:\n  - {name: second, severity: warning, condition: {feature: 2, above: 3.0}}\n"
BROKEN = "version: 1\nrules:\n  - {name: broken, condition: {feature: 2, abve: 1}}\n"


def atomic_write(vol, files, generation):
    """What the kubelet's AtomicWriter does for a ConfigMap volume."""
    ts = os.path.join(vol, f"..2026_12_07_00_00_0{generation}.{1000 + generation}")
    os.mkdir(ts)
    for name, text in files.items():
        with open(os.path.join(ts, name), "w") as f:
            f.write(text)
    tmp = os.path.join(vol, "..data_tmp")
    os.symlink(os.path.basename(ts), tmp)
    os.rename(tmp, os.path.join(vol, "..data"))
    for name in files:
        link = os.path.join(vol, name)
        if not os.path.islink(link):
            os.symlink(os.path.join("..data", name), link)


def main():
    cli = sys.argv[1]
    work = tempfile.mkdtemp(prefix="saemon-cm-")
    srv = None
    try:
        sae = os.path.join(work, "sae")
        os.makedirs(sae)
        w = np.random.default_rng(1).standard_normal((16, 32)).astype(np.float32)
        write_safetensors(os.path.join(sae, "sae_weights.safetensors"), {
            "W_enc": w, "W_dec": np.ascontiguousarray(w.T), "b_enc": np.zeros(32, np.float32),
            "b_dec": np.zeros(16, np.float32)})
        with open(os.path.join(sae, "cfg.json"), "w") as f:
            f.write('{"d_in": 16, "d_sae": 32, "dtype": "float32", "architecture": "standard", '
                    '"apply_b_dec_to_input": true, "normalize_activations": "none", '
                    '"metadata": {"hook_name": "core", "model_name": "cm-test"}}')
        vol = os.path.join(work, "rules")  # the ConfigMap's mount point
        os.mkdir(vol)
        atomic_write(vol, {"model.yaml": RULES_V1}, 1)
        ring = f"cm{os.getpid()}"
        srv = Serve(cli, ["--sae", sae, "--rules", os.path.join(vol, "model.yaml"), "--ring", ring, "--hook", "core",
                          "--metrics", "127.0.0.1:0"], os.path.join(work, "serve.log"))
        if srv.value("saemon_rules_reload_total", result="success") != 0:
            fail("a reload was counted before any update")

        atomic_write(vol, {"model.yaml": RULES_V2}, 2)  # the update: only ..data is renamed
        srv.wait_value("saemon_rules_reload_total", 1, timeout=30, result="success")
        print("a ConfigMap-style update (..data swapped) reloaded the rules without SIGHUP")

        atomic_write(vol, {"model.yaml": BROKEN}, 3)
        srv.wait_value("saemon_rules_reload_total", 1, timeout=30, result="failure")
        rc, log = srv.stop()
        srv = None
        if rc != 0:
            fail(f"saemon serve exited {rc}:\n{log}")
        if "rules not reloaded" not in log:
            fail("the broken update was not logged:\n" + log)
        print("a broken update is counted as a failed reload and logged; the old rules stay")
        print("PASS")
    finally:
        if srv is not None:
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait()
        if os.path.exists(f"/dev/shm/saemon-ring.cm{os.getpid()}"):
            os.unlink(f"/dev/shm/saemon-ring.cm{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
