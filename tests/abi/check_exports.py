#!/usr/bin/env python3
"""The dynamic symbols libsaemon.so defines must be exactly the functions the
public headers declare (include/saemon/*.h plus the generated version.h).

The declarations come from the compiler itself (gcc -aux-info lists every
prototype a translation unit sees, with the header it came from), the
exports from `nm -D --defined-only`. Prints both differences; exit 1 if any.

libsaemon.so is checked against every public header but producer.h, and
libsaemon-producer.so against producer.h alone (--only producer.h): the
producer API is exported by that one library.

With --readme README.md, the count README's "Library ABI" section quotes for
this library ("exports exactly the N functions" / "exactly the N of") must be
the number exported.

usage: check_exports.py CC LIB_SO SOURCE_INCLUDE_DIR BUILD_INCLUDE_DIR [--except H.h | --only H.h]
                        [--readme README.md]
"""
import os
import re
import subprocess
import sys
import tempfile


def declared(cc, src_inc, build_inc, only=None, skip=()):
    headers = sorted(f for f in os.listdir(os.path.join(src_inc, 'saemon')) if f.endswith('.h'))
    headers.append('version.h')
    if only:
        headers = [only]
    headers = [h for h in headers if h not in skip]
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, 'all.c')
        aux = os.path.join(tmp, 'aux.txt')
        with open(c, 'w') as f:
            for h in headers:
                f.write('#include "saemon/%s"\n' % h)
        subprocess.run([cc, '-std=gnu11', '-fsyntax-only', '-aux-info', aux,
                        '-I', src_inc, '-I', build_inc, c], check=True)
        names = set()
        with open(aux) as f:
            for line in f:
                # /* /path/include/saemon/dict.h:90:NC */ extern saemon_status saemon_dict_open (...);
                m = re.match(r'/\* (\S+):\d+:\w+ \*/ (.*)', line)
                if not m or '/saemon/' not in m.group(1):
                    continue
                if os.path.dirname(m.group(1)) not in (os.path.join(src_inc, 'saemon'),
                                                       os.path.join(build_inc, 'saemon')):
                    continue
                if os.path.basename(m.group(1)) not in headers:
                    continue  # included by a selected header, checked with its own library
                fn = re.search(r'(\w+) \(', m.group(2))
                if fn:
                    names.add(fn.group(1))
    return names, headers


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TWiVDBRuG':
            names.add(parts[2].split('@')[0])
    return names


def main():
    cc, lib, src_inc, build_inc = sys.argv[1:5]
    opts = sys.argv[5:]
    only = opts[opts.index('--only') + 1] if '--only' in opts else None
    skip = [opts[i + 1] for i, o in enumerate(opts) if o == '--except']
    decl, headers = declared(cc, os.path.abspath(src_inc), os.path.abspath(build_inc), only, skip)
    exp = exported(lib)
    missing = sorted(decl - exp)
    extra = sorted(exp - decl)
    print('%d functions declared in %s, %d symbols exported by %s'
          % (len(decl), ', '.join(headers), len(exp), os.path.basename(lib)))
    for n in missing:
        print('declared but not exported (missing SAEMON_API or definition?): ' + n)
    for n in extra:
        print('exported but not declared in a public header: ' + n)
    bad_count = False
    if '--readme' in opts:
        with open(opts[opts.index('--readme') + 1], encoding='utf-8') as f:
            readme = ' '.join(f.read().split())
        pat = (r'`libsaemon-producer\.so` exactly the (\d+)' if only
               else r'`libsaemon\.so` exports exactly the (\d+) functions')
        m = re.search(pat, readme)
        quoted = int(m.group(1)) if m else None
        if quoted != len(exp):
            bad_count = True
            print('README "Library ABI" quotes %s exported functions for %s, the library exports %d'
                  % (quoted, os.path.basename(lib), len(exp)))
    return 1 if missing or extra or bad_count else 0


if __name__ == '__main__':
    sys.exit(main())
