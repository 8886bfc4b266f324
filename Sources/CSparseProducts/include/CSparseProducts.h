// Products with a sparse operand: the input rows of a Linear layer when most of their entries are
// exactly zero (MNIST pixels: 19% nonzero; hidden ReLU outputs: ~22% after the first layer).
//
// The dense operand is read in contiguous blocks of output columns, so each block stays in
// cache while every row's nonzeros stream past it. Each output is summed over the nonzeros in
// ascending order (two interleaved partial sums in the weight gradient, then added), so the
// bits depend on the data and the column block only: never on how blocks are shared among
// threads, nor on which other rows are in the batch.
//
// Shapes (row-major): x[rows, cols] sparse; wt[cols, ldw] = W^T; y[rows, ldy]; dy[rows, lddy];
// dw[out, lddw].
#ifndef DISTTRAIN_CSPARSEPRODUCTS_H
#define DISTTRAIN_CSPARSEPRODUCTS_H

#include <stdint.h>

/// How many of x[0 ..< count] are not zero.
int64_t dt_count_nonzero(const float *x, int64_t count);

/// Nonzeros of x[rows, cols] by row (CSR): row r's are index/value[start[r] ..< start[r + 1]],
/// columns ascending. `start` has rows + 1 entries; index/value room for rows * cols. Returns
/// the number of nonzeros.
int64_t dt_sparse_rows(const float *x, int rows, int cols, int32_t *start, int32_t *index, float *value);

/// dt_sparse_rows in parts that can run at once: rows r0 ..< r1 compacted into index/value from
/// position r0 * cols (a region of their own), start[r0 ..< r1] positions in that layout;
/// returns their nonzeros. dt_sparse_rows_join then moves the parts (of chunk_rows rows each,
/// counts[k] nonzeros in part k) together: the same arrays as one dt_sparse_rows call.
int64_t dt_sparse_rows_part(const float *x, int r0, int r1, int cols, int32_t *start, int32_t *index, float *value);
int64_t dt_sparse_rows_join(int rows, int cols, int chunk_rows, const int64_t *counts, int32_t *start, int32_t *index,
                            float *value);

/// The same nonzeros by column (CSC) from the CSR form: column c's are row/value[start[c] ..<
/// start[c + 1]], rows ascending. `start` has cols + 1 entries.
void dt_sparse_columns(const int32_t *rowStart, const int32_t *rowIndex, const float *rowValue, int rows, int cols,
                       int32_t *start, int32_t *row, float *value);

/// y[r, 0 ..< width] = sum over row r's nonzeros (c, v) of v * panel[c, 0 ..< width], for every
/// row; `panel` is [cols, width] contiguous (a `dt_pack_panel` of W), width <= 64.
void dt_sparse_times_panel(const int32_t *start, const int32_t *index, const float *value, int rows,
                           const float *panel, int width, float *y, int ldy);

/// panel[c, j] = w[o0 + j, c] for j < width, c < cols: rows o0 ..< o0 + width of W[out, cols]
/// (row-major, ld = cols) transposed into one contiguous block, so a product reads it without
/// cache-set conflicts (rows of W^T 2 KB apart would share a few sets).
void dt_pack_panel(const float *w, int cols, int o0, int width, float *panel);

/// dw[o, c] = beta * dw[o, c] + sum over column c's nonzeros (r, v) of v * dy[r, o], for o in
/// o0 ..< o1 and every column c (beta 0 or 1). `pack` is scratch for rows * 32 floats (dy's
/// columns of one 32-wide block copied together). `rows` is the row count of dy.
void dt_dense_t_times_sparse(const int32_t *start, const int32_t *row, const float *value, int cols, int rows,
                             const float *dy, int lddy, int o0, int o1, float beta, float *dw, int lddw, float *pack);


/// dx[r, c] = sum over o < out of dy[r, o] * W[o, c] where x[r, c] is one of row r's nonzeros
/// (CSR start/index), 0 elsewhere, for rows r0 ..< r1: the input gradient of a layer whose input
/// came out of a ReLU, whose backward zeroes every other entry anyway. W is read from its
/// panels (`dt_pack_panel` of 64 rows each, the last narrower): panel p at panels + p * 64 * cols.
void dt_masked_times_panels(const int32_t *start, const int32_t *index, int r0, int r1, int cols, int out,
                            const float *dy, int lddy, const float *panels, float *dx, int lddx);

#endif
