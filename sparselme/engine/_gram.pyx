# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled kernels for the block factorization's Schur complement.

``negative_lower_gram`` writes S[i, j] = −Σ_c L[i, c] L[j, c] for j ≤ i, where L (m × q₁)
is sparse with a fixed pattern, held by columns (CSC, rows sorted within each column) and
indexed by rows (for each row, its columns and the entry's position in the CSC arrays).
Row i of S is built from the columns that row i of L touches, so each thread writes its
own rows: Σ_c (column count)²/2 multiply-adds, no index arrays of that size.

``gram_block_forms`` gives, per block of k consecutive columns of L, the k × k matrix
L[:, block]ᵀ M L[:, block] for a dense symmetric M: the conditional variances' counterpart.
``pattern_product`` gives M L on L's own pattern (the selected inverse's cross block).
"""

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t


def negative_lower_gram(
    const int64_t[::1] row_ptr,
    const int32_t[::1] row_cols,
    const int64_t[::1] row_pos,
    const int64_t[::1] col_ptr,
    const int32_t[::1] col_rows,
    const double[::1] col_vals,
    double[:, :] S,
    int threads,
):
    """S[i, j] = −(L Lᵀ)[i, j] for j ≤ i; S (m, m) has contiguous rows (a C-ordered array or
    its leading block), its upper triangle is untouched.

    Row i of L is given by its columns (``row_cols``) and, for each, the position of the
    entry (i, c) in the column arrays (``row_pos``). As rows are sorted within columns,
    the entries of column c from its start up to that position are those with row ≤ i.
    """
    cdef Py_ssize_t m = S.shape[0]
    cdef Py_ssize_t i, p, e, last
    cdef int32_t c
    cdef double v
    cdef double* Si
    cdef const int32_t* rows
    cdef const double* vals
    if m and S.strides[1] != sizeof(double):
        raise ValueError("the rows of S must be contiguous")
    if col_rows.shape[0] == 0:  # L = 0
        for i in range(m):
            for e in range(i + 1):
                S[i, e] = 0.0
        return
    rows = &col_rows[0]
    vals = &col_vals[0]
    for i in prange(m, nogil=True, schedule="dynamic", chunksize=16, num_threads=threads):
        Si = &S[i, 0]
        for e in range(i + 1):
            Si[e] = 0.0
        for p in range(row_ptr[i], row_ptr[i + 1]):
            c = row_cols[p]
            last = row_pos[p]
            v = vals[last]
            for e in range(col_ptr[c], last + 1):
                Si[rows[e]] -= v * vals[e]


def gram_block_forms(
    const int64_t[::1] col_ptr,
    const int32_t[::1] col_rows,
    const double[::1] col_vals,
    const double[:, ::1] M,
    double[:, :, ::1] out,
    int threads,
):
    """out[l, a, b] = L[:, lk+a]ᵀ M L[:, lk+b]; M (m, m) symmetric, out (levels, k, k)."""
    cdef Py_ssize_t levels = out.shape[0]
    cdef Py_ssize_t k = out.shape[1]
    cdef Py_ssize_t l, a, b, e, f, ca, cb
    cdef double acc
    for l in prange(levels, nogil=True, schedule="dynamic", chunksize=64, num_threads=threads):
        for a in range(k):
            ca = l * k + a
            for b in range(a + 1):
                cb = l * k + b
                acc = 0.0
                for e in range(col_ptr[ca], col_ptr[ca + 1]):
                    for f in range(col_ptr[cb], col_ptr[cb + 1]):
                        acc = acc + col_vals[e] * col_vals[f] * M[col_rows[e], col_rows[f]]
                out[l, a, b] = acc
                out[l, b, a] = acc


def pattern_product(
    const int64_t[::1] col_ptr,
    const int32_t[::1] col_rows,
    const double[::1] col_vals,
    const double[:, ::1] M,
    double[::1] out,
    int threads,
):
    """(M L) on L's own pattern: out[e] = Σ_f M[row(e), row(f)] L[f] over the entries f of
    the column holding entry e; M (m, m), out aligned with ``col_vals``.

    The selected inverse's cross block (A⁻¹)₂₁ = −S⁻¹L₂₁L₁₁⁻¹ needs S⁻¹L₂₁ only where
    A₂₁ has entries: Σ_c (column count)² multiply-adds.
    """
    cdef Py_ssize_t ncols = col_ptr.shape[0] - 1
    cdef Py_ssize_t c, e, f
    cdef double acc
    for c in prange(ncols, nogil=True, schedule="dynamic", chunksize=64, num_threads=threads):
        for e in range(col_ptr[c], col_ptr[c + 1]):
            acc = 0.0
            for f in range(col_ptr[c], col_ptr[c + 1]):
                acc = acc + M[col_rows[e], col_rows[f]] * col_vals[f]
            out[e] = acc
