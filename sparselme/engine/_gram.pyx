# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled kernels: the block factorization's Schur complement and a symbolic count.

``negative_lower_gram`` writes S[i, j] = −Σ_c L[i, c] L[j, c] for j ≤ i, where L (m × q₁)
is sparse with a fixed pattern, held by columns (CSC, rows sorted within each column) and
indexed by rows (for each row, its columns and the entry's position in the CSC arrays).
Row i of S is built from the columns that row i of L touches, so each thread writes its
own rows: Σ_c (column count)²/2 multiply-adds, no index arrays of that size.

``negative_lower_gram_counts`` is its form for L = diag(r) C diag(√w) with C a matrix of
counts (scalar indicator terms: C = Z₂ᵀZ₁), each entry repeated as often as its count, so
the inner loop reads 2-byte row indices only; S is scaled by r after each row.

``gram_block_forms`` gives, per block of k consecutive columns of L, the k × k matrix
L[:, block]ᵀ M L[:, block] for a dense symmetric M: the conditional variances' counterpart.
``sparse_times_dense`` gives L B for a dense B: the [X y] rows of S, −(L L_X1ᵀ)ᵀ;
``sparse_times_dense_counts`` the same for a count matrix laid out as above.
``pattern_product`` gives M L on L's own pattern (the selected inverse's cross block).
``cholesky_column_counts`` predicts a sparse Cholesky factor's size before it is formed.
"""

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint16_t


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define SPARSELME_PREFETCH(p) __builtin_prefetch((p), 0, 0)
    #else
    #define SPARSELME_PREFETCH(p) ((void)0)
    #endif
    """
    void SPARSELME_PREFETCH(const void* p) nogil

# The columns a row touches are scattered in memory and each is read only down to that
# row, so the loops over rows ask for the entries of the column AHEAD places on, every
# 64-byte line of them, while the current one is summed (a prefetch).
cdef enum:
    AHEAD = 6
    LINE_ROWS16 = 32  # 2-byte row indices per 64-byte line
    LINE_ROWS32 = 16  # 4-byte row indices per line
    LINE_VALUES = 8  # doubles per line


cdef bint _lower_zeroed_if_empty(double[:, :] S, Py_ssize_t nnz) except -1:
    """Check that S's rows are contiguous; with no entries (nnz = 0), zero S's lower
    triangle and return True."""
    cdef Py_ssize_t i, e
    if S.shape[0] and S.strides[1] != sizeof(double):
        raise ValueError("the rows of S must be contiguous")
    if nnz:
        return False
    for i in range(S.shape[0]):
        for e in range(i + 1):
            S[i, e] = 0.0
    return True


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
    cdef Py_ssize_t i, p, e, last, end, ahead, upto
    cdef int32_t c
    cdef double v
    cdef double* Si
    cdef const int32_t* rows
    cdef const double* vals
    if _lower_zeroed_if_empty(S, col_rows.shape[0]):  # L = 0
        return
    rows = &col_rows[0]
    vals = &col_vals[0]
    for i in prange(m, nogil=True, schedule="dynamic", chunksize=16, num_threads=threads):
        Si = &S[i, 0]
        for e in range(i + 1):
            Si[e] = 0.0
        end = row_ptr[i + 1]
        for p in range(row_ptr[i], end):
            if p + AHEAD < end:
                upto = row_pos[p + AHEAD]
                ahead = col_ptr[row_cols[p + AHEAD]]
                while ahead <= upto:
                    SPARSELME_PREFETCH(&rows[ahead])
                    ahead = ahead + LINE_ROWS32
                ahead = col_ptr[row_cols[p + AHEAD]]
                while ahead <= upto:
                    SPARSELME_PREFETCH(&vals[ahead])
                    ahead = ahead + LINE_VALUES
                SPARSELME_PREFETCH(&rows[upto])
                SPARSELME_PREFETCH(&vals[upto])
            c = row_cols[p]
            last = row_pos[p]
            v = vals[last]
            for e in range(col_ptr[c], last + 1):
                Si[rows[e]] -= v * vals[e]


