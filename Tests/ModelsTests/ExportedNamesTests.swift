import XCTest
@testable import Models

/// The checkpoint tensor names of explicit stacks are PyTorch's nn.Sequential names
/// (examples/load_in_pytorch.py rebuilds the stacks as nn.Sequential and loads strictly).
final class ExportedNamesTests: XCTestCase {
    func names(_ arch: VAEArchitecture) -> [String] {
        let vae = VAE(arch)
        let all = vae.layout.exported + vae.stateLayout.exported
        if ProcessInfo.processInfo.environment["PRINT_EXPORTED"] != nil {
            for slot in all { print("exported \(slot.name) \(slot.shape)") }
        }
        return all.map(\.name)
    }

    func testConvVAE003Names() {
        let n = names(SeedArchitectures.convVAE003())
        XCTAssertEqual(Set(n).count, n.count)
        for expected in ["encoder.layers.0.weight", "encoder.layers.1.running_var", "encoder.layers.1.num_batches_tracked",
                         "encoder.layers.9.bias", "encoder.mean.weight", "encoder.logvar.bias",
                         "decoder.layers.0.weight", "decoder.layers.2.weight", "decoder.layers.3.running_mean",
                         "decoder.layers.11.weight", "decoder.layers.11.bias"] {
            XCTAssertTrue(n.contains(expected), expected)
        }
    }

    func testCVAE004Names() {
        let n = names(SeedArchitectures.cvae004())
        for expected in ["encoder.layers.0.weight", "encoder.layers.2.weight", "encoder.layers.2.running_mean",
                         "decoder.layers.0.weight", "decoder.layers.2.num_batches_tracked", "decoder.layers.4.weight"] {
            XCTAssertTrue(n.contains(expected), expected)
        }
    }
}
