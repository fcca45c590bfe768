"""What deploy/*/make-*.py share: render a generated file from its source and
write it, or with --check exit 1 when the committed copy is out of date
(stdlib only; tests/deploy runs the checks in CI)."""
import os
import sys


def write_or_check(source, out, render, script):
    with open(source) as f:
        want = render(f.read())
    if sys.argv[1:] == ["--check"]:
        have = None
        if os.path.exists(out):
            with open(out) as f:
                have = f.read()
        if have != want:
            print(f"{out} is out of date: run {script}", file=sys.stderr)
            sys.exit(1)
        return
    with open(out, "w") as f:
        f.write(want)