def negative_lower_gram_counts(
    const int64_t[::1] row_ptr,
    const int32_t[::1] row_cols,
    const int64_t[::1] row_pos,
    const int64_t[::1] col_ptr,
    const uint16_t[::1] col_rows,
    const double[::1] w,
    const double[::1] r,
    double[:, :] S,
    int threads,
):
    """S[i, j] = −r_i r_j Σ_c w_c C[i, c] C[j, c] for j < i (and, for i = j, the same with
    C[i, c]² replaced by C[i, c](C[i, c] + 1)/2), for a count matrix C (m × q₁).

    The pattern is C's with each entry (i, c) repeated C[i, c] times (``col_rows``, rows
    sorted within columns; m ≤ 65,536), indexed by rows as in ``negative_lower_gram``;
    w (q₁,), r (m,). The caller adds the diagonal's remainder, r_i² Σ_c w_c C(C − 1)/2,
    which only repeated entries have.
    """
    cdef Py_ssize_t m = S.shape[0]
    cdef Py_ssize_t i, p, e, last, end, ahead, upto
    cdef int32_t c
    cdef double v
    cdef double* Si
    cdef const uint16_t* rows
    if r.shape[0] != m or w.shape[0] != col_ptr.shape[0] - 1:
        raise ValueError("r must have one entry per row of S and w one per column of C")
    if _lower_zeroed_if_empty(S, col_rows.shape[0]):  # C = 0
        return
    rows = &col_rows[0]
    for i in prange(m, nogil=True, schedule="dynamic", chunksize=16, num_threads=threads):
        Si = &S[i, 0]
        for e in range(i + 1):
            Si[e] = 0.0
        end = row_ptr[i + 1]
        for p in range(row_ptr[i], end):
            if p + AHEAD < end:
                ahead = col_ptr[row_cols[p + AHEAD]]
                upto = row_pos[p + AHEAD]
                while ahead <= upto:
                    SPARSELME_PREFETCH(&rows[ahead])
                    ahead = ahead + LINE_ROWS16
                SPARSELME_PREFETCH(&rows[upto])
            c = row_cols[p]
            last = row_pos[p]
            v = w[c]
            for e in range(col_ptr[c], last + 1):
                Si[rows[e]] -= v
        v = r[i]
        for e in range(i + 1):
            Si[e] *= v * r[e]


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


