/// Everything that can go wrong reading or writing safetensors files and folders.
///
/// Each case names the file it concerns; `description` is one line,
/// `"<path>: <what is wrong>"`, with tensor names quoted and escaped so that a hostile
/// name cannot break the line.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file or folder could not be opened, read or mapped.
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than the 8-byte header length field.
    case tooShort(path: String, size: Int)
    /// The header length field exceeds the cap on header sizes.
    case headerTooLarge(path: String, length: UInt64, limit: Int)
    /// The header length field points past the end of the file.
    case headerPastEnd(path: String, length: UInt64, fileSize: Int)
    /// The header is not valid JSON (`offset` counts from the start of the file).
    case invalidJSON(path: String, offset: Int, reason: String)
    /// A string in the header is not valid UTF-8 (`offset` counts from the start of the file).
    case invalidUTF8(path: String, offset: Int)
    /// The header is valid JSON but not a valid safetensors header.
    case invalidHeader(path: String, reason: String)
    /// A tensor's dtype is not one of the safetensors element types.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A tensor's shape has a negative dimension, too many dimensions, or too many elements.
    case invalidShape(path: String, tensor: String, reason: String)
    /// A tensor's `data_offsets` are malformed (not two integers, or end before begin).
    case invalidOffsets(path: String, tensor: String, reason: String)
    /// A tensor's byte range does not match its shape × element size.
    case sizeMismatch(path: String, tensor: String, expected: Int, actual: Int)
    /// A tensor's byte range ends past the end of the data section.
    case offsetsPastEnd(path: String, tensor: String, end: Int, dataSize: Int)
    /// Two tensors' byte ranges overlap.
    case overlap(path: String, tensor: String, other: String)
    /// Part of the data section belongs to no tensor (the format requires full coverage).
    case uncoveredData(path: String, range: Range<Int>, dataSize: Int)
    /// Two tensors (or two `__metadata__` entries) have the same name.
    case duplicateName(path: String, tensor: String)
    /// A tensor that was asked for is not there.
    case tensorNotFound(path: String, tensor: String)
    /// A shard index is malformed.
    case invalidIndex(path: String, reason: String)
    /// A shard named by an index does not exist.
    case missingShard(index: String, shard: String)
    /// An index maps a tensor to a shard that does not hold it.
    case tensorNotInShard(index: String, tensor: String, shard: String)
    /// A folder holds neither an index nor any `.safetensors` file.
    case noSafeTensors(path: String)
    /// A tensor handed to the writer is inconsistent or cannot be stored.
    case invalidTensor(path: String, tensor: String, reason: String)
    /// Writing the output failed (the destination is left untouched).
    case writeFailed(path: String, reason: String)

    /// One line: the file, then what is wrong with it.
    public var description: String {
        func q(_ s: String) -> String { JSONText.quoted(s) }
        switch self {
        case let .cannotOpen(path, reason):
            return "\(path): cannot open: \(reason)"
        case let .tooShort(path, size):
            return "\(path): not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerTooLarge(path, length, limit):
            return "\(path): header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerPastEnd(path, length, fileSize):
            return "\(path): header length \(length) runs past the end of the \(fileSize)-byte file (truncated?)"
        case let .invalidJSON(path, offset, reason):
            return "\(path): invalid JSON in header at byte \(offset): \(reason)"
        case let .invalidUTF8(path, offset):
            return "\(path): invalid UTF-8 in header at byte \(offset)"
        case let .invalidHeader(path, reason):
            return "\(path): invalid header: \(reason)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor \(q(tensor)) has unknown dtype \(q(dtype))"
        case let .invalidShape(path, tensor, reason):
            return "\(path): tensor \(q(tensor)) has an invalid shape: \(reason)"
        case let .invalidOffsets(path, tensor, reason):
            return "\(path): tensor \(q(tensor)) has invalid data_offsets: \(reason)"
        case let .sizeMismatch(path, tensor, expected, actual):
            return "\(path): tensor \(q(tensor)) spans \(actual) bytes but its shape and dtype need \(expected)"
        case let .offsetsPastEnd(path, tensor, end, dataSize):
            return "\(path): tensor \(q(tensor)) ends at data byte \(end), past the \(dataSize)-byte data section (truncated?)"
        case let .overlap(path, tensor, other):
            return "\(path): tensors \(q(other)) and \(q(tensor)) overlap"
        case let .uncoveredData(path, range, dataSize):
            return "\(path): data bytes \(range.lowerBound)..<\(range.upperBound) of \(dataSize) belong to no tensor"
        case let .duplicateName(path, tensor):
            return "\(path): name \(q(tensor)) appears more than once"
        case let .tensorNotFound(path, tensor):
            return "\(path): no tensor named \(q(tensor))"
        case let .invalidIndex(path, reason):
            return "\(path): invalid shard index: \(reason)"
        case let .missingShard(index, shard):
            return "\(index): shard \(q(shard)) does not exist"
        case let .tensorNotInShard(index, tensor, shard):
            return "\(index): tensor \(q(tensor)) is mapped to shard \(q(shard)), which does not contain it"
        case let .noSafeTensors(path):
            return "\(path): no model.safetensors.index.json and no .safetensors files"
        case let .invalidTensor(path, tensor, reason):
            return "\(path): cannot write tensor \(q(tensor)): \(reason)"
        case let .writeFailed(path, reason):
            return "\(path): write failed: \(reason)"
        }
    }
}
