/* Does OpenBLAS give the same bits for the same sgemm at 1 and 2 threads, and for one row in
 * products of different row counts? (Deterministic mode, bench/determinism.md.) The three
 * Linear shapes: Y = X W^T, dW = dY^T X, dX = dY W, K = 794, N = 512, M from 2 to 500.
 *   gcc -O2 bench/sgemm-bits.c -o /tmp/sgemm-bits -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas && /tmp/sgemm-bits
 * OpenBLAS 0.3.21 (Debian, DYNAMIC_ARCH, Zen kernels) on the development VM, 2026-11-30:
 *   shape Y=XW^T: M values where 1 vs 2 threads differ: 11 of 11; rows differing from a 10-row product: 65 of 99
 *   shape dW=dY^T X: M values where 1 vs 2 threads differ: 9 of 11
 *   shape dX=dY W: M values where 1 vs 2 threads differ: 10 of 11; rows differing from a 10-row product: 79 of 99 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


extern void openblas_set_num_threads(int);
static void mm(int shape, int M, int N, int K, const float *A, const float *B, float *C) {
    if (shape == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, K, B, K, 0, C, N);     /* Y = X W^T  */
    else if (shape == 1) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1, A, N, B, K, 0, C, K); /* dW = dY^T X (reduction over M) */
    else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1, A, N, B, K, 0, C, K);              /* dX = dY W */
}
int main(void) {
    int K = 794, N = 512, Ms[] = {2, 7, 10, 11, 32, 64, 85, 86, 128, 256, 500};
    int maxM = 500;
    float *A = malloc(4L * maxM * 1024), *B = malloc(4L * 1024 * 1024), *C1 = malloc(4L * 1024 * 1024), *C2 = malloc(4L * 1024 * 1024), *R = malloc(4L*1024*1024);
    srand(1);
    for (long i = 0; i < maxM * 1024L; i++) A[i] = (rand() / (float)RAND_MAX - 0.5f) * ((i % 7) ? 1 : 0);
    for (long i = 0; i < 1024L * 1024; i++) B[i] = (rand() / (float)RAND_MAX - 0.5f);
    for (int shape = 0; shape < 3; shape++) {
        int threadDiff = 0, rowDiff = 0, rows = 0;
        for (int mi = 0; mi < 11; mi++) {
            int M = Ms[mi];
            long outN = shape == 0 ? (long)M * N : shape == 1 ? (long)N * K : (long)M * K;
            openblas_set_num_threads(1); mm(shape, M, N, K, A, B, C1);
            openblas_set_num_threads(2); mm(shape, M, N, K, A, B, C2);
            if (memcmp(C1, C2, 4 * outN)) threadDiff++;
            if (shape != 1) {
                openblas_set_num_threads(1); mm(shape, 10, N, K, A, B, R);
                int w = shape == 0 ? N : K;
                for (int r = 0; r < (M < 10 ? M : 10); r++) { rows++; if (memcmp(R + r * w, C1 + r * w, 4 * w)) rowDiff++; }
            }
        }
        printf("shape %s: M values where 1 vs 2 threads differ: %d of 11; rows differing from a 10-row product: %d of %d\n",
               shape == 0 ? "Y=XW^T" : shape == 1 ? "dW=dY^T X" : "dX=dY W", threadDiff, rowDiff, rows);
    }
    return 0;
}
