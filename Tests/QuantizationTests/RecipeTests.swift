import Testing
@testable import Quantization
import Tensors

/// SmolLM2's shapes: hidden 576 (not a multiple of 256), ffn 1536, 30 layers, tied embedding.
private func smolRecipe(_ mix: QuantMix, overrides: [String] = []) throws -> QuantRecipe {
    QuantRecipe(mix: mix, overrides: try overrides.map(QuantRecipe.Override.init(parsing:)), tiedEmbeddings: true,
                layerCount: 30, gqa: 3)
}

@Test func q4KMOnSmolLM2FallsBackWhereRowsAreNotMultiplesOf256() throws {
    let r = try smolRecipe(.q4_K_M)
    #expect(r.choose(name: "blk.0.attn_norm.weight", shape: [576]).type == .f32)
    #expect(r.choose(name: "token_embd.weight", shape: [49152, 576]).type == .q8_0)
    #expect(r.choose(name: "blk.5.attn_q.weight", shape: [576, 576]).type == .q5_0)   // Q4_K → Q5_0
    #expect(r.choose(name: "blk.0.attn_v.weight", shape: [192, 576]).type == .q8_0)   // Q6_K → Q8_0 (more bits)
    #expect(r.choose(name: "blk.4.attn_v.weight", shape: [192, 576]).type == .q5_0)   // layer 4: no extra bits
    #expect(r.choose(name: "blk.0.ffn_down.weight", shape: [576, 1536]).type == .q6_K) // fits 256: Q6_K
    #expect(r.choose(name: "blk.4.ffn_down.weight", shape: [576, 1536]).type == .q4_K)
    #expect(r.choose(name: "blk.5.ffn_down.weight", shape: [576, 1536]).type == .q6_K) // (5-3)%3 == 2
    #expect(r.choose(name: "blk.29.ffn_down.weight", shape: [576, 1536]).type == .q6_K)
}

@Test func usesMoreBitsMatchesLlamaCppsLayerRule() {
    let chosen = (0..<32).filter { QuantRecipe.usesMoreBits(layer: $0, of: 32) }
    #expect(chosen == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
}

@Test func q2KAndQ3KMixesGiveSensitiveTensorsMoreBits() throws {
    let q2 = try smolRecipe(.q2_K)
    #expect(q2.choose(name: "blk.3.ffn_down.weight", shape: [576, 1536]).type == .q3_K)
    #expect(q2.choose(name: "blk.3.ffn_up.weight", shape: [1536, 576]).type == .q4_0) // Q2_K → Q4_0
    #expect(q2.choose(name: "blk.3.attn_output.weight", shape: [576, 576]).type == .q4_0)
    let q3m = try smolRecipe(.q3_K_M)
    #expect(q3m.choose(name: "blk.0.ffn_down.weight", shape: [576, 1536]).type == .q5_K)
    #expect(q3m.choose(name: "blk.9.ffn_down.weight", shape: [576, 1536]).type == .q4_K)
    #expect(q3m.choose(name: "blk.9.ffn_gate.weight", shape: [1536, 576]).type == .q4_0)
}

@Test func overridesWinAndAreValidated() throws {
    let r = try smolRecipe(.q4_K_M, overrides: ["ffn_down=Q8_0", "attn_.*=q4_1"])
    #expect(r.choose(name: "blk.4.ffn_down.weight", shape: [576, 1536]).type == .q8_0)
    #expect(r.choose(name: "blk.4.attn_k.weight", shape: [192, 576]).type == .q4_1)
    #expect(r.choose(name: "blk.4.ffn_up.weight", shape: [1536, 576]).type == .q5_0)
    #expect(throws: RecipeError.self) { _ = try QuantRecipe.Override(parsing: "ffn_down") }
    #expect(throws: RecipeError.self) { _ = try QuantRecipe.Override(parsing: "ffn_down=Q9_9") }
    #expect(throws: RecipeError.self) { _ = try QuantRecipe.Override(parsing: "ffn_(=Q8_0") }
}

@Test func mixNamesParseLikeLlamaQuantize() {
    #expect(QuantMix(name: "q4_k_m") == .q4_K_M)
    #expect(QuantMix(name: "Q4_K") == .q4_K_M)
    #expect(QuantMix(name: "Q3_K") == .q3_K_M)
    #expect(QuantMix(name: "Q7_K") == nil)
    #expect(QuantRecipe.fallback(.q6_K, rowLength: 576) == .q8_0)
    #expect(QuantRecipe.fallback(.q4_0, rowLength: 40) == .f16)
}
