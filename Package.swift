// swift-tools-version:6.1
import Foundation
import PackageDescription

// Kernels are written as SIMD Swift. Without a target CPU, swiftc lowers
// `SIMD16<Float>` FMAs to scalar `fmaf` calls (~1.5 GFLOP/s); with
// `-target-cpu native` the same GEMM reaches ~240 GFLOP/s on Zen 5
// (see BENCHMARKS.md). `-Ounchecked` drops overflow/bounds traps in the hot
// loops; inputs are validated at the API boundary instead.
let fast: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "native"], .when(platforms: [.linux])),
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "Emerald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "emerald", targets: ["EmeraldCLI"]),
        .library(name: "Emerald", targets: ["Emerald"]),
        .library(name: "EmeraldCore", targets: ["EmeraldCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // The HTTP server of `emerald serve` (EmeraldServer only). No traits: swift-configuration
        // support is not needed, and leaving it out shortens the build.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
    ],
    targets: [
        // Engine: tensors, autograd, kernels, thread pool. Knows nothing above it.
        .target(name: "EmeraldCore", dependencies: ["CEmeraldSIMD"], swiftSettings: fast),
        // Header-only vector math Swift's SIMD types lower to scalar code (square root).
        .target(name: "CEmeraldSIMD"),
        // The book and GPT-2's vocabulary (assets/), compiled into the binary with C23 #embed.
        .target(name: "CEmeraldAssets", cSettings: [.unsafeFlags(["-std=c2x"])]),
        // Open MPI loaded at run time (dlopen) for data-parallel training across processes.
        .target(name: "CEmeraldMPI", linkerSettings: [.linkedLibrary("dl")]),
        // System liblzma and zlib (scripts/setup installs the -dev packages) for `emerald prepare`.
        .systemLibrary(name: "CLZMA", path: "Sources/CLZMA", pkgConfig: "liblzma", providers: [.apt(["liblzma-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // nn, models, tokenizers, data, training, generation, io.
        .target(name: "Emerald", dependencies: ["EmeraldCore", "CEmeraldAssets", "CEmeraldMPI", "CLZMA", "CZlib"], swiftSettings: fast),
        // Terminal input for interactive commands: a line editor and raw mode (no model code).
        .target(name: "EmeraldTerminal"),
        // `emerald serve`: an OpenAI-compatible HTTP server over the library (Hummingbird 2).
        .target(name: "EmeraldServer", dependencies: [
            "Emerald", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"), .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(
            name: "EmeraldCLI",
            dependencies: ["Emerald", "EmeraldServer", "EmeraldTerminal", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
        // Shared by the test targets: a test backend and the backend conformance checks.
        .target(name: "EmeraldTestSupport", dependencies: ["EmeraldCore"], path: "Tests/Support", swiftSettings: fast),
        .testTarget(name: "EmeraldCoreTests", dependencies: ["EmeraldCore", "EmeraldTestSupport"], swiftSettings: fast),
        .testTarget(
            name: "EmeraldTests", dependencies: ["Emerald", "EmeraldTerminal", "EmeraldTestSupport"],
            resources: [.copy("Fixtures")], swiftSettings: fast),
    ],
    swiftLanguageModes: [.v5]
)

// libFuzzer targets (Fuzz/Targets), built only by scripts/fuzz, which sets EMERALD_FUZZ and
// builds with --sanitize=fuzzer into .build-fuzz: each defines LLVMFuzzerTestOneInput.
if ProcessInfo.processInfo.environment["EMERALD_FUZZ"] != nil {
    for name in ["SafeTensors", "TokenizerJSON", "VocabMerges", "Config", "Tar", "Documents", "Shards", "Manifest"] {
        package.targets.append(.executableTarget(
            name: "Fuzz" + name, dependencies: ["Emerald"], path: "Fuzz/Targets/" + name,
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
