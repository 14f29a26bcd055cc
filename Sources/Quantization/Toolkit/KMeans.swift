import Tensors

/// A matrix quantized to a learned codebook per group: `2^bits` levels fitted by Lloyd's
/// k-means to the group's weights, each weight replaced by its nearest level.
public struct KMeansQuantized: Sendable {
    /// Output channels.
    public let rows: Int
    /// Input columns.
    public let columns: Int
    /// Bits per code; each group has `2^bits` levels.
    public let bits: Int
    /// Which weights share a codebook (`.channel` usually).
    public let granularity: QuantScheme.Granularity
    /// One code per weight, row-major; code `c` of a group selects its level `c` (levels
    /// are ascending within each group).
    public var codes: [UInt8]
    /// `2^bits` levels per group (one group for `.tensor`), group after group, as stored.
    public var levels: StoredFloats

    /// The weights the codes stand for.
    public func dequantized() -> [Float] {
        let lv = levels.values(), k = 1 << bits, columns = self.columns
        let perRow = granularity.groupsPerRow(columns: columns), length = granularity.groupLength(columns: columns)
        let isTensor = granularity == .tensor
        var out = [Float](repeating: 0, count: rows * columns)
        codes.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                parallelFor(rows) { r in
                    for c in 0..<columns {
                        let i = r * columns + c, g = isTensor ? 0 : r * perRow + c / length
                        o[i] = lv[g * k + Int(q[i])]
                    }
                }
            }
        }
        return out
    }
}

/// Options for `quantizeKMeans`.
public struct KMeansOptions: Sendable {
    /// The most Lloyd iterations per group (it stops earlier once no assignment changes);
    /// a step costs O(2^bits · log n) after one sort, so many are affordable.
    public var maxIterations: Int
    /// The most weights a codebook is fitted on; larger groups are fitted on an evenly
    /// strided sample of this many (every weight is still assigned its nearest level).
    public var sampleLimit: Int
    /// One non-negative importance per input column (e.g. mean squared activation), which
    /// weights each weight's squared error in the fit; nil weighs all equally.
    public var importance: [Float]?

    /// Defaults: 100 iterations, samples of 16384, no importance.
    public init(maxIterations: Int = 100, sampleLimit: Int = 16384, importance: [Float]? = nil) {
        self.maxIterations = maxIterations
        self.sampleLimit = sampleLimit
        self.importance = importance
    }
}

/// Fits `2^bits` levels to every group of a row-major matrix and assigns each weight the
/// nearest one.
///
/// Initialisation is deterministic: the levels start at the (importance-weighted) quantiles
/// `(j + ½) / 2^bits` of the group. Each Lloyd step assigns every sample to its nearest level
/// and moves each level to the weighted mean of its samples; a level with no samples stays. Levels are stored as
/// `scaleType`, rounded to nearest, before the final assignment, so codes match what is
/// stored. Groups run in parallel over rows.
/// - Precondition: `weights.count == rows * columns`, all finite; `bits` in 1…8;
///   `importance`, if given, has `columns` finite non-negative values.
public func quantizeKMeans(
    _ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, bits: Int,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32,
    options: KMeansOptions = KMeansOptions()
) -> KMeansQuantized {
    precondition(weights.count == rows * columns, "quantizeKMeans: weights must hold rows × columns values")
    precondition((1...8).contains(bits), "quantizeKMeans: bits must be 1...8")
    precondition(options.importance == nil || options.importance!.count == columns,
                 "quantizeKMeans: importance needs one value per column")
    let k = 1 << bits
    let perRow = granularity.groupsPerRow(columns: columns), length = granularity.groupLength(columns: columns)
    let isTensor = granularity == .tensor
    let groupCount = isTensor ? (rows * columns > 0 ? 1 : 0) : rows * perRow
    var levels = [Float](repeating: 0, count: groupCount * k)
    var codes = [UInt8](repeating: 0, count: rows * columns)
    let importance = options.importance

    /// Fits and assigns the flat index ranges `spans` (one group, maybe several rows).
    func fit(_ spans: [Range<Int>], _ out: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<UInt8>) {
        let total = spans.reduce(0) { $0 + $1.count }
        guard total > 0 else { return }
        let stride = max(1, (total + options.sampleLimit - 1) / options.sampleLimit)
        var xs: [Float] = [], ws: [Float] = []
        xs.reserveCapacity(total / stride + 1)
        var j = 0
        for span in spans {
            for i in span {
                if j % stride == 0 {
                    xs.append(weights[i])
                    if let importance { ws.append(importance[i % columns]) }
                }
                j += 1
            }
        }
        var centers = lloyd(xs, ws, k: k, maxIterations: options.maxIterations)
        // Round to storage, then assign every weight of the group to the stored levels.
        centers = StoredFloats(centers, as: scaleType, roundUp: false).values().sorted()
        for c in 0..<k { out[c] = centers[c] }
        let mids = (0..<(k - 1)).map { (centers[$0] + centers[$0 + 1]) / 2 }
        for span in spans { for i in span { q[i] = UInt8(nearest(weights[i], mids)) } }
    }

    levels.withUnsafeMutableBufferPointer { lv in
        codes.withUnsafeMutableBufferPointer { q in
            let lv = lv.baseAddress!, q = q.baseAddress!
            if isTensor {
                if groupCount == 1 { fit([0..<(rows * columns)], lv, q) }
                return
            }
            parallelFor(rows) { r in
                for g in 0..<perRow {
                    let lo = r * columns + g * length, hi = r * columns + min((g + 1) * length, columns)
                    fit([lo..<hi], lv + (r * perRow + g) * k, q)
                }
            }
        }
    }
    return KMeansQuantized(rows: rows, columns: columns, bits: bits, granularity: granularity, codes: codes,
                           levels: StoredFloats(levels, as: scaleType, roundUp: false))
}

