#!/usr/bin/env bash
# Renders an HTML report (from `swiftquant compare --report X.html`) in headless Chromium
# and saves a PNG, to check the page's layout by eye.
#   usage: scripts/screenshot-report.sh REPORT.html OUT.png [WIDTH HEIGHT]
# Needs Chromium (Debian: apt-get install -y chromium).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH HEIGHT]" >&2
    exit 2
fi
report=$1 out=$2 width=${3:-1200} height=${4:-2400}
[ -f "$report" ] || { echo "$report: no such file" >&2; exit 1; }
browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
[ -n "$browser" ] || { echo "no Chromium found: apt-get install -y chromium" >&2; exit 1; }
abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
case $out in /*) ;; *) out=$PWD/$out ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# A private profile and no network: the page must render from its own bytes alone.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$profile" --proxy-server="127.0.0.1:9" --proxy-bypass-list="<-loopback>" \
    --window-size="$width,$height" --screenshot="$out" "file://$abs" >/dev/null 2>&1
[ -s "$out" ] || { echo "$browser did not write $out" >&2; exit 1; }
echo "$out"
