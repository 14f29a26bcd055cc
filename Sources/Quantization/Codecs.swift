import Tensors

/// Why a codec call was refused.
///
/// Thrown before anything is written to the destination, so a failed call leaves it untouched.
public enum CodecError: Error, Equatable, CustomStringConvertible {
    /// No codec for this type is implemented (yet).
    case unsupportedType(DType)
    /// The weight count is negative, not a whole number of blocks, or so large that its byte
    /// size overflows `Int`.
    case invalidCount(DType, count: Int)
    /// The source holds a different number of bytes than `count` weights of the type need.
    case byteCountMismatch(DType, count: Int, expected: Int, actual: Int)

    /// A one-line message naming the type and what is wrong.
    public var description: String {
        switch self {
        case .unsupportedType(let t):
            return "no dequantizer for \(t.rawValue)"
        case .invalidCount(let t, let count) where count >= 0 && count % t.blockSize == 0:
            return "\(t.rawValue): \(count) weights is too many to address"
        case .invalidCount(let t, let count):
            return "\(t.rawValue): \(count) weights is not a whole number of \(t.blockSize)-weight blocks"
        case .byteCountMismatch(let t, let count, let expected, let actual):
            return "\(t.rawValue): \(count) weights need \(expected) bytes, got \(actual)"
        }
    }
}

/// Conversion between GGML storage types and `Float`.
///
/// Each block family lives in its own file under `Codecs/`, with its byte layout documented
/// next to the code (as ggml does beside its block structs). Blocks are read byte-wise and
/// little-endian, so the source may have any alignment (e.g. a memory-mapped GGUF tensor).
/// Results equal the `gguf` Python package's `gguf.quants.dequantize` bit for bit.
public enum Codecs {
    /// Types `dequantize` can decode.
    public static let dequantizableTypes: [DType] = [
        .f32, .f16, .bf16,
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
        .iq4_nl, .iq4_xs, .tq1_0, .tq2_0, .mxfp4,
    ]

    /// True when `dequantize` supports `type`.
    public static func canDequantize(_ type: DType) -> Bool {
        dequantizer(for: type) != nil
    }

    /// Decodes `count` weights of `type` from `src` into `dst` (which must have room for
    /// `count` floats), on the calling thread.
    ///
    /// - Parameters:
    ///   - type: the storage type of `src`.
    ///   - src: exactly `type.byteCount(elements: count)` bytes, any alignment.
    ///   - count: the number of weights; a multiple of `type.blockSize`.
    ///   - dst: where the `count` floats go.
    /// - Throws: `CodecError` if the type is unsupported, `count` is not a whole number of
    ///   blocks, or `src` has the wrong size.
    public static func dequantize(
        _ type: DType, from src: UnsafeRawBufferPointer, count: Int,
        into dst: UnsafeMutablePointer<Float>
    ) throws {
        let (decode, blocks) = try validate(type, src: src, count: count)
        guard blocks > 0, let base = src.baseAddress else { return }
        decode(base, blocks, dst)
    }

    /// Decodes `count` weights of `type` from `bytes` into a new array, split over
    /// `Threads.count` threads when the tensor is large.
    ///
    /// - Throws: `CodecError`, as `dequantize(_:from:count:into:)`.
    public static func dequantize(_ type: DType, bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
        let (decode, blocks) = try validate(type, src: bytes, count: count)
        guard blocks > 0, let base = bytes.baseAddress else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            let dst = out.baseAddress!
            let threads = count > parallelThreshold ? min(Threads.count, blocks) : 1
            if threads <= 1 {
                decode(base, blocks, dst)
            } else {
                let bytesPerBlock = type.bytesPerBlock, blockSize = type.blockSize
                parallelFor(threads, threads: threads) { k in
                    let lo = blocks * k / threads, hi = blocks * (k + 1) / threads
                    decode(base + lo * bytesPerBlock, hi - lo, dst + lo * blockSize)
                }
            }
            initialized = count
        }
    }

    /// Weights above which the array-returning `dequantize` uses several threads.
    static let parallelThreshold = 1 << 16

    /// Decodes `blocks` consecutive blocks starting at the pointer into the floats.
    typealias BlockDecoder = (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void

    static func dequantizer(for type: DType) -> BlockDecoder? {
        switch type {
        case .f32: return F32.dequantize
        case .f16: return F16.dequantize
        case .bf16: return BF16.dequantize
        case .q4_0: return Q4_0.dequantize
        case .q4_1: return Q4_1.dequantize
        case .q5_0: return Q5_0.dequantize
        case .q5_1: return Q5_1.dequantize
        case .q8_0: return Q8_0.dequantize
        case .q8_1: return Q8_1.dequantize
        case .q2_K: return Q2_K.dequantize
        case .q3_K: return Q3_K.dequantize
        case .q4_K: return Q4_K.dequantize
        case .q5_K: return Q5_K.dequantize
        case .q6_K: return Q6_K.dequantize
        case .q8_K: return Q8_K.dequantize
        case .iq4_nl: return IQ4_NL.dequantize
        case .iq4_xs: return IQ4_XS.dequantize
        case .tq1_0: return TQ1_0.dequantize
        case .tq2_0: return TQ2_0.dequantize
        case .mxfp4: return MXFP4.dequantize
        default: return nil
        }
    }

    /// Checks the arguments; returns the decoder and the number of blocks.
    private static func validate(
        _ type: DType, src: UnsafeRawBufferPointer, count: Int
    ) throws -> (BlockDecoder, Int) {
        guard let decode = dequantizer(for: type) else { throw CodecError.unsupportedType(type) }
        guard let expected = type.byteCount(elements: count) else {
            throw CodecError.invalidCount(type, count: count)
        }
        guard src.count == expected else {
            throw CodecError.byteCountMismatch(type, count: count, expected: expected, actual: src.count)
        }
        return (decode, count / type.blockSize)
    }
}

// Little-endian field reads at any alignment. GGUF is little-endian; so is every host we
// build for, where these compile to plain loads.
extension UnsafeRawPointer {
    @inline(__always) func u8(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }
    @inline(__always) func i8(_ offset: Int) -> Int8 {
        load(fromByteOffset: offset, as: Int8.self)
    }
    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    /// An IEEE binary16 field, widened exactly.
    @inline(__always) func f16(_ offset: Int) -> Float {
        Half.f16ToFloat(u16(offset))
    }
    /// An IEEE binary32 field.
    @inline(__always) func f32(_ offset: Int) -> Float {
        Float(bitPattern: u32(offset))
    }
}
