import Foundation
import Testing
import Tensors
@testable import Formats

/// The real SmolLM2-135M-Instruct Q4_1 GGUF: contents checked against values read with the
/// `gguf` Python package (0.19.0), and a byte-identical write-back.
@Suite struct GGUFRealFileTests {
    @Test func headerAndMetadata() throws {
        let file = try GGUFTestSupport.smolLM2()
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.dataOffset == 1_785_664)
        #expect(file.fileSize == 98_362_432)
        #expect(file.metadata.count == 33)
        #expect(file.metadata.prefix(5).map(\.key) == [
            "general.architecture", "general.type", "general.name", "general.organization", "general.finetune",
        ])
        #expect(file.architecture == "llama")
        #expect(file.string("general.name") == "Smollm2 135M 8k Lc100K Mix1 Ep2")
        #expect(file.int("llama.block_count") == 30)
        #expect(file.int("llama.embedding_length") == 576)
        #expect(file.int("llama.feed_forward_length") == 1536)
        #expect(file.int("llama.attention.head_count") == 9)
        #expect(file.int("llama.attention.head_count_kv") == 3)
        #expect(file.int("llama.context_length") == 8192)
        #expect(file.int("general.file_type") == 3)
        #expect(file["llama.block_count"] == .uint32(30))
        #expect(file.float("llama.rope.freq_base") == 100_000)
        #expect(file.float("llama.attention.layer_norm_rms_epsilon") == Float(bitPattern: 0x3727_C5AC))
        #expect(file.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(file.string("tokenizer.ggml.model") == "gpt2")
        #expect(file.string("tokenizer.ggml.pre") == "smollm")
        #expect(file.string("tokenizer.chat_template")?.utf8.count == 368)

        let tokens = try #require(file.stringArray("tokenizer.ggml.tokens"))
        #expect(tokens.count == 49152)
        #expect(tokens.first == "<|endoftext|>")
        #expect(tokens.last == "ectable")
        let merges = try #require(file.stringArray("tokenizer.ggml.merges"))
        #expect(merges.count == 48900)
        #expect(merges.first == "\u{120} t")
        let tokenTypes = try #require(file.intArray("tokenizer.ggml.token_type"))
        #expect(tokenTypes.count == 49152)
        #expect(tokenTypes.prefix(5) == [3, 3, 3, 3, 3])
        #expect(file["tokenizer.ggml.token_type"]?.typeDescription == "array[int32]")
        #expect(file.int("tokenizer.ggml.bos_token_id") == 1)
        #expect(file.int("tokenizer.ggml.eos_token_id") == 2)

        #expect(try file.require("llama.block_count", as: file.int) == 30)
        #expect(throws: GGUFError.missingKey(path: file.path, key: "llama.nope")) {
            try file.require("llama.nope", as: file.int)
        }
        #expect(throws: GGUFError.wrongType(path: file.path, key: "general.name", expected: "Int", found: "string")) {
            try file.require("general.name", as: file.int)
        }
    }

    @Test func tensorInfosAndData() throws {
        let file = try GGUFTestSupport.smolLM2()
        #expect(file.tensors.count == 272)
        var counts: [DType: Int] = [:]
        for t in file.tensors { counts[t.type, default: 0] += 1 }
        #expect(counts == [.q4_1: 210, .f32: 61, .q8_0: 1])
        #expect(file.tensors.first?.name == "token_embd.weight")
        #expect(file.tensors.last?.name == "output_norm.weight")

        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embedding.dims == [576, 49152])
        #expect(embedding.shape == [49152, 576])
        #expect(embedding.type == .q8_0)
        #expect(embedding.elementCount == 576 * 49152)
        #expect(embedding.byteCount == 30_081_024)
        #expect(embedding.offset == 0)
        let e = file.data(for: embedding)
        #expect(Array(e.prefix(8)) == [50, 25, 214, 13, 19, 247, 229, 238])
        #expect(Array(e.suffix(8)) == [16, 20, 107, 198, 45, 74, 187, 232])

        let q = try #require(file.tensor(named: "blk.0.attn_q.weight"))
        #expect(q.shape == [576, 576] && q.type == .q4_1 && q.byteCount == 207_360 && q.offset == 32_020_992)
        #expect(Array(file.data(for: q).prefix(8)) == [15, 48, 216, 185, 69, 135, 101, 64])

        let down = try #require(file.tensor(named: "blk.29.ffn_down.weight"))
        #expect(down.dims == [1536, 576] && down.shape == [576, 1536] && down.offset == 78_845_184)

        let norm = try #require(file.tensor(named: "output_norm.weight"))
        #expect(norm.dims == [576] && norm.type == .f32 && norm.offset == 96_574_464)
        let normBytes = file.data(for: norm)
        #expect(normBytes.count == 2304)
        let floats = (0..<4).map { normBytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        #expect(floats == [1.7578125, 1.8203125, 1.78125, 1.6015625])
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, same as computed in Python
        for b in normBytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        #expect(hash == 0xea81_4bed_6299_e304)

        // Every tensor's data lies inside the file, aligned.
        for t in file.tensors {
            #expect(t.offset % file.alignment == 0)
            #expect(file.dataOffset + t.offset + t.byteCount <= file.fileSize)
        }
    }

    @Test func writeBackIsByteIdentical() throws {
        let file = try GGUFTestSupport.smolLM2()
        try GGUFTestSupport.withTemporaryFolder { folder in
            let out = folder.appendingPathComponent("copy.gguf").path
            try GGUFWriter(copying: file).write(to: out)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["copy.gguf"])
            let copy = try MappedFile(path: out)
            #expect(copy.count == file.fileSize)
            #expect(memcmp(copy.bytes.baseAddress!, file.bytes.baseAddress!, file.fileSize) == 0,
                    "the written file differs from the original")
            let reread = try GGUFFile(file: copy)
            #expect(reread.metadata == file.metadata)
            #expect(reread.tensors == file.tensors)
        }
    }
}
