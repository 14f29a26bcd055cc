import ArgumentParser
import Foundation
import Models
import Quantization
import Tensors

/// Which W8A8 layer `swiftquant bench --w8a8` puts in every block linear.
enum W8A8BenchMode: String, ExpressibleByArgument, CaseIterable {
    /// `W8A8Linear`, per-token dynamic activation scales.
    case dynamic
    /// `W8A8Linear`, one static scale per layer (calibrated on the benchmark's own prompt).
    case `static`
    /// `OutlierDecomposedLinear`, columns with calibration |x| > 6 in f32.
    case outliers
}

extension Bench {
    /// The models to measure for one file: one per loader mode, or with `--w8a8` three that
    /// share everything but the block linears: f32, weight-only Q8_0 (`QuantizedLinear`)
    /// and W8A8, all quantized from the same f32 weights.
    func variants(_ path: String, modes: [WeightMode]) throws -> [(label: String, loaded: LoadedModel)] {
        guard let w8a8 else { return try modes.map { ($0.rawValue, try LoadedModel(path: path, weights: $0)) } }
        let f32 = try LoadedModel(path: path, weights: .f32)
        func copy(_ m: LlamaModel) -> LlamaModel {
            LlamaModel(hp: m.hp, embedding: m.embedding, blocks: m.blocks, outputNorm: m.outputNorm, head: m.head)
        }
        var q8 = f32, w8 = f32
        q8.model = copy(f32.model)
        try q8.model.mapBlockLinears { _, layer in try Self.q8_0(layer) }
        w8.model = copy(f32.model)
        let scheme: W8A8Scheme
        switch w8a8 {
        case .dynamic: scheme = .dynamicPerToken
        case .static, .outliers:
            // Speed does not depend on the calibration text; the benchmark's random prompt will do.
            var rng = SplitMix64(seed: 2)
            let prompt = (0..<min(promptTokens, 512)).map { _ in Int32(rng.next() % UInt64(f32.model.hp.vocabSize)) }
            let statistics = f32.model.inputStatistics(over: [prompt])
            scheme = w8a8 == .static ? .staticPerTensor(statistics) : .outlierDecomposed(statistics, threshold: 6)
        }
        try w8.model.quantizeW8A8(scheme)
        return [("f32", f32), ("q8_0", q8), ("w8a8-\(w8a8.rawValue)", w8)]
    }

    /// A block linear as weight-only Q8_0, quantized from its f32 weights.
    static func q8_0(_ layer: any Linear) throws -> any Linear {
        guard let dense = layer as? DenseLinear else { return layer }
        let w = dense.weight.array
        return try QuantizedLinear(type: .q8_0, outFeatures: dense.outFeatures, inFeatures: dense.inFeatures,
                                   bytes: try Codecs.quantize(.q8_0, w, rowLength: dense.inFeatures), bias: dense.bias)
    }

    /// Median seconds of `repetitions` passes of `rows` random input rows through every block
    /// linear layer of `model` (the linear part of a prefill, without attention or norms).
    static func linearPassSeconds(_ model: LlamaModel, rows: Int, repetitions: Int) -> Double {
        let layers = model.blocks.flatMap { [$0.query, $0.key, $0.value, $0.output, $0.gate, $0.up, $0.down] }
        let width = layers.map { max($0.inFeatures, $0.outFeatures) }.max() ?? 0
        var rng = SplitMix64(seed: 3)
        let x = (0..<rows * width).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        var y = [Float](repeating: 0, count: rows * width)
        var times: [Double] = []
        for _ in 0..<repetitions {
            let t = Date()
            for layer in layers { layer.forward(x, rows: rows, into: &y) }
            times.append(Date().timeIntervalSince(t))
        }
        return times.sorted()[times.count / 2]
    }

    /// Lines comparing each variant with the first one of the same model (f32): prompt
    /// processing, generation and the linear-layer pass as speed ratios.
    static func ratioLines(_ rows: [Row]) -> [String] {
        var lines: [String] = []
        for model in Set(rows.map(\.model)).sorted() {
            let group = rows.filter { $0.model == model }
            guard let base = group.first else { continue }
            for r in group.dropFirst() {
                var line = String(format: "%@ vs %@: pp%d ×%.2f, tg%d ×%.2f", r.weights, base.weights,
                                  r.result.promptTokens, r.result.pp.median / base.result.pp.median,
                                  r.result.generatedTokens, r.result.tg.median / base.result.tg.median)
                if let a = base.linearPassSeconds, let b = r.linearPassSeconds {
                    line += String(format: ", linear layers at %d rows ×%.2f (%.1f vs %.1f ms)", r.result.promptTokens,
                                   a / b, 1000 * b, 1000 * a)
                }
                lines.append(line)
            }
        }
        return lines
    }
}