/// Array form of `quantizeKMeans` (the buffer form documents the details).
public func quantizeKMeans(
    _ weights: [Float], rows: Int, columns: Int, bits: Int,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32,
    options: KMeansOptions = KMeansOptions()
) -> KMeansQuantized {
    weights.withUnsafeBufferPointer {
        quantizeKMeans($0, rows: rows, columns: columns, bits: bits, granularity: granularity, scaleType: scaleType,
                       options: options)
    }
}

/// The index of the interval of sorted boundaries `mids` that `x` falls in (0…mids.count):
/// the nearest of the levels the midpoints separate.
@inline(__always)
func nearest(_ x: Float, _ mids: [Float]) -> Int {
    var lo = 0, hi = mids.count
    while lo < hi {
        let m = (lo + hi) / 2
        if x > mids[m] { lo = m + 1 } else { hi = m }
    }
    return lo
}

/// Weighted 1-D k-means: `k` ascending centers for the samples `xs` with weights `ws`
/// (empty, all equal or none positive: every sample counts the same).
///
/// In one dimension each cluster is a run of the sorted samples, so after one sort every
/// Lloyd step costs O(k log n): the boundaries are binary searches for the midpoints, and
/// the means come from prefix sums of weight and weight × value.
func lloyd(_ xs: [Float], _ ws: [Float], k: Int, maxIterations: Int) -> [Float] {
    // Equal weights (or none positive) sort the values alone, the common and fast case.
    let equal = !ws.contains { $0 > 0 } || !ws.contains { $0 != ws[0] }
    let x: [Float], w: [Double]
    if equal {
        x = xs.sorted()
        w = [Double](repeating: 1, count: x.count)
    } else {
        let order = xs.indices.sorted { xs[$0] < xs[$1] }
        x = order.map { xs[$0] }
        w = order.map { Double(ws[$0]) }
    }
    var prefixW = [Double](repeating: 0, count: x.count + 1), prefixWX = prefixW
    for i in x.indices {
        prefixW[i + 1] = prefixW[i] + w[i]
        prefixWX[i + 1] = prefixWX[i] + w[i] * Double(x[i])
    }
    let total = prefixW[x.count]
    // Initialise at the weighted quantiles (j + ½) / k.
    var centers = [Float](repeating: x.last ?? 0, count: k)
    var j = 0
    for i in x.indices where j < k {
        while j < k, prefixW[i + 1] >= (Double(j) + 0.5) / Double(k) * total {
            centers[j] = x[i]
            j += 1
        }
    }
    var bounds = [Int](repeating: -1, count: k + 1)
    for _ in 0..<maxIterations {
        // Cluster c holds sorted samples bounds[c] ..< bounds[c + 1]; a sample equal to a
        // midpoint goes to the lower level, as `nearest` assigns it.
        var next = [Int](repeating: 0, count: k + 1)
        next[k] = x.count
        for c in 1..<k {
            let mid = (centers[c - 1] + centers[c]) / 2
            var lo = next[c - 1], hi = x.count
            while lo < hi {
                let m = (lo + hi) / 2
                if x[m] > mid { hi = m } else { lo = m + 1 }
            }
            next[c] = lo
        }
        if next == bounds { break }
        bounds = next
        for c in 0..<k {
            let weight = prefixW[bounds[c + 1]] - prefixW[bounds[c]]
            if weight > 0 { centers[c] = Float((prefixWX[bounds[c + 1]] - prefixWX[bounds[c]]) / weight) }
        }
        centers.sort()
    }
    return centers
}
