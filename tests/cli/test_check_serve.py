"""`saemon check --config` / `--web-config`: the daemon's files are checked as
promtool checks Prometheus' config and web config. A good config and every
file it names pass; a typo in a named rule file, a missing dictionary, an
unknown config key and a web config whose hash is not bcrypt fail with exit 1
and a message naming file:line:column (or the missing path). Nothing is
served: no ring appears in /dev/shm.

usage: test_check_serve.py SAEMON_CLI
"""
import os
import subprocess
import sys
import tempfile

HASH = "$2b$04$/n9x3BjHxx4Td6jMkr4F6ODuJrBlsdC4iBM0f6CQmAzQ/fTi/90BG"
RULES = "version: 1\nrules:\n  - name: hot\n    severity: warning\n    condition: {feature: 2, above: 0.6}\n"
CONFIG = """version: 1
metrics: 127.0.0.1:0
web_config: web.yml
dictionaries:
  - name: d
    sae: sae
    rules: {rules}
    rings:
      - {{name: check-serve-test-{pid}}}
"""


def run(cli, *args):
    p = subprocess.run([cli, "check", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def expect(cond, what, out):
    if not cond:
        print(f"FAIL: {what}\n{out}")
        sys.exit(1)


def main():
    cli = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        os.mkdir(os.path.join(work, "sae"))
        with open(os.path.join(work, "rules.yaml"), "w") as f:
            f.write(RULES)
        with open(os.path.join(work, "bad-rules.yaml"), "w") as f:
            f.write(RULES.replace("above", "abov"))
        with open(os.path.join(work, "web.yml"), "w") as f:
            f.write(f"basic_auth_users:\n  prometheus: {HASH}\n")
        with open(os.path.join(work, "bad-web.yml"), "w") as f:
            f.write("basic_auth_users:\n  prometheus: plaintext\n")
        good = os.path.join(work, "saemon.yaml")
        with open(good, "w") as f:
            f.write(CONFIG.format(rules="rules.yaml", pid=os.getpid()))

        rc, out = run(cli, "--config", good)
        expect(rc == 0 and "OK (1 dictionaries, 1 rings)" in out and "basic auth" in out, "good config passes", out)
        expect(not os.path.exists(f"/dev/shm/saemon-ring.check-serve-test-{os.getpid()}"), "no ring created", out)

        bad = os.path.join(work, "bad-rules.yaml.cfg")
        with open(bad, "w") as f:
            f.write(CONFIG.format(rules="bad-rules.yaml", pid=os.getpid()))
        rc, out = run(cli, "--config", bad)
        expect(rc == 1 and "bad-rules.yaml:5:" in out, "a typo in a named rule file fails at file:line", out)

        nodict = os.path.join(work, "nodict.yaml")
        with open(nodict, "w") as f:
            f.write(CONFIG.format(rules="rules.yaml", pid=os.getpid()).replace("sae: sae", "sae: missing-sae"))
        rc, out = run(cli, "--config", nodict)
        expect(rc == 1 and "missing-sae" in out, "a missing dictionary fails naming it", out)

        typo = os.path.join(work, "typo.yaml")
        with open(typo, "w") as f:
            f.write(CONFIG.format(rules="rules.yaml", pid=os.getpid()).replace("metrics:", "metrcs:"))
        rc, out = run(cli, "--config", typo)
        expect(rc == 1 and "typo.yaml:2:" in out, "an unknown key fails at file:line:column", out)

        rc, out = run(cli, "--web-config", os.path.join(work, "web.yml"))
        expect(rc == 0 and "OK" in out, "a good web config passes", out)
        rc, out = run(cli, "--web-config", os.path.join(work, "bad-web.yml"))
        expect(rc == 1 and "bad-web.yml:2:" in out and "bcrypt" in out, "a non-bcrypt hash fails at file:line", out)
    print("check --config / --web-config: 6 cases passed")


if __name__ == "__main__":
    main()
