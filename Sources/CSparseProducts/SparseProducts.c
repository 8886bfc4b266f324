// Sparse-operand products for Linear layers (see the header for the shapes and why).
//
// Two builds of each kernel: AVX2 + FMA (chosen once at run time when the CPU has them) and a
// portable one. They round differently (fused multiply-add), so a run's bits depend on the CPU
// family, as OpenBLAS's own kernels already do.
#include "CSparseProducts.h"
#include <string.h>
#ifndef SPARSE_FORWARD_CHUNK
#define SPARSE_FORWARD_CHUNK 96
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

int64_t dt_count_nonzero(const float *x, int64_t count) {
    // Four independent counters the compiler turns into vector compares.
    int64_t n0 = 0, n1 = 0, n2 = 0, n3 = 0, i = 0;
    for (; i + 4 <= count; i += 4) {
        n0 += x[i] != 0.0f; n1 += x[i + 1] != 0.0f; n2 += x[i + 2] != 0.0f; n3 += x[i + 3] != 0.0f;
    }
    for (; i < count; i++) n0 += x[i] != 0.0f;
    return n0 + n1 + n2 + n3;
}

int64_t dt_sparse_rows_part(const float *x, int r0, int r1, int cols, int32_t *start, int32_t *index, float *value) {
    int64_t base = (int64_t)r0 * cols, n = base;
    for (int r = r0; r < r1; r++) {
        start[r] = (int32_t)n;
        const float *row = x + (int64_t)r * cols;
        for (int c = 0; c < cols; c++) {
            float v = row[c];
            // Branch-free: always write, advance only past a nonzero.
            index[n] = c;
            value[n] = v;
            n += (v != 0.0f);
        }
    }
    return n - base;
}

int64_t dt_sparse_rows(const float *x, int rows, int cols, int32_t *start, int32_t *index, float *value) {
    int64_t n = dt_sparse_rows_part(x, 0, rows, cols, start, index, value);  // one part at position 0
    start[rows] = (int32_t)n;
    return n;
}

int64_t dt_sparse_rows_join(int rows, int cols, int chunk_rows, const int64_t *counts, int32_t *start, int32_t *index,
                            float *value) {
    int64_t n = 0;
    for (int k = 0, r0 = 0; r0 < rows; k++, r0 += chunk_rows) {
        int r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
        int64_t base = (int64_t)r0 * cols;
        if (base != n) {
            // Leftwards (n < base): memmove copies overlapping regions correctly.
            memmove(index + n, index + base, sizeof(int32_t) * (size_t)counts[k]);
            memmove(value + n, value + base, sizeof(float) * (size_t)counts[k]);
            int32_t shift = (int32_t)(n - base);
            for (int r = r0; r < r1; r++) start[r] += shift;
        }
        n += counts[k];
    }
    start[rows] = (int32_t)n;
    return n;
}

void dt_sparse_columns(const int32_t *rowStart, const int32_t *rowIndex, const float *rowValue, int rows, int cols,
                       int32_t *start, int32_t *row, float *value) {
    memset(start, 0, sizeof(int32_t) * (size_t)(cols + 1));
    int64_t n = rowStart[rows];
    for (int64_t k = 0; k < n; k++) start[rowIndex[k] + 1]++;
    for (int c = 0; c < cols; c++) start[c + 1] += start[c];
    // Fill in row order, so each column's rows come out ascending; start[c] walks to the end of
    // column c and is shifted back afterwards.
    for (int r = 0; r < rows; r++) {
        for (int32_t k = rowStart[r]; k < rowStart[r + 1]; k++) {
            int32_t at = start[rowIndex[k]]++;
            row[at] = r;
            value[at] = rowValue[k];
        }
    }
    for (int c = cols; c > 0; c--) start[c] = start[c - 1];
    start[0] = 0;
}

// ---- y = X_sparse * W^T, one panel of W's rows at a time -----------------------------------

