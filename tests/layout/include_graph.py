#!/usr/bin/env python3
"""The include graph against the README's Layout table.

Every #include "..." of every .c/.h file in the tree is resolved (the
including file's folder, then the project root, then include/, as the build
does) and turned into an edge between two folders of the Layout table. The
table in README.md is the source of the allowed edges: a folder may include
its own files, and those of the folders its "may use" column names in
backquotes (`base/`, `kernels/`, ...); "the public API" / "public types" name
`include/saemon/`; "everything above" every row above it; "everything" every
row. Any other edge fails, as does a .c/.h file in a folder the table does not
name, or an include that resolves to no file. #include <...> (libc, libyaml,
system headers) is not checked here: the link-based layer check and the build
see those.

A "may use" entry that names a file (`include/saemon/producer.h`) allows that
file only. Generated headers (saemon/version.h, cli's demo_rules.h) are found
in BUILD_ROOT and belong to the folder they are generated for.

usage: include_graph.py SOURCE_ROOT [BUILD_ROOT] [--print]
       include_graph.py --self-test   (the check catches what it must, on a tiny tree)
"""
import os
import re
import sys

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SKIP_DIRS = {'.git', 'build', 'subprojects'}


def parse_layout(readme_path):
    """[(folder, allowed set, row text)] in table order, from '## Layout'."""
    with open(readme_path, encoding='utf-8') as f:
        text = f.read()
    m = re.search(r'^## Layout\n(.*?)(?=^## )', text, re.M | re.S)
    if not m:
        sys.exit('include-graph: README.md has no "## Layout" section')
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 3 or not cells[0].startswith('`'):
            continue
        folder = cells[0].strip('`').rstrip('/')
        rows.append((folder, cells[2]))
    if not rows:
        sys.exit('include-graph: no rows in the README Layout table')
    folders = [r[0] for r in rows]
    table = []
    for i, (folder, uses) in enumerate(rows):
        allowed = {folder}
        for name in re.findall(r'`([^`]+)`', uses):
            name = re.sub(r"'s$", '', name).rstrip('/')
            if name in folders or folder_of(name, folders) is not None:
                allowed.add(name)  # a folder, or one file of a folder
        low = uses.lower()
        if 'public api' in low or 'public types' in low:
            allowed.add('include/saemon')
        if re.search(r'\beverything above\b', low):
            allowed.update(folders[:i])
        elif re.search(r'\beverything\b', low):
            allowed.update(folders)
        table.append((folder, allowed))
    return table


def folder_of(rel, folders):
    """The longest table folder that contains rel (a path from the root)."""
    best = None
    for f in folders:
        if rel == f or rel.startswith(f + '/'):
            if best is None or len(f) > len(best):
                best = f
    return best


def check(root, build=None, show=False):
    """Print the violations of the tree at root; return their number."""
    table = parse_layout(os.path.join(root, 'README.md'))
    folders = [f for f, _ in table]
    allowed = dict(table)
    errors = []
    edges = {}
    n_files = n_includes = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not d.startswith(('build', '.')))
        for name in sorted(filenames):
            if not name.endswith(('.c', '.h')):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            src = folder_of(rel, folders)
            if src is None:
                errors.append(f'{rel}: in a folder the README Layout table does not name')
                continue
            n_files += 1
            with open(path, encoding='utf-8', errors='replace') as f:
                text = f.read()
            for m in INCLUDE_RE.finditer(text):
                inc = m.group(1)
                line = text.count('\n', 0, m.start()) + 1
                n_includes += 1
                trel = None
                bases = [(dirpath, root), (root, root), (os.path.join(root, 'include'), root)]
                if build:  # generated headers: the same search in the build tree
                    bases += [(os.path.join(build, os.path.relpath(dirpath, root)), build), (build, build),
                              (os.path.join(build, 'include'), build)]
                for base, top in bases:
                    cand = os.path.normpath(os.path.join(base, inc))
                    if os.path.isfile(cand):
                        trel = os.path.relpath(cand, top)
                        break
                if trel is None:
                    errors.append(f'{rel}:{line}: #include "{inc}" resolves to no file in the tree')
                    continue
                dst = folder_of(trel, folders)
                if dst is None:
                    errors.append(f'{rel}:{line}: #include "{inc}" ({trel}) is outside every Layout folder')
                    continue
                edges.setdefault((src, dst), []).append(f'{rel}:{line}')
                if dst not in allowed[src] and trel not in allowed[src]:
                    errors.append(f'{rel}:{line}: #include "{inc}": {src}/ -> {dst}/ is not in the README '
                                  f'Layout table ({src}/ may use: {", ".join(sorted(allowed[src] - {src})) or "nothing"})')
    if show:
        for (s, d), where in sorted(edges.items()):
            if s != d:
                print(f'{s}/ -> {d}/  ({len(where)}: {where[0]}{" ..." if len(where) > 1 else ""})')
    for e in errors:
        print('FAIL ' + e)
    print(f'include-graph: {n_files} files, {n_includes} #include "..." lines, '
          f'{len({k for k in edges if k[0] != k[1]})} folder edges, {len(errors)} violations')
    return len(errors)


SELF_TEST_README = """# t

## Layout

| folder | what | may use |
|---|---|---|
| `include/p/` | public | — |
| `low/` | bottom | libc, its header `include/p/low.h` |
| `mid/` | middle | `low/` |
| `top/` | top | everything above |

## Next
"""


def self_test():
    """A tiny tree: allowed edges pass, every kind of violation fails."""
    import tempfile

    def tree(files):
        d = tempfile.mkdtemp(prefix='include-graph-')
        files = dict(files, **{'README.md': SELF_TEST_README})
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)) or d, exist_ok=True)
            with open(os.path.join(d, rel), 'w') as f:
                f.write(text)
        return d

    base = {'include/p/low.h': '', 'include/p/other.h': '', 'low/l.h': '', 'mid/m.h': '#include "low/l.h"\n',
            'top/t.c': '#include "mid/m.h"\n#include "low/l.h"\n#include "p/other.h"\n'}
    cases = [
        ('allowed edges', {}, 0),
        ('upward edge', {'low/bad.c': '#include "mid/m.h"\n'}, 1),
        ('edge the row does not name', {'mid/bad.c': '#include "p/other.h"\n'}, 1),
        ('one named file only', {'low/ok.c': '#include "p/low.h"\n', 'low/bad.c': '#include "p/other.h"\n'}, 1),
        ('relative include', {'low/bad.c': '#include "../mid/m.h"\n'}, 1),
        ('missing file', {'mid/bad.c': '#include "nowhere.h"\n'}, 1),
        ('folder outside the table', {'other/x.c': ''}, 1),
    ]
    import shutil
    failed = 0
    for name, extra, want in cases:
        d = tree(dict(base, **extra))
        got = check(d)
        shutil.rmtree(d)
        ok = got == want
        failed += not ok
        print(f'self-test {"ok  " if ok else "FAIL"} {name}: {got} violation(s), expected {want}')
    return failed


def main():
    if '--self-test' in sys.argv[1:]:
        return 1 if self_test() else 0
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    if not args:
        sys.exit(__doc__)
    root = os.path.abspath(args[0])
    build = os.path.abspath(args[1]) if len(args) > 1 else None
    return 1 if check(root, build, '--print' in sys.argv[1:]) else 0


if __name__ == '__main__':
    sys.exit(main())
