import COpenBLAS

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

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int, gridHeight: Int, gridWidth: Int) {
        self.channels = channels; self.height = height; self.width = width
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.gridHeight = gridHeight; self.gridWidth = gridWidth
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

    /// The grid columns ow whose input column ow * s - p + kj lies inside [0, W).
    @inline(__always)
    func validRange(_ kj: Int, gridSize: Int, imageSize: Int) -> Range<Int> {
        // ow * s >= p - kj  and  ow * s <= W - 1 + p - kj
        let lowNumerator = padding - kj
        let lo = lowNumerator <= 0 ? 0 : (lowNumerator + stride - 1) / stride
        let highNumerator = imageSize - 1 + padding - kj
        let hi = highNumerator < 0 ? -1 : min(gridSize - 1, highNumerator / stride)
        return lo <= hi ? lo..<(hi + 1) : 0..<0
    }

    /// col[C k k, n OH OW] from images x[n, C, H, W] (zero where the window hangs over the padding).
    public func im2col(_ x: UnsafePointer<Float>, rows n: Int, _ col: UnsafeMutablePointer<Float>) {
        let P = positions, columns = n * P, k = kernel, s = stride
        for c in 0..<channels {
            for ki in 0..<k {
                for kj in 0..<k {
                    let row = col + ((c * k + ki) * k + kj) * columns
                    let cols = validRange(kj, gridSize: gridWidth, imageSize: width)
                    for b in 0..<n {
                        let img = x + (b * channels + c) * imagePlane
                        let dst = row + b * P
                        for oh in 0..<gridHeight {
                            let d = dst + oh * gridWidth
                            let ih = oh * s - padding + ki
                            if ih < 0 || ih >= height || cols.isEmpty {
                                d.update(repeating: 0, count: gridWidth)
                                continue
                            }
                            let src = img + ih * width - padding + kj
                            for ow in 0..<cols.lowerBound { d[ow] = 0 }
                            if s == 1 {
                                for ow in cols { d[ow] = src[ow] }
                            } else {
                                for ow in cols { d[ow] = src[ow * s] }
                            }
                            for ow in cols.upperBound..<gridWidth { d[ow] = 0 }
                        }
                    }
                }
            }
        }
    }

    /// x[n, C, H, W] += the adjoint of im2col applied to col (x must be zeroed first to get it alone).
    public func col2im(_ col: UnsafePointer<Float>, rows n: Int, _ x: UnsafeMutablePointer<Float>) {
        let P = positions, columns = n * P, k = kernel, s = stride
        for c in 0..<channels {
            for ki in 0..<k {
                for kj in 0..<k {
                    let row = col + ((c * k + ki) * k + kj) * columns
                    let cols = validRange(kj, gridSize: gridWidth, imageSize: width)
                    if cols.isEmpty { continue }
                    for b in 0..<n {
                        let img = x + (b * channels + c) * imagePlane
                        let src = row + b * P
                        for oh in 0..<gridHeight {
                            let ih = oh * s - padding + ki
                            if ih < 0 || ih >= height { continue }
                            let d = img + ih * width - padding + kj
                            let sr = src + oh * gridWidth
                            if s == 1 {
                                for ow in cols { d[ow] += sr[ow] }
                            } else {
                                for ow in cols { d[ow * s] += sr[ow] }
                            }
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

    /// Row-major C[M, N] = alpha op(A) op(B) + beta C, counting BLAS allocations.
    @inline(__always)
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        BLASAllocations.counting {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }
}
