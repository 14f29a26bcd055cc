import Foundation

/// Bytes parked on disk until an output file is assembled: an unnamed temporary file
/// (created in the output's folder and unlinked at once, so nothing is left behind
/// whatever happens) that finished tensors are appended to and read back from when the
/// output is written. A calibrated quantizer that finishes layers one at a time keeps its
/// memory flat in the model's depth by spilling each layer's bytes here instead of holding
/// them until the end.
///
/// ```swift
/// let spill = try SpillFile(folder: "out")
/// let slice = try spill.append(bytes)
/// let back = try slice.load()
/// ```
public final class SpillFile: @unchecked Sendable {
    /// The folder the temporary file was created in (named in errors).
    public let folder: String
    private var fd: Int32
    private var end = 0
    private let lock = NSLock()

    /// A run of bytes appended to a spill file.
    public struct Slice: Sendable {
        /// The file holding the bytes.
        public let file: SpillFile
        /// Where they start.
        public let offset: Int
        /// How many there are.
        public let count: Int

        /// Reads the bytes back.
        /// - Throws: `SafeTensorsError.writeFailed` when the file cannot be read.
        public func load() throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            try out.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            return out
        }

        /// Calls `body` with consecutive pieces of the bytes (at most `chunk` at a time),
        /// so copying a large slice elsewhere needs only a bounded buffer.
        /// - Throws: `SafeTensorsError.writeFailed`, or what `body` throws.
        public func forEachChunk(_ chunk: Int = 8 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
            var buffer = [UInt8](repeating: 0, count: min(max(chunk, 1), count))
            var done = 0
            while done < count {
                let n = min(buffer.count, count - done)
                try buffer.withUnsafeMutableBytes { raw in
                    let piece = UnsafeMutableRawBufferPointer(rebasing: raw[0..<n])
                    try file.read(into: piece, at: offset + done)
                    try body(UnsafeRawBufferPointer(piece))
                }
                done += n
            }
        }
    }

    /// Creates the temporary file in `folder` (which must exist).
    /// - Throws: `SafeTensorsError.writeFailed` when no file can be created there.
    public init(folder: String) throws {
        self.folder = folder
        var fd: Int32 = -1
        for _ in 0..<16 {
            let path = folder + "/.swiftquant-spill.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { unlink(path); break }
            if errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw SafeTensorsError.writeFailed(path: folder, reason: "cannot create a temporary file: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Bytes appended so far.
    public var size: Int { lock.withLock { end } }

    /// Appends `bytes` and returns where they are. Safe to call from several threads.
    /// - Throws: `SafeTensorsError.writeFailed` (disk full, I/O error).
    public func append(_ bytes: [UInt8]) throws -> Slice {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Appends the bytes in `raw` and returns where they are.
    /// - Throws: `SafeTensorsError.writeFailed`.
    public func append(_ raw: UnsafeRawBufferPointer) throws -> Slice {
        let offset = lock.withLock { () -> Int in
            let o = end
            end += raw.count
            return o
        }
        var done = 0
        while done < raw.count {
            let n = pwrite(fd, raw.baseAddress! + done, min(raw.count - done, 1 << 30), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.writeFailed(path: folder, reason: "temporary file: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        return Slice(file: self, offset: offset, count: raw.count)
    }

    fileprivate func read(into raw: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < raw.count {
            let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = n == 0 ? "ended early" : String(cString: strerror(errno))
                throw SafeTensorsError.writeFailed(path: folder, reason: "temporary file: \(why)")
            }
            done += n
        }
    }
}
