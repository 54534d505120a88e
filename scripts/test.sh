#!/usr/bin/env bash
# Install everything the tests need (Debian's distcc included) and run them all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
if [ "$#" -eq 0 ]; then  # the full run also checks style and types
    .venv/bin/ruff check src tests bench
    .venv/bin/mypy
fi
exec .venv/bin/python -m pytest "$@"
