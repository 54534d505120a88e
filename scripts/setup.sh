#!/usr/bin/env bash
# Install ccfarm into ./.venv (system packages first, as root or with sudo).
#   scripts/setup.sh          runtime: gcc, make, bubblewrap (ccfarmd's job sandbox), ccfarm
#                             (its LZO codec comes as a wheel)
#   scripts/setup.sh --test   also the test tools and Debian's distcc (interop tests)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

packages=(gcc g++ make python3-venv bubblewrap)
[ "$want_test" = 1 ] && packages+=(distcc distcc-pump cmake openssl)  # (openssl: the TLS tests' certificates)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
if [ "$want_test" = 1 ]; then
    .venv/bin/python -m pip install --quiet -e '.[test]'
else
    .venv/bin/python -m pip install --quiet -e .
fi
# Byte-compile now: the wrapper starts once per compile job, and some
# environments (PYTHONDONTWRITEBYTECODE) would otherwise recompile every time.
.venv/bin/python -m compileall -q src >/dev/null
# The `ccfarm` command as a small native program: it hands each job to the
# fork server without starting a Python interpreter (falls back to Python).
.venv/bin/python -m ccfarm.client.forkserver.launcher install >/dev/null \
    || echo "note: ccfarm's native launcher was not built; ccfarm works, starts slower"
