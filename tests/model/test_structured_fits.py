"""Structured random-effects terms in a model: the sparse criterion against a dense brute
force built from each structure's covariance, in crossed and nested designs, and fits."""

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_deviance_cov, structure_covariance

import sparselme as sl
from sparselme.errors import IdentifiabilityError


def _data(seed=3, groups=10, occasions=4, items=6, drop=0.15):
    """Groups g × occasions t (a factor), two rows each, crossed items, some rows missing."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), occasions * 2)
    t = np.tile(np.repeat(np.arange(occasions), 2), groups)
    item = rng.integers(0, items, len(g))
    keep = rng.uniform(size=len(g)) > drop
    g, t, item = g[keep], t[keep], item[keep]
    x = rng.normal(size=len(g))
    u = rng.normal(size=(groups, occasions)) @ np.linalg.cholesky(
        0.6 ** np.abs(np.subtract.outer(np.arange(occasions), np.arange(occasions)))
    ).T
    y = 1 + 0.5 * x + u[g, t] + rng.normal(0, 0.5, items)[item] + rng.normal(0, 0.7, len(g))
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "z": rng.normal(size=len(g)),
            "g": pd.Categorical([f"g{i:02d}" for i in g]),
            "t": pd.Categorical(t),
            "item": pd.Categorical([f"i{i}" for i in item]),
            "h": pd.Categorical([f"h{i % 3}" for i in g]),  # g nested in h
        }
    )


FORMULAS = [
    "y ~ x + cs(0 + t | g)",
    "y ~ x + homcs(0 + t | g)",
    "y ~ x + ar1(0 + t | g)",
    "y ~ x + toep(0 + t | g)",
    "y ~ x + rr(1 + x + z | g, d = 1)",
    "y ~ x + rr(0 + t | g, d = 2)",
    "y ~ x + homdiag(0 + t | g)",
    "y ~ x + diag(1 + x | g)",
    "y ~ x + ar1(0 + t | g) + (1 | item)",  # crossed
    "y ~ x + cs(0 + t | h/g)",  # nested: h and g:h
    "y ~ x + toep(0 + t | g) + (1 | g)",  # next to a plain term on the same grouping
]


def _random_theta(model, rng):
    lo, hi = model.lower_bounds, model.upper_bounds
    th = rng.normal(size=len(lo))
    th = np.where(lo == 0, 0.2 + np.abs(th), th)
    box = np.isfinite(hi)
    th[box] = lo[box] + (hi[box] - lo[box]) * rng.uniform(0.05, 0.95, box.sum())
    return th


@pytest.mark.parametrize("formula", FORMULAS)
def test_criterion_matches_the_dense_brute_force(formula):
    model = sl.LinearMixedModel.from_formula(formula, _data())
    rng = np.random.default_rng(11)
    o = model.pls.theta_offsets
    thetas = [_random_theta(model, rng) for _ in range(3)]
    on_bound = thetas[0].copy()  # a correlation at the end of its range: singular, finite
    box = np.isfinite(model.upper_bounds)
    on_bound[box] = model.upper_bounds[box]
    for theta in thetas + [on_bound]:
        covs = [
            structure_covariance(t.covariance, theta[o[s] : o[s + 1]])
            for s, t in enumerate(model.design.terms)
        ]
        for reml in (True, False):
            want = dense_deviance_cov(model, covs, reml)
            assert model.objective(theta, reml) == pytest.approx(want, rel=1e-9, abs=1e-8)


@pytest.mark.parametrize("formula", FORMULAS[:4] + FORMULAS[8:9])
def test_fit_reaches_the_dense_optimum(formula):
    """The fit's criterion is the brute force's at its θ, and no nearby θ is better."""
    data = _data()
    res = sl.lmer(formula, data, REML=False)
    model = res.engine
    theta = res.theta
    o = model.pls.theta_offsets

    def dense(th):
        covs = [
            structure_covariance(t.covariance, th[o[s] : o[s + 1]])
            for s, t in enumerate(model.design.terms)
        ]
        return dense_deviance_cov(model, covs, reml=False)

    best = dense(theta)
    assert res.deviance == pytest.approx(best, abs=1e-7)
    rng = np.random.default_rng(0)
    lo, hi = model.lower_bounds, model.upper_bounds
    for _ in range(10):
        trial = np.clip(theta + 1e-3 * rng.normal(size=len(theta)), lo, hi)
        assert dense(trial) >= best - 1e-7


def test_structures_report_their_parameter_counts():
    data = _data()
    counts = {
        "y ~ x + cs(0 + t | g)": 5,
        "y ~ x + homcs(0 + t | g)": 2,
        "y ~ x + ar1(0 + t | g)": 2,
        "y ~ x + toep(0 + t | g)": 7,
        "y ~ x + rr(0 + t | g, d = 2)": 7,
        "y ~ x + homdiag(0 + t | g)": 1,
        "y ~ x + us(0 + t | g)": 10,
    }
    for formula, n_theta in counts.items():
        model = sl.LinearMixedModel.from_formula(formula, data)
        assert model.n_theta == n_theta, formula
    res = sl.lmer("y ~ x + ar1(0 + t | g)", data, REML=False)
    assert res.npar == 2 + 2 + 1
    assert res.AIC == pytest.approx(res.deviance + 2 * 5)
    assert res.BIC == pytest.approx(res.deviance + np.log(res.nobs) * 5)


def test_term_labels_and_varcorr_of_a_structure():
    res = sl.lmer("y ~ x + ar1(0 + t | g) + (1 | item)", _data())
    labels = [t.label() for t in res.terms]
    assert "ar1(0 + t | g)" in labels and "(1 | item)" in labels
    vc = res.varcorr
    g = vc[vc.grp == "g"]
    sd = g[g.var2.isna()].sdcor.to_numpy()
    np.testing.assert_allclose(sd, sd[0])  # one variance for all occasions
    cor = g[g.var2.notna()].set_index(["var1", "var2"]).sdcor
    rho = cor[("t0", "t1")]
    assert cor[("t0", "t2")] == pytest.approx(rho**2)
    assert cor[("t0", "t3")] == pytest.approx(rho**3)
    assert "ar1(0 + t | g): ar1, rho" in res.summary()


def test_time_factor_with_one_level_is_refused():
    data = _data().assign(one=pd.Categorical(["a"] * len(_data())))
    with pytest.raises(IdentifiabilityError, match="ar1.*at least 2"):
        sl.lmer("y ~ x + ar1(0 + one | g)", data)


def test_effects_as_many_as_observations():
    """One row per group and occasion: an AR(1) term (k ≥ 3) is identifiable, an
    unstructured one, an AR(1) over 2 occasions or a homogeneous diagonal is not."""
    rng = np.random.default_rng(1)
    g, t = np.repeat(np.arange(15), 4), np.tile(np.arange(4), 15)
    data = pd.DataFrame(
        {"y": rng.normal(size=60), "g": pd.Categorical(g), "t": pd.Categorical(t),
         "t2": pd.Categorical(t % 2)}
    )
    res = sl.lmer("y ~ 1 + ar1(0 + t | g)", data)
    assert np.isfinite(res.llf)
    for formula in ["y ~ 1 + (0 + t | g)", "y ~ 1 + homdiag(0 + t | g)"]:
        with pytest.raises(IdentifiabilityError, match="number of random effects"):
            sl.lmer(formula, data)
    two = data[data.t.isin([0, 1])].assign(t=lambda d: d.t.cat.remove_unused_categories())
    with pytest.raises(IdentifiabilityError, match="number of random effects"):
        sl.lmer("y ~ 1 + ar1(0 + t | g)", two)


def test_confounded_structured_terms_are_refused():
    """An intercept next to a compound-symmetric factor term on the same grouping adds
    nothing the correlation cannot (both move every entry of the covariance alike)."""
    with pytest.raises(IdentifiabilityError, match="cannot be told apart"):
        sl.lmer("y ~ x + homcs(0 + t | g) + (1 | g)", _data())


def test_homogeneous_compound_symmetry_is_the_nested_intercepts_model():
    """homcs(0 + m | w) with ρ ≥ 0 is (1 | w) + (1 | w:m): the same likelihood."""
    machines = sl.datasets.load("Machines")
    for reml in (True, False):
        cs = sl.lmer("score ~ Machine + homcs(0 + Machine | Worker)", machines, REML=reml)
        nested = sl.lmer(
            "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", machines, REML=reml
        )
        assert cs.llf == pytest.approx(nested.llf, abs=1e-7)
        sd, rho, sigma = cs.sdcor
        s_wm, s_w, _ = nested.sdcor  # lme4's order: more levels first
        assert rho * sd**2 == pytest.approx(s_w**2, rel=1e-4)
        assert sd**2 == pytest.approx(s_w**2 + s_wm**2, rel=1e-4)
