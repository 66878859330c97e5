"""influence(): refits without each case or group, against lme4 1.1-31's influence.merMod.

lme4's refits stop at its optimizer's tolerance; sparselme's reach a criterion at least as
low (checked at lme4's estimates), so the variance components agree to about 1e-3
relative and the fixed effects to about 1e-5; group deletions of the balanced sleepstudy
design, whose fixed effects do not depend on θ, agree to rounding.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from references import lme4_parity as reference  # noqa: E402

import sparselme as sl
from sparselme.analysis.influence import fit_without
from sparselme.engine.deletion import crossproducts_without, objective_without
from sparselme.errors import DataError


@cache
def sleepstudy(reml: bool = True):
    return sl.lmer("Reaction ~ Days + (Days | Subject)", sl.datasets.load("sleepstudy"), REML=reml)


def theta_of(var_cov: list[float]) -> np.ndarray:
    """lme4's θ of a (Days | Subject) fit from σ², v[(Intercept)], C[Days,(Intercept)], v[Days]."""
    s2, v0, c, v1 = var_cov
    L = np.linalg.cholesky(np.array([[v0, c], [c, v1]]) / s2)
    return np.array([L[0, 0], L[1, 0], L[1, 1]])


def check_against(inf, ref, fixed_rtol, vc_rtol, exact_fixed=False):
    assert inf.groups == ref["groups"].replace(".case", "case")
    # R names cases by their row names 1..n, pandas by the data's index (0..n-1 here)
    labels = [str(u + 1) if inf.groups == "case" else str(u) for u in inf.deleted]
    assert labels == ref["deleted"][: len(inf.deleted)]
    assert list(inf.fixed_effects_deleted.columns) == ref["fixef_names"]
    assert list(inf.var_cov_comps.index) == ref["var_cov_comps_names"]
    np.testing.assert_allclose(inf.var_cov_comps, ref["var_cov_comps"], rtol=2e-4)
    rows = len(inf.deleted)
    fixed = np.array(ref["fixed_effects_deleted"])[:rows]
    np.testing.assert_allclose(inf.fixed_effects_deleted, fixed, rtol=fixed_rtol)
    vc = np.array(ref["var_cov_comps_deleted"])[:rows]
    scale = np.abs(vc).max(axis=0)  # a covariance near 0 is compared on its column's scale
    np.testing.assert_allclose(inf.var_cov_comps_deleted / scale, vc / scale, atol=vc_rtol)
    dfbeta = np.array(ref["dfbeta"])[:rows]
    atol = 1e-9 if exact_fixed else fixed_rtol * np.abs(fixed).max()
    np.testing.assert_allclose(inf.dfbeta(), dfbeta, atol=atol)
    if ref["dfbetas"] is not None:
        np.testing.assert_allclose(inf.dfbetas(), np.array(ref["dfbetas"])[:rows], rtol=2e-3)
    assert inf.converged.all()  # our refits; lme4's are compared by their estimates above


@pytest.mark.parametrize("reml", [True, False])
def test_subject_deletion_matches_lme4(reml):
    key = "diagnostics_sleepstudy_reml" if reml else "diagnostics_sleepstudy_ml"
    ref = reference(key)["influence_subject"]
    inf = sleepstudy(reml).influence(groups="Subject")
    check_against(inf, ref, fixed_rtol=1e-11, vc_rtol=2e-3, exact_fixed=True)
    np.testing.assert_allclose(inf.cooks_distance(), ref["cooks_distance"], rtol=2e-3)
    assert isinstance(inf.cooks_distance(), pd.Series)
    assert (inf.function_evals > 0).all()


def test_crossed_group_deletion_matches_lme4():
    ref = reference("diagnostics_penicillin_crossed")
    res = sl.lmer(ref["formula"], sl.datasets.load("Penicillin"))
    inf = res.influence(groups="sample")
    check_against(inf, ref["influence_sample"], fixed_rtol=1e-8, vc_rtol=1e-4)
    np.testing.assert_allclose(
        inf.cooks_distance(), ref["influence_sample"]["cooks_distance"], rtol=1e-4
    )


@pytest.mark.parametrize("reml", [True, False])
def test_case_deletion_of_some_rows_matches_lme4(reml):
    key = "diagnostics_sleepstudy_reml" if reml else "diagnostics_sleepstudy_ml"
    ref = reference(key)["influence_case"]
    res = sleepstudy(reml)
    labels = list(res.design.row_index[:6])
    inf = res.influence(units=labels)
    assert list(inf.deleted) == labels and inf.n_units == 180
    check_against(inf, ref, fixed_rtol=1e-5, vc_rtol=2e-3)
    np.testing.assert_allclose(inf.cooks_distance(), np.array(ref["cooks_distance"])[:6], rtol=5e-3)


