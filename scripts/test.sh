#!/usr/bin/env bash
# Install everything the tests need (Debian's distcc included) and run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
