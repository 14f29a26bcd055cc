import Foundation
import Testing
import Evaluation

/// The anonymous-memory sampler sees a 256 MiB heap buffer that is touched and freed while
/// it runs: its peak exceeds the level before the buffer by most of the buffer's size.
@Test func anonymousMemorySamplerSeesATransientBuffer() throws {
    let before = try #require(ResidentMemory.anonymous())
    let sampler = AnonymousMemorySampler(interval: 0.005)
    let count = 256 << 20
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4096)
    for i in stride(from: 0, to: count, by: 4096) { buffer.storeBytes(of: UInt8(i & 0xff), toByteOffset: i, as: UInt8.self) }
    Thread.sleep(forTimeInterval: 0.1)
    buffer.deallocate()
    let peak = try #require(sampler.stop())
    #expect(peak >= before + 200 << 20, "peak \(peak >> 20) MiB, before \(before >> 20) MiB")
}