@pytest.mark.parametrize("reml", [True, False])
def test_case_refits_are_never_worse_than_lme4s(reml):
    """At lme4's own deleted-case estimates, sparselme's refit has the lower criterion."""
    key = "diagnostics_sleepstudy_reml" if reml else "diagnostics_sleepstudy_ml"
    ref = reference(key)["influence_case"]
    res = sleepstudy(reml)
    for i in (0, 2, 57, 131, 179):
        fit, converged = fit_without(res, np.array([i]))
        assert converged
        theirs = fit.engine.objective(theta_of(ref["var_cov_comps_deleted"][i]), reml)
        assert fit.optsum.fmin <= theirs + 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("reml", [True, False])
def test_every_case_deletion_matches_lme4(reml):
    key = "diagnostics_sleepstudy_reml" if reml else "diagnostics_sleepstudy_ml"
    ref = reference(key)["influence_case"]
    res = sleepstudy(reml)
    inf = res.influence()
    check_against(inf, ref, fixed_rtol=1e-5, vc_rtol=2e-2)
    np.testing.assert_allclose(inf.cooks_distance(), ref["cooks_distance"], rtol=2e-2)
    # where the covariance differs most, lme4 stopped short: our criterion is lower there
    vc = np.array(ref["var_cov_comps_deleted"])
    worst = np.argsort(-np.abs(inf.var_cov_comps_deleted.to_numpy() - vc)[:, 2])[:3]
    for i in worst:
        fit, _ = fit_without(res, np.array([i]))
        assert fit.optsum.fmin <= fit.engine.objective(theta_of(vc[i]), reml) + 1e-9


@pytest.mark.parametrize("factorization", ["block", "sparse"])
def test_deleted_objective_equals_a_model_built_without_the_rows(factorization):
    """Subtracted cross-products on the full pattern give the deviance of the smaller data."""
    pen = sl.datasets.load("Penicillin")
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    res = sl.LinearMixedModel.from_formula(formula, pen, factorization=factorization).fit()
    model = res.engine
    drop = np.flatnonzero(pen["plate"].astype(str).isin(["a", "k"]).to_numpy())
    drop = np.r_[drop, 100]
    X, y = model.engine_X(), model.engine_y()
    pls = objective_without(model.pls, [r.take(drop) for r in model.design.rows], X[drop], y[drop])
    kept = pen.drop(index=pen.index[drop]).reset_index(drop=True)
    fresh = sl.LinearMixedModel.from_formula(formula, kept, factorization=factorization)
    for theta in ([1.5, 3.5], [0.3, 1.0], [2.0, 0.01]):
        for reml in (True, False):
            assert pls.deviance(np.array(theta), reml) == pytest.approx(
                fresh.objective(np.array(theta), reml), rel=1e-11
            )
    # the full model's factor is untouched by the twin's
    assert model.objective(res.theta, True) == pytest.approx(res.optsum.fmin, rel=1e-13)
    cp = crossproducts_without(
        model.cp, [r.take(drop) for r in model.design.rows], X[drop], y[drop]
    )
    assert cp.nobs == len(pen) - len(drop)
    assert all(cp.cross[k].rows.shape == model.cp.cross[k].rows.shape for k in cp.cross)


def test_groups_as_labels_of_the_rows_and_errors():
    res = sleepstudy()
    sleep = sl.datasets.load("sleepstudy")
    by_label = res.influence(groups=sleep["Subject"], units=["308", "309"])
    by_name = res.influence(groups="Subject", units=["308", "309"])
    np.testing.assert_allclose(by_label.fixed_effects_deleted, by_name.fixed_effects_deleted)
    assert by_label.groups == "Subject"
    with pytest.raises(DataError, match="not a grouping factor"):
        res.influence(groups="Days")
    with pytest.raises(DataError, match="not among"):
        res.influence(groups="Subject", units=["nobody"])
    with pytest.raises(ValueError, match="labels"):
        res.influence(groups=np.arange(5))
    with pytest.raises(ValueError, match="which"):
        by_name.dfbeta("random")
    assert by_name.dfbeta("var_cov").shape == (2, 4)


def test_a_deletion_that_leaves_too_few_rows_is_nan():
    data = pd.DataFrame(
        {"y": [1.0, 2.0, 1.5, 3.0, 2.5, 2.0], "x": [0, 1, 0, 1, 0, 1.0], "g": list("aabbcc")}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sl.lmer("y ~ x + (1 | g)", data)
        inf = res.influence(groups=np.array(["u"] * 5 + ["v"]))
    assert np.isnan(inf.fixed_effects_deleted.loc["u"]).all() and not inf.converged["u"]
    assert np.isfinite(inf.fixed_effects_deleted.loc["v"]).all()
