"""Statistics, their exact expectations and the component estimates, against brute force."""

import warnings

import numpy as np
import pytest

from sparselme.errors import IdentifiabilityError
from sparselme.moments import fit_moments, in_memory, layout_for
from sparselme.moments.components import efficient_statistics, gao_owen_statistics, ols
from sparselme.moments.counts import Counts, count_pass
from sparselme.moments.quadratic import equations, level_moments, residual_pass
from sparselme.moments.source import Sums

from .dense import Dense, pair_ustat, q_matrix, small_design

CASES = [
    # (seed, levels, p_extra, repeat_cells)
    (1, (15, 9), 2, True),
    (2, (30, 6), 1, False),
    (3, (8, 7, 5), 2, True),
    (4, (12, 10), 0, True),
]


def _system(cols, factors, x, chunk_rows=None, interactions=None, pilot=None):
    """All statistics (Gao–Owen and efficient) and their equations, computed by passes."""
    from sparselme.moments.components import stats_pass

    lay = layout_for(cols, factors, x=x, interactions=interactions)
    reduce = in_memory(cols, chunk_rows)
    counts = Counts.from_sums(reduce(count_pass, lay, 1 << 20), lay)
    beta, G = ols(counts)
    S, SS = level_moments(reduce(residual_pass, lay, beta), lay.K)
    pilot = np.ones(lay.K + 1) if pilot is None else pilot
    stats = gao_owen_statistics(counts, lay.factors) + efficient_statistics(
        counts, lay.factors, pilot
    )
    s3 = reduce(stats_pass, lay, counts, stats, None)
    return lay, counts, stats, equations(counts, stats, S, SS, s3, G)


@pytest.mark.parametrize("seed, levels, p_extra, repeat", CASES)
def test_statistics_and_expectations_equal_brute_force(seed, levels, p_extra, repeat):
    cols = small_design(
        seed,
        n=110,
        levels=levels,
        p_extra=p_extra,
        repeat_cells=repeat,
        sigma2=(1.0,) * (len(levels) + 1),
    )
    factors = [f"f{k}" for k in range(len(levels))]
    x = [f"x{j + 1}" for j in range(p_extra)]
    lay, counts, stats, eq = _system(cols, factors, x, pilot=np.linspace(0.5, 1.5, len(levels) + 1))
    d = Dense(cols, factors, list(lay.levels), x)
    r = d.M @ d.y  # OLS residuals
    # Gao–Owen U-statistics: ½ Σ over ordered pairs sharing a level, by brute force
    same = [(Z @ Z.T) > 0 for Z in d.Z] + [np.ones((d.n, d.n), dtype=bool)]
    np.testing.assert_allclose(eq.U[: len(same)], [pair_ustat(r, s) for s in same], rtol=1e-10)
    Q = [q_matrix(d, st) for st in stats]
    np.testing.assert_allclose(eq.U, [r @ q @ r for q in Q], rtol=1e-9)
    Qt = [d.M @ q @ d.M for q in Q]
    C = np.array([[np.trace(q @ W) for W in d.W] for q in Qt])
    scale = np.abs(C).max(axis=1, keepdims=True)
    np.testing.assert_allclose(eq.C / scale, C / scale, atol=1e-10)
    TT = np.array([[np.trace(a @ b) for b in Qt] for a in Qt])
    np.testing.assert_allclose(eq.tilde_traces(), TT, rtol=1e-8, atol=1e-8 * np.abs(TT).max())


def test_repeated_cells_and_interactions():
    """(1|a) + (1|b) + (1|a:b) with repeated cells: the cell factor is nested in both,
    declared or detected, and the expectations stay exact."""
    cols = small_design(6, n=160, levels=(7, 6), p_extra=1)
    _, cols["ab"] = np.unique(cols["f0"] * 6 + cols["f1"], return_inverse=True)
    factors = ["f0", "f1", "ab"]
    lay, counts, stats, declared = _system(cols, factors, ["x1"], interactions={"ab": ("f0", "f1")})
    _, counts2, _, detected = _system(cols, factors, ["x1"])
    assert counts2.nested[0, 2] and counts2.nested[1, 2] and not counts2.nested[0, 1]
    np.testing.assert_allclose(declared.C, detected.C, rtol=1e-12)
    d = Dense(cols, factors, list(lay.levels), ["x1"])
    Qt = [d.M @ q_matrix(d, st) @ d.M for st in stats]
    C = np.array([[np.trace(q @ W) for W in d.W] for q in Qt])
    np.testing.assert_allclose(detected.C, C, rtol=1e-9, atol=1e-8 * np.abs(C).max())


