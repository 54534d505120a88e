#!/usr/bin/env bash
# The main job: install ccfarm, bring up a ccfarm-scheduler and three ccfarmd on
# 127.0.1.1-4, build Lua (downloaded as PyPI package lupa) through the scheduler,
# show where each job went and the time of each phase, stop the farm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/ccfarm-demo "$@"
