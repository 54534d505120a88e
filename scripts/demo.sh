#!/usr/bin/env bash
# The main job: install ccfarm, bring up two ccfarmd on 127.0.1.1 and 127.0.1.2,
# build Lua (downloaded as PyPI package lupa) through them, stop the farm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/ccfarm-demo "$@"