def cholesky_column_counts(const int64_t[::1] indptr, const int32_t[::1] indices):
    """(n,) column counts of the Cholesky factor of a symmetric pattern, without forming it.

    ``indptr``/``indices``: the pattern in CSC with both triangles, in the elimination
    order. The elimination tree by Liu's algorithm, then the row subtrees' leaves
    (Gilbert, Ng & Peyton, 1994): a leaf adds one to its column's count, the least common
    ancestor of two consecutive leaves of a row subtree (disjoint sets with path
    compression) takes one away, and the counts are sums over subtrees. O(nnz · α) time,
    whatever the fill.
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1
    cdef Py_ssize_t i, j, k, p, q, s, jprev, nxt_i, top
    parent_a = np.full(n, -1, dtype=np.int64)
    anc_a = np.full(n, -1, dtype=np.int64)
    post_a = np.empty(n, dtype=np.int64)
    head_a = np.full(n, -1, dtype=np.int64)
    next_a = np.full(n, -1, dtype=np.int64)
    first_a = np.full(n, -1, dtype=np.int64)
    delta_a = np.zeros(n, dtype=np.int64)
    maxfirst_a = np.full(n, -1, dtype=np.int64)
    prevleaf_a = np.full(n, -1, dtype=np.int64)
    cdef int64_t[::1] parent = parent_a, anc = anc_a, post = post_a, head = head_a
    cdef int64_t[::1] nxt = next_a, first = first_a, delta = delta_a
    cdef int64_t[::1] maxfirst = maxfirst_a, prevleaf = prevleaf_a
    with nogil:
        for k in range(n):  # elimination tree: i < k in column k climbs to its root
            for p in range(indptr[k], indptr[k + 1]):
                i = indices[p]
                while i != -1 and i < k:
                    nxt_i = anc[i]
                    anc[i] = k
                    if nxt_i == -1:
                        parent[i] = k
                    i = nxt_i
        for j in range(n - 1, -1, -1):  # children lists, then a depth-first postorder
            if parent[j] != -1:
                nxt[j] = head[parent[j]]
                head[parent[j]] = j
        k = 0
        for j in range(n):
            if parent[j] != -1:
                continue
            top = 0
            anc[0] = j  # anc is free again: used as the stack
            while top >= 0:
                p = anc[top]
                i = head[p]
                if i == -1:
                    top -= 1
                    post[k] = p
                    k += 1
                else:
                    head[p] = nxt[i]
                    top += 1
                    anc[top] = i
        for k in range(n):  # first descendants; the tree's leaves count 1
            j = post[k]
            delta[j] = 1 if first[j] == -1 else 0
            while j != -1 and first[j] == -1:
                first[j] = k
                j = parent[j]
        for i in range(n):
            anc[i] = i
        for k in range(n):
            j = post[k]
            if parent[j] != -1:
                delta[parent[j]] -= 1
            for p in range(indptr[j], indptr[j + 1]):
                i = indices[p]
                if i <= j or first[j] <= maxfirst[i]:
                    continue  # not a new leaf of row i's subtree
                maxfirst[i] = first[j]
                jprev = prevleaf[i]
                prevleaf[i] = j
                delta[j] += 1
                if jprev != -1:  # the previous leaf's lowest unfinished ancestor
                    q = jprev
                    while q != anc[q]:
                        q = anc[q]
                    s = jprev
                    while s != q:
                        nxt_i = anc[s]
                        anc[s] = q
                        s = nxt_i
                    delta[q] -= 1
            if parent[j] != -1:
                anc[j] = parent[j]
        for k in range(n):
            j = post[k]
            if parent[j] != -1:
                delta[parent[j]] += delta[j]
    return delta_a


def sparse_times_dense(
    const int64_t[::1] row_ptr,
    const int32_t[::1] row_cols,
    const int64_t[::1] row_pos,
    const double[::1] col_vals,
    const double[:, ::1] B,
    double[:, ::1] out,
    int threads,
):
    """out (m, r) = L B for L (m × q₁), indexed by rows as in ``negative_lower_gram``, and
    a dense B (q₁, r): r·nnz(L) multiply-adds, each a contiguous row update of out.

    The block factorization's [X y] rows of the Schur complement are −(L B)ᵀ with
    B = L_X1ᵀ.
    """
    cdef Py_ssize_t m = out.shape[0]
    cdef Py_ssize_t r = out.shape[1]
    cdef Py_ssize_t i, p, j, end
    cdef double v
    cdef double* o
    cdef const double* b
    if B.shape[1] != r:
        raise ValueError("B and out must have the same number of columns")
    if r == 0:
        return
    for i in prange(m, nogil=True, schedule="static", num_threads=threads):
        o = &out[i, 0]
        for j in range(r):
            o[j] = 0.0
        end = row_ptr[i + 1]
        for p in range(row_ptr[i], end):
            if p + AHEAD < end:
                SPARSELME_PREFETCH(&col_vals[row_pos[p + AHEAD]])
                SPARSELME_PREFETCH(&B[row_cols[p + AHEAD], 0])
            v = col_vals[row_pos[p]]
            b = &B[row_cols[p], 0]
            for j in range(r):
                o[j] = o[j] + v * b[j]


def sparse_times_dense_counts(
    const int64_t[::1] row_ptr,
    const int32_t[::1] row_cols,
    const double[::1] r,
    const double[:, ::1] B,
    double[:, ::1] out,
    int threads,
):
    """out (m, s) = diag(r) C B for a count matrix C (m × q₁) whose entries are repeated
    by their counts and indexed by rows (as in ``negative_lower_gram_counts``), r (m,), a
    dense B (q₁, s): each repeat adds a row of B, no values are read.
    """
    cdef Py_ssize_t m = out.shape[0]
    cdef Py_ssize_t s = out.shape[1]
    cdef Py_ssize_t i, p, j, end
    cdef double* o
    cdef const double* b
    if B.shape[1] != s or r.shape[0] != m:
        raise ValueError("B and out must have the same columns, r one entry per row of out")
    if s == 0:
        return
    for i in prange(m, nogil=True, schedule="static", num_threads=threads):
        o = &out[i, 0]
        for j in range(s):
            o[j] = 0.0
        end = row_ptr[i + 1]
        for p in range(row_ptr[i], end):
            if p + AHEAD < end:
                SPARSELME_PREFETCH(&B[row_cols[p + AHEAD], 0])
            b = &B[row_cols[p], 0]
            for j in range(s):
                o[j] = o[j] + b[j]
        for j in range(s):
            o[j] = o[j] * r[i]
