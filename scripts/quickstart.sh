#!/usr/bin/env bash
# The README's first command: install everything, then run the main job end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python scripts/eight_schools.py --out out/eight_schools