static void sparse_times_panel_portable(const int32_t *start, const int32_t *index, const float *value, int rows,
                                        const float *panel, int width, float *y, int ldy) {
    for (int r = 0; r < rows; r++) {
        float *out = y + (int64_t)r * ldy;
        for (int j = 0; j < width; j++) out[j] = 0;
        for (int32_t k = start[r]; k < start[r + 1]; k++) {
            const float *w = panel + (int64_t)index[k] * width;
            float v = value[k];
            for (int j = 0; j < width; j++) out[j] += v * w[j];
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void sparse_times_panel_avx2(const int32_t *start, const int32_t *index, const float *value, int rows,
                                    const float *panel, int width, float *y, int ldy) {
    if (width == 64) {
        // Eight independent accumulators (64 outputs) hide the multiply-add latency. The inputs
        // are taken in chunks of CHUNK so the panel rows they read (CHUNK x 256 bytes) stay in L1
        // for every row of the batch: a whole panel (inputs x 256 bytes) does not fit, and each
        // nonzero then fetched four cache lines from L2. A row's partial sums wait in y between
        // chunks; each accumulator still sees its row's nonzeros in ascending order, so the sums
        // (and their bits) are those of one pass.
        enum { CHUNK = SPARSE_FORWARD_CHUNK };
        int32_t cursor[rows > 0 ? rows : 1];
        for (int r = 0; r < rows; r++) cursor[r] = start[r];
        int more = 1;
        for (int32_t limit = CHUNK, first = 1; more; limit += CHUNK, first = 0) {
            more = 0;
            for (int r = 0; r < rows; r++) {
                float *out = y + (int64_t)r * ldy;
                __m256 a0, a1, a2, a3, a4, a5, a6, a7;
                if (first) {
                    a0 = _mm256_setzero_ps(); a1 = a0; a2 = a0; a3 = a0; a4 = a0; a5 = a0; a6 = a0; a7 = a0;
                } else {
                    a0 = _mm256_loadu_ps(out); a1 = _mm256_loadu_ps(out + 8);
                    a2 = _mm256_loadu_ps(out + 16); a3 = _mm256_loadu_ps(out + 24);
                    a4 = _mm256_loadu_ps(out + 32); a5 = _mm256_loadu_ps(out + 40);
                    a6 = _mm256_loadu_ps(out + 48); a7 = _mm256_loadu_ps(out + 56);
                }
                int32_t k = cursor[r], end = start[r + 1];
                for (; k < end && index[k] < limit; k++) {
                    const float *w = panel + (int64_t)index[k] * 64;
                    __m256 v = _mm256_broadcast_ss(value + k);
                    a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w), a0);
                    a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 8), a1);
                    a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 16), a2);
                    a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 24), a3);
                    a4 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 32), a4);
                    a5 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 40), a5);
                    a6 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 48), a6);
                    a7 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 56), a7);
                }
                cursor[r] = k;
                more |= k < end;
                _mm256_storeu_ps(out, a0); _mm256_storeu_ps(out + 8, a1);
                _mm256_storeu_ps(out + 16, a2); _mm256_storeu_ps(out + 24, a3);
                _mm256_storeu_ps(out + 32, a4); _mm256_storeu_ps(out + 40, a5);
                _mm256_storeu_ps(out + 48, a6); _mm256_storeu_ps(out + 56, a7);
            }
        }
        return;
    }
    // A narrower last panel: 8 outputs at a time, then one.
    int j = 0;
    for (; j + 8 <= width; j += 8) {
        for (int r = 0; r < rows; r++) {
            __m256 a = _mm256_setzero_ps();
            for (int32_t k = start[r]; k < start[r + 1]; k++)
                a = _mm256_fmadd_ps(_mm256_broadcast_ss(value + k), _mm256_loadu_ps(panel + (int64_t)index[k] * width + j), a);
            _mm256_storeu_ps(y + (int64_t)r * ldy + j, a);
        }
    }
    for (; j < width; j++) {
        for (int r = 0; r < rows; r++) {
            float a = 0;
            for (int32_t k = start[r]; k < start[r + 1]; k++) a = __builtin_fmaf(value[k], panel[(int64_t)index[k] * width + j], a);
            y[(int64_t)r * ldy + j] = a;
        }
    }
}
#endif

#if defined(__x86_64__)
/// r[i][j] <- r[j][i] for an 8 x 8 block held in eight registers (the weight gradient's tile;
/// the panel packing spells the same shuffles out on named registers, which measured faster).
__attribute__((target("avx2,fma")))
static inline __attribute__((always_inline)) void transpose8x8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

