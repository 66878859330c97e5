"""A term's rows: its block of Z, level-major, and Z·b without forming Z."""

import numpy as np

from sparselme.engine.rows import TermRows


def test_z_block_is_level_major_and_matches_z_times():
    rng = np.random.default_rng(0)
    rows = TermRows.of(np.arange(10) % 3, np.column_stack([np.ones(10), rng.normal(size=10)]), 3)
    Z = rows.z_matrix().toarray()
    assert Z.shape == (10, 6) and rows.q == 6 and rows.nobs == 10
    for i in range(10):
        lvl = rows.codes[i]
        np.testing.assert_array_equal(Z[i, 2 * lvl : 2 * lvl + 2], rows.model[i])
        assert np.count_nonzero(Z[i]) <= 2
    b = rng.normal(size=6)
    np.testing.assert_allclose(rows.z_times(b), Z @ b)
    np.testing.assert_allclose(rows.z_times(b.reshape(3, 2)), Z @ b)


def test_take_selects_rows():
    rows = TermRows.of(np.array([0, 1, 2, 1]), np.arange(4.0), 3)
    part = rows.take(np.array([True, False, True, False]))
    np.testing.assert_array_equal(part.codes, [0, 2])
    np.testing.assert_array_equal(part.model[:, 0], [0.0, 2.0])
    assert part.nlevels == 3
