#!/usr/bin/env bash
# Install the library into a temporary prefix, compile the README's example
# program against the installed pkg-config file, and run it on a real SAE (or
# only compile it when ../shared is absent).
#   test-install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pcdir=$(dirname "$(find "$tmp/root" -name saemon.pc | head -1)")
[[ -f $pcdir/saemon.pc ]] || { echo "saemon.pc was not installed"; exit 1; }
sed -n '/<!-- example:begin -->/,/<!-- example:end -->/p' "$src/README.md" | sed '1,2d;$d' | sed '$d' > "$tmp/example.c"
grep -q "saemon_encoder_encode" "$tmp/example.c" || { echo "README example not found"; exit 1; }
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$tmp/root
libdir=$(dirname "$(find "$tmp/root" -name 'libsaemon.so' | head -1)")
cc -std=c11 -Wall -Wextra -Werror ${EXAMPLE_CFLAGS:-} "$tmp/example.c" -o "$tmp/example" $(pkg-config --cflags --libs saemon)
echo "compiled the README example with: cc example.c \$(pkg-config --cflags --libs saemon)"
shared=${SAEMON_SHARED_DIR:-$src/../shared}
sae=$shared/data/sae/pasttense-mlp/saelens
if [[ -d $sae ]]; then
  out=$(LD_LIBRARY_PATH=$libdir "$tmp/example" "$sae" "$shared/data/sae/pasttense-mlp/acts.npy")
  lines=$(grep -c '^token ' <<<"$out")
  [[ $lines -eq 2000 ]] || { echo "expected 2000 tokens, got $lines"; exit 1; }
  echo "ran it on pasttense-mlp: $lines tokens"
else
  echo "../shared absent: example compiled but not run"
fi
# The systemd unit starts the binary meson installed, and its user and docs come along.
unit=$(find "$tmp/root" -path '*/systemd/system/saemon.service' | head -1)
[[ -f $unit ]] || { echo "saemon.service was not installed"; exit 1; }
exe=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
[[ -x $tmp/root$exe ]] || { echo "the unit starts $exe, which meson did not install"; exit 1; }
[[ -f $(find "$tmp/root" -path '*/sysusers.d/saemon.conf' | head -1) ]] || { echo "sysusers.d/saemon.conf missing"; exit 1; }
doc=$(sed -n 's|^Documentation=file://||p' "$unit")
[[ -f $tmp/root$doc ]] || { echo "the unit names $doc, which was not installed"; exit 1; }
if command -v systemd-analyze >/dev/null; then
  # the unit as installed, with the binary where this destdir install put it
  sed "s|^ExecStart=$exe|ExecStart=$tmp/root$exe|" "$unit" > "$tmp/saemon.service"
  if ! systemd-analyze verify "$tmp/saemon.service" >"$tmp/verify.log" 2>&1; then
    cat "$tmp/verify.log"; echo "systemd-analyze verify failed"; exit 1
  fi
  echo "systemd-analyze verify: ok"
fi
echo "systemd unit, sysusers.d entry and docs installed; ExecStart=$exe exists"
# libsaemon-producer: a C producer compiles against its own pkg-config file and
# links nothing but libc (docs/ring.md).
[[ -f $pcdir/saemon-producer.pc ]] || { echo "saemon-producer.pc was not installed"; exit 1; }
cat > "$tmp/producer.c" <<'C'
#include <saemon/producer.h>
#include <stdio.h>
int main(void)
{
    saemon_producer_options o = {.ring = "install-test", .hook = "h", .d_in = 4, .handshake_timeout_ms = -1};
    saemon_producer *p = NULL;
    char msg[256];
    if (saemon_producer_attach(&o, &p, msg, sizeof msg) != SAEMON_PRODUCER_OK)
        return 1;
    float row[4] = {0};
    int rc = saemon_producer_publish(p, 1, 0, row, 1); /* no saemon: dropped, counted */
    saemon_producer_detach(p);
    return rc == SAEMON_PRODUCER_DROPPED ? 0 : 1;
}
C
cc -std=c11 -Wall -Wextra -Werror ${EXAMPLE_CFLAGS:-} "$tmp/producer.c" -o "$tmp/producer" $(pkg-config --cflags --libs saemon-producer)
plibdir=$(dirname "$(find "$tmp/root" -name 'libsaemon-producer.so' | head -1)")
needed=$(readelf -d "$plibdir/libsaemon-producer.so" | grep NEEDED | grep -v -E 'libc\.so|ld-linux|libasan|libubsan|libtsan|libstdc\+\+|libm\.so|libgcc' || true)
[[ -z $needed ]] || { echo "libsaemon-producer depends on more than libc: $needed"; exit 1; }
LD_LIBRARY_PATH=$plibdir "$tmp/producer"
echo "compiled and ran a producer with: cc producer.c \$(pkg-config --cflags --libs saemon-producer)"