static void pack_panel_portable(const float *w, int cols, int o0, int width, float *panel, int c0) {
    // 16 x 16 tiles: both sides touch whole cache lines.
    for (int jj = 0; jj < width; jj += 16) {
        int je = jj + 16 < width ? jj + 16 : width;
        for (int cc = c0; cc < cols; cc += 16) {
            int ce = cc + 16 < cols ? cc + 16 : cols;
            for (int j = jj; j < je; j++) {
                const float *src = w + (int64_t)(o0 + j) * cols;
                for (int c = cc; c < ce; c++) panel[(int64_t)c * width + j] = src[c];
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void pack_panel_avx2(const float *w, int cols, int o0, int width, float *panel) {
    if (width % 8 != 0) { pack_panel_portable(w, cols, o0, width, panel, 0); return; }
    int c8 = cols / 8 * 8;
    // 8 x 8 blocks transposed in registers: eight rows of W in, eight rows of the panel out.
    for (int j = 0; j < width; j += 8) {
        const float *src = w + (int64_t)(o0 + j) * cols;
        for (int c = 0; c < c8; c += 8) {
            __m256 r0 = _mm256_loadu_ps(src + c), r1 = _mm256_loadu_ps(src + cols + c);
            __m256 r2 = _mm256_loadu_ps(src + 2 * (int64_t)cols + c), r3 = _mm256_loadu_ps(src + 3 * (int64_t)cols + c);
            __m256 r4 = _mm256_loadu_ps(src + 4 * (int64_t)cols + c), r5 = _mm256_loadu_ps(src + 5 * (int64_t)cols + c);
            __m256 r6 = _mm256_loadu_ps(src + 6 * (int64_t)cols + c), r7 = _mm256_loadu_ps(src + 7 * (int64_t)cols + c);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *dst = panel + (int64_t)c * width + j;
            _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(dst + width, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(dst + 2 * width, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(dst + 3 * width, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(dst + 4 * width, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(dst + 5 * width, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(dst + 6 * width, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(dst + 7 * width, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    }
    if (c8 < cols) pack_panel_portable(w, cols, o0, width, panel, c8);
}
#endif

// ---- dW = dY^T * X_sparse -------------------------------------------------------------------

static void dense_t_times_sparse_portable(const int32_t *start, const int32_t *row, const float *value, int cols,
                                          const float *dy, int lddy, int o0, int o1, float beta, float *dw, int lddw) {
    for (int o = o0; o < o1; o++) {
        float *out = dw + (int64_t)o * lddw;
        for (int c = 0; c < cols; c++) {
            float a = 0;
            for (int32_t k = start[c]; k < start[c + 1]; k++) a += value[k] * dy[(int64_t)row[k] * lddy + o];
            out[c] = beta != 0 ? out[c] + a : a;
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static inline void store_column(float *dw, int lddw, int c, const float *sums, int count, float beta) {
    if (beta != 0) { for (int j = 0; j < count; j++) dw[(int64_t)j * lddw + c] += sums[j]; }
    else { for (int j = 0; j < count; j++) dw[(int64_t)j * lddw + c] = sums[j]; }
}

__attribute__((target("avx2,fma")))
static void dense_t_times_sparse_avx2(const int32_t *start, const int32_t *row, const float *value, int cols, int rows,
                                      const float *dy, int lddy, int o0, int o1, float beta, float *dw, int lddw,
                                      float *pack) {
    float sums[8] __attribute__((aligned(32)));
    float tile[8 * 32] __attribute__((aligned(32)));  // [8 columns, 32 outputs]
    int o = o0;
    // 32 outputs at a time, dy's 32 columns first copied together (rows x 128 bytes, in L1);
    // even and odd nonzeros go to two sets of four accumulators (eight independent chains),
    // added at the end.
    for (; o + 32 <= o1; o += 32) {
        for (int r = 0; r < rows; r++) {
            const float *src = dy + (int64_t)r * lddy + o;
            float *dst = pack + (int64_t)r * 32;
            _mm256_storeu_ps(dst, _mm256_loadu_ps(src)); _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(src + 8));
            _mm256_storeu_ps(dst + 16, _mm256_loadu_ps(src + 16)); _mm256_storeu_ps(dst + 24, _mm256_loadu_ps(src + 24));
        }
        for (int c = 0; c < cols; c++) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            int32_t k = start[c], end = start[c + 1];
            for (; k + 1 < end; k += 2) {
                const float *d = pack + (int64_t)row[k] * 32, *e = pack + (int64_t)row[k + 1] * 32;
                __m256 v = _mm256_broadcast_ss(value + k), u = _mm256_broadcast_ss(value + k + 1);
                a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d), a0);
                a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d + 8), a1);
                a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d + 16), a2);
                a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d + 24), a3);
                b0 = _mm256_fmadd_ps(u, _mm256_loadu_ps(e), b0);
                b1 = _mm256_fmadd_ps(u, _mm256_loadu_ps(e + 8), b1);
                b2 = _mm256_fmadd_ps(u, _mm256_loadu_ps(e + 16), b2);
                b3 = _mm256_fmadd_ps(u, _mm256_loadu_ps(e + 24), b3);
            }
            if (k < end) {
                const float *d = pack + (int64_t)row[k] * 32;
                __m256 v = _mm256_broadcast_ss(value + k);
                a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d), a0);
                a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d + 8), a1);
                a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d + 16), a2);
                a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(d + 24), a3);
            }
            // Eight columns' sums wait in a tile, then go out as rows of dw (eight contiguous
            // floats per output, transposed in registers) instead of 32 scattered floats each.
            float *t = tile + (c & 7) * 32;
            _mm256_store_ps(t, _mm256_add_ps(a0, b0));
            _mm256_store_ps(t + 8, _mm256_add_ps(a1, b1));
            _mm256_store_ps(t + 16, _mm256_add_ps(a2, b2));
            _mm256_store_ps(t + 24, _mm256_add_ps(a3, b3));
            if ((c & 7) == 7) {
                for (int jb = 0; jb < 32; jb += 8) {
                    __m256 r[8];
                    for (int i = 0; i < 8; i++) r[i] = _mm256_load_ps(tile + i * 32 + jb);
                    transpose8x8(r);
                    for (int j = 0; j < 8; j++) {
                        float *out = dw + (int64_t)(o + jb + j) * lddw + (c - 7);
                        _mm256_storeu_ps(out, beta != 0 ? _mm256_add_ps(_mm256_loadu_ps(out), r[j]) : r[j]);
                    }
                }
            }
        }
        for (int c = cols & ~7; c < cols; c++) store_column(dw + (int64_t)o * lddw, lddw, c, tile + (c & 7) * 32, 32, beta);
    }
    for (; o + 8 <= o1; o += 8) {
        for (int c = 0; c < cols; c++) {
            __m256 a = _mm256_setzero_ps();
            for (int32_t k = start[c]; k < start[c + 1]; k++)
                a = _mm256_fmadd_ps(_mm256_broadcast_ss(value + k), _mm256_loadu_ps(dy + (int64_t)row[k] * lddy + o), a);
            _mm256_store_ps(sums, a);
            store_column(dw + (int64_t)o * lddw, lddw, c, sums, 8, beta);
        }
    }
    for (; o < o1; o++) {
        float *out = dw + (int64_t)o * lddw;
        for (int c = 0; c < cols; c++) {
            float a = 0;
            for (int32_t k = start[c]; k < start[c + 1]; k++) a = __builtin_fmaf(value[k], dy[(int64_t)row[k] * lddy + o], a);
            out[c] = beta != 0 ? out[c] + a : a;
        }
    }
}
#endif

