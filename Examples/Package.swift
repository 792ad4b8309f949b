// swift-tools-version:6.0
import PackageDescription

// Emerald used as a library, the way another Swift package would: `swift run -c release`.
let package = Package(
    name: "EmeraldExamples",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Emerald", path: "..")],
    targets: [
        .executableTarget(name: "TinyGPT", dependencies: [.product(name: "Emerald", package: "Emerald")]),
    ]
)
