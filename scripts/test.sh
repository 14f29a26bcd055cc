#!/usr/bin/env bash
# The test command: fetches the real checkpoints and the Python references the tests
# compare against, generates the reference fixtures, then runs the Swift tests in release
# mode (the numerics are too slow in a debug build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/fetch-models.sh
python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
for gen in scripts/fixtures/*.py; do
  [ -e "$gen" ] || continue
  python3 "$gen"
done
swift test -c release -Xswiftc -enable-testing "$@"