// ---- dx = dY * W at the input's nonzeros only --------------------------------------------

/// One panel's share of the masked input gradient, one output at a time: rows r0 ..< r1 add
/// dy[r, o0 ..< o0 + width] . panel[c, :] at each of their nonzeros c.
static void masked_panel_scalar(const int32_t *start, const int32_t *index, int r0, int r1, const float *dy, int lddy,
                                int o0, const float *panel, int width, float *dx, int lddx) {
    for (int r = r0; r < r1; r++) {
        const float *g = dy + (int64_t)r * lddy + o0;
        float *d = dx + (int64_t)r * lddx;
        for (int32_t k = start[r]; k < start[r + 1]; k++) {
            const float *w = panel + (int64_t)index[k] * width;
            float a = 0;
            for (int j = 0; j < width; j++) a += g[j] * w[j];
            d[index[k]] += a;
        }
    }
}

static void zero_rows(int r0, int r1, int cols, float *dx, int lddx) {
    for (int r = r0; r < r1; r++) memset(dx + (int64_t)r * lddx, 0, sizeof(float) * (size_t)cols);
}

static void masked_times_panels_portable(const int32_t *start, const int32_t *index, int r0, int r1, int cols, int out,
                                         const float *dy, int lddy, const float *panels, float *dx, int lddx) {
    zero_rows(r0, r1, cols, dx, lddx);
    for (int o0 = 0; o0 < out; o0 += 64) {
        int width = out - o0 < 64 ? out - o0 : 64;
        masked_panel_scalar(start, index, r0, r1, dy, lddy, o0, panels + (int64_t)o0 * cols, width, dx, lddx);
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static inline float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static void masked_times_panels_avx2(const int32_t *start, const int32_t *index, int r0, int r1, int cols, int out,
                                     const float *dy, int lddy, const float *panels, float *dx, int lddx) {
    zero_rows(r0, r1, cols, dx, lddx);
    for (int o0 = 0; o0 < out; o0 += 64) {
        int width = out - o0 < 64 ? out - o0 : 64;
        const float *panel = panels + (int64_t)o0 * cols;
        if (width < 64) {  // the last, narrower panel
            masked_panel_scalar(start, index, r0, r1, dy, lddy, o0, panel, width, dx, lddx);
            continue;
        }
        // A panel's 64 outputs of dy stay in eight registers while the row's nonzeros go by;
        // two chains of four products each, then one horizontal sum per nonzero.
        for (int r = r0; r < r1; r++) {
            const float *g = dy + (int64_t)r * lddy + o0;
            __m256 g0 = _mm256_loadu_ps(g), g1 = _mm256_loadu_ps(g + 8), g2 = _mm256_loadu_ps(g + 16), g3 = _mm256_loadu_ps(g + 24);
            __m256 g4 = _mm256_loadu_ps(g + 32), g5 = _mm256_loadu_ps(g + 40), g6 = _mm256_loadu_ps(g + 48), g7 = _mm256_loadu_ps(g + 56);
            float *d = dx + (int64_t)r * lddx;
            for (int32_t k = start[r]; k < start[r + 1]; k++) {
                const float *w = panel + (int64_t)index[k] * 64;
                __m256 a = _mm256_mul_ps(g0, _mm256_loadu_ps(w)), b = _mm256_mul_ps(g1, _mm256_loadu_ps(w + 8));
                a = _mm256_fmadd_ps(g2, _mm256_loadu_ps(w + 16), a); b = _mm256_fmadd_ps(g3, _mm256_loadu_ps(w + 24), b);
                a = _mm256_fmadd_ps(g4, _mm256_loadu_ps(w + 32), a); b = _mm256_fmadd_ps(g5, _mm256_loadu_ps(w + 40), b);
                a = _mm256_fmadd_ps(g6, _mm256_loadu_ps(w + 48), a); b = _mm256_fmadd_ps(g7, _mm256_loadu_ps(w + 56), b);
                d[index[k]] += horizontal_sum(_mm256_add_ps(a, b));
            }
        }
    }
}
#endif

static int has_avx2_fma(void) {
#if defined(__x86_64__)
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return known;
#else
    return 0;
#endif
}

void dt_sparse_times_panel(const int32_t *start, const int32_t *index, const float *value, int rows,
                           const float *panel, int width, float *y, int ldy) {
#if defined(__x86_64__)
    if (has_avx2_fma()) { sparse_times_panel_avx2(start, index, value, rows, panel, width, y, ldy); return; }
#endif
    sparse_times_panel_portable(start, index, value, rows, panel, width, y, ldy);
}

void dt_pack_panel(const float *w, int cols, int o0, int width, float *panel) {
#if defined(__x86_64__)
    if (has_avx2_fma()) { pack_panel_avx2(w, cols, o0, width, panel); return; }
#endif
    pack_panel_portable(w, cols, o0, width, panel, 0);
}

void dt_dense_t_times_sparse(const int32_t *start, const int32_t *row, const float *value, int cols, int rows,
                             const float *dy, int lddy, int o0, int o1, float beta, float *dw, int lddw, float *pack) {
#if defined(__x86_64__)
    if (has_avx2_fma()) { dense_t_times_sparse_avx2(start, row, value, cols, rows, dy, lddy, o0, o1, beta, dw, lddw, pack); return; }
#endif
    (void)rows; (void)pack;
    dense_t_times_sparse_portable(start, row, value, cols, dy, lddy, o0, o1, beta, dw, lddw);
}

void dt_masked_times_panels(const int32_t *start, const int32_t *index, int r0, int r1, int cols, int out,
                            const float *dy, int lddy, const float *panels, float *dx, int lddx) {
#if defined(__x86_64__)
    if (has_avx2_fma()) { masked_times_panels_avx2(start, index, r0, r1, cols, out, dy, lddy, panels, dx, lddx); return; }
#endif
    masked_times_panels_portable(start, index, r0, r1, cols, out, dy, lddy, panels, dx, lddx);
}
