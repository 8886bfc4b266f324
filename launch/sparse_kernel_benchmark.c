// Driver of launch/sparse-kernel-benchmark: times the CSparseProducts kernels of one Linear
// layer on a random input batch of a given density, single-threaded, and prints one line per
// kernel (the forward product, the weight gradient, the masked input gradient, and the packing
// of W^T into panels that the forward pays once per step): the best of REPEATS runs in
// milliseconds, and the useful GFLOP/s of the products (2 x nonzeros x outputs, the work a dense
// sgemm would spend on the nonzeros only).
//
//   sparse_kernel_benchmark ROWS INPUTS OUTPUTS DENSITY REPEATS LABEL
#include "CSparseProducts.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {  // [0, 1), a fixed sequence on every machine
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(state >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv) {
    if (argc != 7) { fprintf(stderr, "usage: %s ROWS INPUTS OUTPUTS DENSITY REPEATS LABEL\n", argv[0]); return 2; }
    int rows = atoi(argv[1]), cols = atoi(argv[2]), out = atoi(argv[3]), repeats = atoi(argv[5]);
    double density = atof(argv[4]);
    const char *label = argv[6];
    int panels = (out + 63) / 64;
    float *x = calloc((size_t)rows * cols, 4), *w = malloc((size_t)out * cols * 4), *dy = malloc((size_t)rows * out * 4);
    float *y = malloc((size_t)rows * out * 4), *dw = malloc((size_t)out * cols * 4), *dx = malloc((size_t)rows * cols * 4);
    float *panel = malloc((size_t)panels * 64 * cols * 4), *pack = malloc((size_t)panels * rows * 32 * 4);
    int32_t *rs = malloc((size_t)(rows + 1) * 4), *ri = malloc((size_t)rows * cols * 4), *cs = malloc((size_t)(cols + 1) * 4);
    int32_t *cr = malloc((size_t)rows * cols * 4);
    float *rv = malloc((size_t)rows * cols * 4), *cv = malloc((size_t)rows * cols * 4);
    for (size_t i = 0; i < (size_t)rows * cols; i++) if (uniform() < density) x[i] = (float)uniform();
    for (size_t i = 0; i < (size_t)out * cols; i++) w[i] = (float)uniform() - 0.5f;
    for (size_t i = 0; i < (size_t)rows * out; i++) dy[i] = (float)uniform() - 0.5f;
    int64_t nonzeros = dt_sparse_rows(x, rows, cols, rs, ri, rv);
    dt_sparse_columns(rs, ri, rv, rows, cols, cs, cr, cv);
    double flops = 2.0 * (double)nonzeros * out;
    for (int p = 0; p < panels; p++) dt_pack_panel(w, cols, p * 64, out - p * 64 < 64 ? out - p * 64 : 64, panel + (size_t)p * 64 * cols);
    for (int kernel = 0; kernel < 4; kernel++) {
        double best = 1e30;
        for (int r = 0; r < repeats; r++) {
            double t = now();
            for (int p = 0; p < panels; p++) {
                int o0 = p * 64, width = out - o0 < 64 ? out - o0 : 64;
                float *packed = panel + (size_t)o0 * cols;
                if (kernel == 0) {
                    dt_sparse_times_panel(rs, ri, rv, rows, packed, width, y + o0, out);
                } else if (kernel == 1) {
                    dt_dense_t_times_sparse(cs, cr, cv, cols, rows, dy, out, o0, o0 + width, 0, dw, cols,
                                            pack + (size_t)p * rows * 32);
                }
            }
            if (kernel == 2) dt_masked_times_panels(rs, ri, 0, rows, cols, out, dy, out, panel, dx, cols);
            if (kernel == 3) for (int p = 0; p < panels; p++) dt_pack_panel(w, cols, p * 64, out - p * 64 < 64 ? out - p * 64 : 64, panel + (size_t)p * 64 * cols);
            t = now() - t;
            if (t < best) best = t;
        }
        double check = 0;
        const float *result = kernel == 0 ? y : kernel == 1 ? dw : kernel == 2 ? dx : panel;
        size_t count = kernel == 0 ? (size_t)rows * out : kernel == 1 ? (size_t)out * cols : kernel == 2 ? (size_t)rows * cols : (size_t)panels * 64 * cols;
        for (size_t i = 0; i < count; i++) check += result[i];
        static const char *names[] = {"forward", "weight gradient", "masked input gradient", "packing W^T into panels"};
        char rate[32] = "";
        if (kernel < 3) snprintf(rate, sizeof rate, "%.1f", flops / best / 1e9);
        printf("| %s | %d x %d -> %d, %.0f%% nonzero | %s | %.3f | %s | %.6g |\n", label, rows, cols, out,
               100.0 * nonzeros / ((double)rows * cols), names[kernel], best * 1e3, rate, check);
    }
    return 0;
}
