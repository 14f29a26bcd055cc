// swift-tools-version:6.0
import PackageDescription

// BLAS/LAPACK come from Accelerate on Apple platforms and from OpenBLAS + LAPACKE
// (Debian: libopenblas-dev, liblapacke-dev) elsewhere.
let blasDependency: [Target.Dependency] = [
    .target(name: "CBLAS", condition: .when(platforms: [.linux]))
]
let blasLinker: [LinkerSetting] = [
    .linkedFramework("Accelerate", .when(platforms: [.macOS, .iOS]))
]
let optimized: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"], .when(configuration: .release))
]

let package = Package(
    name: "SwiftQuant",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "swiftquant", targets: ["swiftquant"]),
        .library(name: "SwiftQuant", targets: ["Tensors", "Quantization", "Formats", "Tokenizers", "Models", "Evaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(name: "Tensors", dependencies: ["CKernels"] + blasDependency,
                swiftSettings: optimized, linkerSettings: blasLinker),
        .target(name: "Quantization", dependencies: ["Tensors", "CKernels"], swiftSettings: optimized),
        .target(name: "Formats", dependencies: ["Tensors", "Quantization"]),
        .target(name: "Tokenizers", dependencies: ["Formats"], swiftSettings: optimized),
        .target(name: "Models", dependencies: ["CKernels", "Tensors", "Formats", "Quantization", "Tokenizers"],
                swiftSettings: optimized),
        .target(name: "Evaluation", dependencies: ["CKernels", "Models", "Formats", "Quantization", "Tokenizers", "Tensors"],
                swiftSettings: optimized),
        .executableTarget(name: "swiftquant", dependencies: [
            "Tensors", "Quantization", "Formats", "Tokenizers", "Models", "Evaluation",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "fuzz-parsers", dependencies: ["Formats"], path: "Sources/fuzz-parsers"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "Formats"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Models", "Tensors"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Tokenizers", "Formats", "Evaluation"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "KernelsTests", dependencies: ["CKernels", "Tensors", "Quantization", "Models", "Formats", "Tokenizers"]),
    ],
    // Numeric kernels share unsafe pointers across worker threads by design; Swift 5 mode
    // keeps that from needing a wrapper at every parallel loop.
    swiftLanguageModes: [.v5]
)