def test_interaction_with_one_row_per_cell_is_refused():
    cols = small_design(3, n=200, levels=(10, 8), p_extra=1, repeat_cells=False)
    _, cols["ab"] = np.unique(cols["f0"] * 8 + cols["f1"], return_inverse=True)
    lay = layout_for(cols, ["f0", "f1", "ab"], x=["x1"], interactions={"ab": ("f0", "f1")})
    with pytest.raises(IdentifiabilityError, match="one row per cell"):
        fit_moments(in_memory(cols), lay)


def test_declared_interaction_must_be_nested():
    cols = small_design(7, n=80, levels=(6, 5, 4), p_extra=0)
    with pytest.raises(IdentifiabilityError, match="interaction"):
        _system(cols, ["f0", "f1", "f2"], [], interactions={"f2": ("f0", "f1")})


def test_estimates_are_unbiased_over_replicates():
    """Mean of the Gao–Owen and the efficient estimates over simulated responses on one
    design approaches σ²; the efficient one varies less, its reported SE matches."""
    base = small_design(8, n=400, levels=(40, 12), p_extra=2)
    sigma2 = np.array([1.0, 0.5, 1.0])
    lay = layout_for(base, ["f0", "f1"], x=["x1", "x2"])
    d = Dense(base, ["f0", "f1"], list(lay.levels), ["x1", "x2"])
    Lchol = np.linalg.cholesky(d.V(sigma2))
    rng = np.random.default_rng(0)
    go, gmm, se = [], [], []
    for rep in range(120):
        cols = dict(base, y=d.X @ [1.0, 2.0, -1.0] + Lchol @ rng.standard_normal(d.n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_moments(in_memory(cols), lay, variance_reps=10, seed=rep, max_iter=1)
        go.append(fit.sigma2_gao_owen)
        gmm.append(fit.sigma2_raw)
        se.append(fit.sigma2_se)
    for est in (np.array(go), np.array(gmm)):
        sem = est.std(axis=0) / np.sqrt(len(est))
        assert np.all(np.abs(est.mean(axis=0) - sigma2) < 4 * sem)
    sd = np.array(gmm).std(axis=0)
    assert np.all(sd <= 1.1 * np.array(go).std(axis=0))
    np.testing.assert_allclose(np.mean(se, axis=0), sd, rtol=0.25)


def test_chunks_give_the_same_equations():
    cols = small_design(9, n=130, levels=(11, 7), p_extra=2)
    *_, one = _system(cols, ["f0", "f1"], ["x1", "x2"])
    for rows in (1, 7, 64):
        *_, many = _system(cols, ["f0", "f1"], ["x1", "x2"], chunk_rows=rows)
        np.testing.assert_allclose(many.U, one.U, rtol=1e-9)
        np.testing.assert_allclose(many.C, one.C, rtol=1e-9)
        np.testing.assert_allclose(
            many.trQQ, one.trQQ, rtol=1e-9, atol=1e-12 * np.abs(one.trQQ).max()
        )


def test_rank_deficient_x_and_degenerate_factor_raise():
    cols = small_design(10, n=60, levels=(6, 5), p_extra=1)
    cols["x2"] = 2.0 * cols["x1"]
    lay = layout_for(cols, ["f0", "f1"], x=["x1", "x2"])
    with pytest.raises(IdentifiabilityError, match="linearly dependent"):
        fit_moments(in_memory(cols), lay)
    cols = small_design(10, n=60, levels=(6, 5), p_extra=0)
    cols["one"] = np.zeros(60, dtype=np.int64)  # a factor with a single level
    with pytest.raises(IdentifiabilityError, match="singular"):
        fit_moments(in_memory(cols), layout_for(cols, ["f0", "one"]))


def test_sums_of_nothing():
    assert Sums.sum([None, None]) is None
    assert (Sums(a=np.ones(2)) + None)["a"].tolist() == [1.0, 1.0]
