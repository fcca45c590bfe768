#!/usr/bin/env bash
# Installs every Debian 12 package saemon needs to build, test and fuzz.
# Idempotent: does nothing when everything is already installed.
#   scripts/install-deps.sh          build + test packages
#   scripts/install-deps.sh --bench  also the benchmark peers (numpy, PyTorch CPU)
set -euo pipefail

packages=(
  meson ninja-build pkg-config gcc python3
  libsleef-dev libyaml-dev libcriterion-dev libhwloc-dev hwloc-nox libcjson-dev libssl-dev libzip-dev
  python3-numpy                                   # independent golden reference (tests/golden)
  python3-torch                                   # the live-model end-to-end test (tests/sidecar)
  python3-sklearn                                 # dense probes: fit a logistic regression, golden test (tests/authoring)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   # NEON kernels, run under qemu
  clang libclang-rt-14-dev                        # libFuzzer harnesses
  libcurl4-openssl-dev                            # webhook / Alertmanager sinks
  libmicrohttpd-dev libsystemd-dev                # saemon serve: /metrics, sd_notify
  zlib1g-dev                                      # CRC-32 of ring frames from Python producers
  prometheus-alertmanager                         # end-to-end sink test against the real Alertmanager
  libgnutls28-dev libcrypt-dev                    # serve --web-config: client certificates, bcrypt
  openssl curl                                    # credentials test: certificates, scraping /metrics
  prometheus                                      # deploy/: promtool check/test rules, live query check (tests start
                                                  # their own on a free port; Debian enables its service on :9090)
  python3-yaml                                    # deploy/kubernetes: manifest invariant check
  strace                                          # sidecar-syscall-free: producers make no system call
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(libopenblas0-pthread gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
