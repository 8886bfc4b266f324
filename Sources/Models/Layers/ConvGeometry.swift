
/// The index map shared by Conv2d and ConvTranspose2d: a square k x k window with stride s and
/// zero padding p slides over an "image" (C, H, W) and visits the positions of a "grid"
/// (OH, OW) = (floor((H + 2p - k) / s) + 1, ...). For Conv2d the image is the input and the
/// grid the output; for ConvTranspose2d the other way round.
///
/// im2col lays a chunk of n rows out as col [C * k * k, n * OH * OW] (row (c, ki, kj), column
/// (row b, oh, ow)), so one sgemm per chunk covers every row of the chunk: sgemm sizes grow
/// with the chunk instead of staying one image small. col2im is its adjoint (adds).
public struct ConvGeometry: Sendable, Equatable {
    public let channels: Int, height: Int, width: Int
    public let kernel: Int, stride: Int, padding: Int
    public let gridHeight: Int, gridWidth: Int
    /// [k k, OH OW]: for window offset (ki, kj) and grid position (oh, ow), the index
    /// ih W + iw of the image value it reads (0 where the window hangs over the padding), and
    /// [k k, OH OW] 1 / 0 whether that value is inside the image. One table per window offset,
    /// shared by every channel and row, turns im2col into flat loops of OH OW instead of
    /// short per-row loops of OW (4 to 14 here), whose overhead dominated.
    let sourceIndex: [Int32]
    let inside: [Float]

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int, gridHeight: Int, gridWidth: Int) {
        self.channels = channels; self.height = height; self.width = width
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.gridHeight = gridHeight; self.gridWidth = gridWidth
        var index: [Int32] = [], inside: [Float] = []
        for ki in 0..<kernel {
            for kj in 0..<kernel {
                for oh in 0..<gridHeight {
                    for ow in 0..<gridWidth {
                        let ih = oh * stride - padding + ki, iw = ow * stride - padding + kj
                        let ok = ih >= 0 && ih < height && iw >= 0 && iw < width
                        index.append(ok ? Int32(ih * width + iw) : 0)
                        inside.append(ok ? 1 : 0)
                    }
                }
            }
        }
        sourceIndex = index
        self.inside = inside
    }

    /// PyTorch's Conv2d output size: floor((size + 2p - k) / s) + 1.
    public static func convOutput(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }

    /// PyTorch's ConvTranspose2d output size: (size - 1) s - 2p + k + output_padding.
    public static func transposedOutput(_ size: Int, kernel: Int, stride: Int, padding: Int, outputPadding: Int) -> Int {
        (size - 1) * stride - 2 * padding + kernel + outputPadding
    }

    /// C * k * k: rows of col.
    public var patch: Int { channels * kernel * kernel }
    /// OH * OW: columns of col per image row.
    public var positions: Int { gridHeight * gridWidth }
    /// H * W.
    public var imagePlane: Int { height * width }

    /// Rows per chunk so that col stays near 4 MiB (at least one row, at most `capacity`).
    public func chunkRows(capacity: Int) -> Int {
        max(1, min(capacity, (1 << 20) / max(1, patch * positions)))
    }

    /// Bytes of a conv layer's scratch: col [C k k, chunk OH OW], then a channel-major
    /// [channels, chunk OH OW] (Conv2d: its output / dy; ConvTranspose2d: its input / dx).
    public func scratchBytes(capacity: Int, channelMajor channels: Int) -> Int {
        let n = chunkRows(capacity: capacity)
        return 4 * n * positions * (patch + channels)
    }

    /// The scratch laid out as `scratchBytes` says: col [C k k, chunk OH OW] and the
    /// channel-major [channels, chunk OH OW] after it.
    func scratchBuffers(_ c: LayerContext, channelMajor channels: Int)
        -> (col: UnsafeMutablePointer<Float>, channelMajor: UnsafeMutablePointer<Float>) {
        let chunk = chunkRows(capacity: c.capacity)
        let col = c.scratch.bindMemory(to: Float.self, capacity: chunk * positions * (patch + channels))
        return (col, col + chunk * positions * patch)
    }

    /// Calls `body(first, n)` for the consecutive chunks of `rows` rows, each at most
    /// chunkRows(capacity:) rows long: the loop every conv forward and backward runs.
    @inline(__always)
    func forEachChunk(rows: Int, capacity: Int, _ body: (_ first: Int, _ n: Int) -> Void) {
        let chunk = chunkRows(capacity: capacity)
        var first = 0
        while first < rows {
            let n = min(chunk, rows - first)
            body(first, n)
            first += n
        }
    }

    /// col[C k k, n OH OW] from images x[n, C, H, W] (zero where the window hangs over the padding).
    public func im2col(_ x: UnsafePointer<Float>, rows n: Int, _ col: UnsafeMutablePointer<Float>) {
        let P = positions
        forEachColumnRun(rows: n) { colRun, imageOffset, index, ok in
            let img = x + imageOffset
            let d = col + colRun
            for p in 0..<P {
                let v = img[Int(index[p])]
                d[p] = ok[p] != 0 ? v : 0
            }
        }
    }

    /// x[n, C, H, W] += the adjoint of im2col applied to col (x must be zeroed first to get it alone).
    /// Within one window offset no two grid positions read the same image value, so the adds
    /// of one flat loop never collide; padded positions add 0 to a real value.
    public func col2im(_ col: UnsafePointer<Float>, rows n: Int, _ x: UnsafeMutablePointer<Float>) {
        let P = positions
        forEachColumnRun(rows: n) { colRun, imageOffset, index, ok in
            let img = x + imageOffset
            let src = col + colRun
            for p in 0..<P {
                let v = src[p]
                img[Int(index[p])] += ok[p] != 0 ? v : 0
            }
        }
    }

    /// The traversal im2col and col2im share: for every col row (channel c, window offset w)
    /// and image row b, `body(offset of the run of OH OW col values, offset of image (b, c)'s
    /// plane, w's source index table [OH OW], w's inside table [OH OW])`.
    @inline(__always)
    private func forEachColumnRun(rows n: Int,
                                  _ body: (_ colRun: Int, _ imageOffset: Int, _ index: UnsafePointer<Int32>,
                                           _ ok: UnsafePointer<Float>) -> Void) {
        let P = positions, columns = n * P, kk = kernel * kernel
        sourceIndex.withUnsafeBufferPointer { indexTable in
            inside.withUnsafeBufferPointer { insideTable in
                for c in 0..<channels {
                    for w in 0..<kk {
                        let row = (c * kk + w) * columns
                        let index = indexTable.baseAddress! + w * P, ok = insideTable.baseAddress! + w * P
                        for b in 0..<n {
                            body(row + b * P, (b * channels + c) * imagePlane, index, ok)
                        }
                    }
                }
            }
        }
    }

    /// [n, C, P] (NCHW rows) -> [C, n P] (channel-major, the layout sgemm wants).
    public static func gather(_ x: UnsafePointer<Float>, rows n: Int, channels: Int, plane: Int, _ out: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            for b in 0..<n {
                (out + (c * n + b) * plane).update(from: x + (b * channels + c) * plane, count: plane)
            }
        }
    }

    /// [C, n P] -> [n, C, P], plus bias[c] when given.
    public static func scatter(_ t: UnsafePointer<Float>, rows n: Int, channels: Int, plane: Int, bias: UnsafePointer<Float>?,
                               _ y: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            let bc = bias?[c] ?? 0
            for b in 0..<n {
                let src = t + (c * n + b) * plane, dst = y + (b * channels + c) * plane
                for k in 0..<plane { dst[k] = src[k] + bc }
            }
        }
    }

    /// db[c] (+)= sum over rows and positions of dy[n, C, P].
    public static func biasGradient(_ dy: UnsafePointer<Float>, rows n: Int, channels: Int, plane: Int,
                                    _ db: UnsafeMutablePointer<Float>) {
        for b in 0..<n {
            for c in 0..<channels {
                let src = dy + (b * channels + c) * plane
                var s: Float = 0
                for k in 0..<plane { s += src[k] }
                db[c] += s
            }
        }
    }

    /// Row-major C[M, N] = op(A) op(B) + beta C, over the rank's threads.
    @inline(__always)
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        MatrixProduct.sgemm(transA, transB, m, n, k, a, lda, b, ldb, beta: beta, c, ldc)
    }
}
