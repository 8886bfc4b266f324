// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "disttrain",
    products: [
        .executable(name: "disttrain", targets: ["DistTrainCLI"]),
        .library(name: "DistTrain", targets: ["DistTrain"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "DistTrainIO", targets: ["DistTrainIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C modules over system libraries. No unsafeFlags: pkg-config supplies the paths.
        .systemLibrary(name: "MPIShim", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Counts heap allocations (interposes malloc on glibc) so the step loop's "allocates
        // nothing" is measured.
        .target(name: "CAllocCount"),

        // Vector square root as one instruction (Swift's SIMD squareRoot is lane by lane).
        .target(name: "CVectorMath"),

        // Products with a mostly-zero operand (pixels, ReLU outputs): AVX2 kernels chosen at run time.
        .target(name: "CSparseProducts"),

        // The math: layers, activations, losses, the VAE family. No MPI here.
        .target(name: "Models", dependencies: ["COpenBLAS", "CVectorMath", "CAllocCount", "CSparseProducts"]),

        // File formats and file handling that know nothing of training: JSON, IDX, safetensors,
        // the PNG encoder, TensorBoard event files, atomic writes.
        .target(name: "DistTrainIO", dependencies: ["CZlib"]),

        // Distribution, data, optimizer, trainer, checkpoints, reporting, evaluation, pictures.
        .target(name: "DistTrain", dependencies: [
            "Models", "DistTrainIO", "MPIShim", "CZlib", "CVectorMath", "CAllocCount",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The thin `disttrain` command line.
        .executableTarget(name: "DistTrainCLI", dependencies: [
            "DistTrain", "DistTrainIO", "Models",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "ModelsTests", dependencies: ["Models", "CSparseProducts"]),
        // Test-only helpers shared by the test targets: temporary directories, MNIST paths, and
        // the PNG decoder (only tests read PNGs).
        .target(name: "IOTestSupport", dependencies: ["DistTrainIO", "CZlib"], path: "Tests/IOTestSupport"),
        .testTarget(name: "DistTrainIOTests", dependencies: ["DistTrainIO", "IOTestSupport", "CZlib"]),
        .testTarget(name: "DistTrainTests", dependencies: ["DistTrain", "DistTrainIO", "IOTestSupport", "Models", .product(name: "Logging", package: "swift-log")],
                    resources: []),
    ]
)
