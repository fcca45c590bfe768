#!/usr/bin/env python3
"""monitors/examples/every-construct.yaml uses every construct of the rule
language, as the parser defines it, and names only functions that exist.

The constructs are read from the parser itself: every key table
(`static const char *const NAME[] = {...}`) of monitors/rules_load.c and
monitors/rules_condition.c (top level, pin, groups, rules, windows, captures,
conditions, at_least, probes, health checks) must appear as a YAML key, the
severity table and the actions as values; every saemon_* name in the file
must be declared in include/saemon/.

usage: every_construct.py SOURCE_ROOT
"""
import os
import re
import sys


def tables(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    out = {}
    for m in re.finditer(r'static const char \*const (\w+)\[\] = \{(.*?)\};', text, re.S):
        out[m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    return out, text


def main():
    root = sys.argv[1]
    ex = os.path.join(root, 'monitors/examples/every-construct.yaml')
    with open(ex, encoding='utf-8') as f:
        yaml_text = f.read()
    code = '\n'.join(l.split('#', 1)[0] for l in yaml_text.splitlines())  # without comments
    keys = set(re.findall(r'(\w+)\s*:', code))
    words = set(re.findall(r'\w+', code))
    missing = []
    for src in ('monitors/rules_load.c', 'monitors/rules_condition.c'):
        t, text = tables(os.path.join(root, src))
        if not t:
            missing.append(f'{src}: no key tables found (the check needs updating)')
        for name, entries in t.items():
            want_values = name == 'severities'
            for e in entries:
                if (e not in words) if want_values else (e not in keys):
                    missing.append(f'{src} {name}: "{e}" not used in every-construct.yaml')
        for action in re.findall(r'strcmp\(action, "(\w+)"\)', text):
            if action not in words:
                missing.append(f'{src}: action "{action}" not used in every-construct.yaml')
    headers = ''
    inc = os.path.join(root, 'include/saemon')
    for h in os.listdir(inc):
        if h.endswith('.h'):
            with open(os.path.join(inc, h), encoding='utf-8') as f:
                headers += f.read()
    for fn in sorted(set(re.findall(r'\b(saemon_\w+)\(', yaml_text))):
        if not re.search(r'\b%s\s*\(' % fn, headers):
            missing.append(f'every-construct.yaml names {fn}(), which no public header declares')
    for m in missing:
        print('FAIL ' + m)
    print('every-construct: %d keys in the file, %d problems' % (len(keys), len(missing)))
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
