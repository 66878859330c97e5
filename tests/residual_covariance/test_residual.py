"""Residual variance structures (VarIdent, AR1): nlme references, dense brute force, API.

References: tests/reference/nlme/*.json, written by tests/reference/nlme/make_reference.R
(nlme 3.1-162, R 4.2.2); R is not needed here.
"""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_deviance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from references import REFERENCE  # noqa: E402

import sparselme as sl
from sparselme.engine.crossprod import chunk_crossproducts
from sparselme.errors import MissingDataError, UnknownColumnError
from sparselme.residual import ResidualModel, ResidualStructureError
from sparselme.statsmodels_compat.residual import compat_covariance

REF_DIR = REFERENCE / "nlme"
CASES = sorted(p.stem for p in REF_DIR.glob("*.json") if p.stem != "sleepstudy_plain_rs")


# ======================================================================================
# Data of the references
# ======================================================================================


def reference_data(ref: dict) -> pd.DataFrame:
    """The data nlme fitted, with the same row selection (``drop_rule``)."""
    if ref["data"] == "dietox_sim":
        sim = pd.read_csv(REF_DIR / "dietox_sim.csv")
        sim["Pig"] = pd.Categorical(sim["Pig"])
        sim["Evit"] = pd.Categorical(sim["Evit"])
        return sim[sim["Keep"] == 1] if ref.get("drop_rule") == "Keep == 0" else sim
    data = sl.datasets.load(ref["data"])
    if ref["data"] == "sleepstudy":
        period = np.where(data.Days <= 2, "d0_2", np.where(data.Days <= 5, "d3_5", "d6_9"))
        data["Period"] = pd.Categorical(period)
    if ref.get("drop_rule") == "Time in (5, 6) and int(Pig) odd":
        odd = data["Pig"].astype(str).astype(int) % 2 == 1
        data = data[~(data["Time"].isin([5, 6]) & odd)]
    return data


def reference_structure(ref: dict):
    if "stratum" in ref:
        return sl.VarIdent(ref["stratum"])
    time, group = ref["residual"][len("AR1(") : -1].split(", ")
    return sl.AR1(time=time, group=group)


def load(case: str) -> dict:
    return json.loads((REF_DIR / f"{case}.json").read_text())


@pytest.fixture(scope="module")
def fits() -> dict:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in CASES:
            ref = load(case)
            out[case] = sl.lmer(
                ref["formula"], reference_data(ref), REML=ref["REML"],
                residual=reference_structure(ref),
            )
    return out


# ======================================================================================
# Against nlme
# ======================================================================================


@pytest.mark.parametrize("case", CASES)
def test_loglik_matches_nlme(fits, case):
    ref, res = load(case), fits[case]
    assert res.nobs == ref["nobs"]
    # within 1e-4, or better than nlme (which stops short on boundary fits)
    assert res.llf > ref["logLik"] - 1e-4
    assert res.llf < ref["logLik"] + 1e-3


@pytest.mark.parametrize("case", CASES)
def test_variance_parameters_match_nlme(fits, case):
    ref, res = load(case), fits[case]
    if "phi" in ref:
        assert res.residual_params["Phi"] == pytest.approx(ref["phi"], rel=1e-3)
    else:
        delta = pd.Series(ref["delta"])
        np.testing.assert_allclose(res.residual_params, delta.iloc[1:], rtol=1e-3)
        assert list(res.residual_params.index) == list(delta.index[1:])
    assert res.sigma**2 == pytest.approx(ref["sigma"] ** 2, rel=1e-3)
    cov = res.term_covariances()[0]
    want = np.atleast_2d(ref["re_cov"])
    sd = np.sqrt(np.diag(want))
    # variances 1e-3 relative (1e-4 absolute at the boundary); covariances on the sd scale
    np.testing.assert_array_less(np.abs(cov - want), 1e-3 * np.outer(sd, sd) + 1e-4)


@pytest.mark.parametrize("case", CASES)
def test_fixed_effects_match_nlme(fits, case):
    ref, res = load(case), fits[case]
    np.testing.assert_allclose(res.fe_params, list(ref["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(res.bse_fe, list(ref["se"].values()), rtol=1e-3)


def _has_intervals(case: str) -> bool:
    """nlme gave intervals (not on the boundary) and converged without complaint."""
    ref = load(case)
    return not ref["nlme_warnings"] and ("phi_interval" in ref or "delta_interval" in ref)


@pytest.mark.parametrize("case", [c for c in CASES if _has_intervals(c)])
def test_wald_intervals_match_nlme(fits, case):
    """nlme's intervals(): normal on log δ or atanh φ, from its approximate Hessian."""
    ref, res = load(case), fits[case]
    table = res.residual_table()
    if "phi_interval" in ref:
        np.testing.assert_allclose(table.iloc[0, 2:], ref["phi_interval"], rtol=5e-3)
    for level, bounds in ref.get("delta_interval", {}).items():
        np.testing.assert_allclose(table.loc[level].iloc[2:], bounds, rtol=5e-3)


def test_plain_model_conventions_agree_with_nlme():
    """Without a structure, nlme's REML log-likelihood is lme4's (and ours)."""
    ref = load("sleepstudy_plain_rs")
    res = sl.lmer(ref["formula"], sl.datasets.load("sleepstudy"))
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-6)


# ======================================================================================
# Dense brute force
# ======================================================================================


def dense_residual_deviance(model, theta, R: np.ndarray, reml: bool) -> float:
    """Profiled deviance with V = ZΛΛᵀZᵀ + R (relative to σ²), by dense algebra."""
    return dense_deviance(model, theta, reml, R)


def dense_R(frame: pd.DataFrame, spec, rho: np.ndarray, weights) -> np.ndarray:
    """(n, n) R(ρ)/w: built from the columns, independently of the library."""
    n = len(frame)
    if isinstance(spec, sl.VarIdent):
        codes = frame[spec.stratum].cat.codes.to_numpy()
        R = np.diag(np.r_[1.0, rho][codes] ** 2)
    else:
        t = frame[spec.time].to_numpy(float)
        g = frame[spec.group].to_numpy()
        R = np.where(g[:, None] == g[None, :], rho[0] ** np.abs(t[:, None] - t[None, :]), 0.0)
    w = np.ones(n) if weights is None else weights
    return R / np.sqrt(np.outer(w, w))


def random_frame(rng: np.random.Generator, n1: int, n2: int, per_cell: int) -> pd.DataFrame:
    """Cells of g1 × g2 (some missing), each a short series with gaps, rows shuffled."""
    rows = []
    for a in range(n1):
        for b in range(n2):
            if rng.uniform() < 0.25 and (a, b) != (a, a % n2):
                continue
            m = rng.integers(1, per_cell + 1)
            times = np.sort(rng.choice(np.arange(1, 2 * per_cell + 2), m, replace=False))
            rows += [(a, b, t) for t in times]
    frame = pd.DataFrame(rows, columns=["a", "b", "t"]).sample(frac=1, random_state=1)
    n = len(frame)
    frame["g1"] = pd.Categorical(frame["a"])
    frame["g2"] = pd.Categorical(frame["b"])
    frame["cell"] = frame["a"] * n2 + frame["b"]
    frame["x"] = rng.normal(size=n)
    frame["s"] = pd.Categorical(rng.choice(["p", "q", "r"], n), categories=["p", "q", "r"])
    frame["y"] = 10 + frame["x"] + rng.normal(size=n) * 2 + rng.normal(size=n1)[frame["a"]]
    return frame.reset_index(drop=True)


FORMULAS = [
    "y ~ x + (1|g1)",
    "y ~ x + (x|g1)",
    "y ~ x + (1|g1) + (1|g2)",
    "y ~ x + (x||g1) + (1|g2)",
    "y ~ x + (1|g1/g2)",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    formula=st.sampled_from(FORMULAS),
    structure=st.sampled_from(["varident", "ar1"]),
    weighted=st.booleans(),
    reml=st.booleans(),
    factorization=st.sampled_from(["sparse", "block"]),
)
def test_objective_equals_dense_brute_force(
    seed, formula, structure, weighted, reml, factorization
):
    rng = np.random.default_rng(seed)
    frame = random_frame(rng, int(rng.integers(3, 6)), int(rng.integers(2, 4)), 5)
    frame = frame[frame["s"].isin(["p", "q", "r"])]
    if frame["s"].nunique() < 3 or frame["g2"].nunique() < 2:
        return
    weights = rng.uniform(0.3, 3.0, len(frame)) if weighted else None
    if structure == "varident":
        spec, rho = sl.VarIdent("s"), rng.uniform(0.3, 3.0, 2)
    else:  # the AR group must lie within a level of every factor: the g1 × g2 cell
        spec, rho = sl.AR1(time="t", group="cell"), rng.uniform(-0.95, 0.95, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ResidualModel.from_formula(
            formula, frame, spec, weights=weights, factorization=factorization
        )
    lower = model.lower_bounds
    theta = np.where(lower == 0, rng.uniform(0.05, 2.0, len(lower)), rng.uniform(-1, 1, len(lower)))
    got = model.objective_at(theta, rho, reml)
    want = dense_residual_deviance(model, theta, dense_R(frame, spec, rho, weights), reml)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-8)


def test_varident_crossproducts_are_weighted_crossproducts():
    """At δ, the re-weighted cross-products are chunk_crossproducts with w = 1/δ²."""
    data = sl.datasets.load("dietox")
    model = ResidualModel.from_formula("Weight ~ Time + (Time | Pig)", data, sl.VarIdent("Cu"))
    delta = np.array([1.3, 0.6])
    model.set_residual(delta)
    w = 1.0 / np.r_[1.0, delta][data["Cu"].cat.codes.to_numpy()] ** 2
    d = model.design  # the cross-products hold the engine's centred, scaled X̃ and ỹ
    want = chunk_crossproducts(d.rows, model.engine_X(), model.engine_y(), w)
    got = model.cp
    np.testing.assert_allclose(got.diag[0], want.diag[0], rtol=1e-12)
    np.testing.assert_allclose(got.ZtX[0], want.ZtX[0], rtol=1e-12)
    np.testing.assert_allclose(got.Zty[0], want.Zty[0], rtol=1e-12)
    np.testing.assert_allclose(got.XtX, want.XtX, rtol=1e-12)
    assert got.yty == pytest.approx(want.yty, rel=1e-12)
    assert got.sum_log_weights == pytest.approx(want.sum_log_weights, rel=1e-12)


def test_ar1_crossproducts_against_dense_precision():
    """[Z X y]ᵀ R(φ)⁻¹ [Z X y] from the pieces equals the dense product (with gaps)."""
    data = reference_data(load("dietox_gaps_ar1_ri")).reset_index(drop=True)
    spec = sl.AR1(time="Time", group="Pig")
    model = ResidualModel.from_formula("Weight ~ Time + (Time | Pig)", data, spec)
    phi = 0.7
    model.set_residual(np.array([phi]))
    d = model.design
    Z = d.rows[0].z_matrix().toarray()
    U = np.column_stack([Z, model.engine_X(), model.engine_y()])  # the engine's X̃, ỹ
    R = dense_R(data, spec, np.array([phi]), None)
    want = U.T @ np.linalg.solve(R, U)
    q, p = Z.shape[1], d.X.shape[1]
    k = d.terms[0].k
    blocks = np.stack([want[i * k : (i + 1) * k, i * k : (i + 1) * k] for i in range(q // k)])
    np.testing.assert_allclose(model.cp.diag[0], blocks, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.cp.XtX, want[q : q + p, q : q + p], rtol=1e-10)
    assert model.cp.yty == pytest.approx(want[-1, -1], rel=1e-10)
    assert model.cp.sum_log_weights == pytest.approx(-np.linalg.slogdet(R)[1], rel=1e-10)


def test_evaluations_do_not_touch_the_rows():
    """After the setup, (θ, ρ) ↦ deviance reads only the stored cross-products."""
    data = reference_data(load("dietox_gaps_ar1_ri"))
    spec = sl.AR1(time="Time", group="Pig")
    model = ResidualModel.from_formula("Weight ~ Time + (Time | Pig)", data, spec)
    twin = ResidualModel.from_formula("Weight ~ Time + (Time | Pig)", data, spec)
    d = twin.design
    d.X[...] = np.nan
    d.y[...] = np.nan
    for r in d.rows:
        r.model[...] = np.nan
    theta = np.array([1.2, 0.1, 0.2])
    for phi in (0.3, -0.4, 0.9):
        want = model.objective_at(theta, np.array([phi]), True)
        assert twin.objective_at(theta, np.array([phi]), True) == want
        assert np.isfinite(want)


def test_benchmark_smoke():
    from benchmarks.residual import ar1_data, run

    row = run("ar1", ar1_data(200, 6), ar1_data(200, 12), evals=3, rounds=1)
    assert row["q"] == 400 and row["pieces"]["n"] == row["pieces"]["2n"] == 7  # gaps 1, 2
    assert row["nobs"]["2n"] > 1.9 * row["nobs"]["n"]
    assert row["ms_per_evaluation"]["n"] > 0


# ======================================================================================
# The API
# ======================================================================================


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return sl.datasets.load("sleepstudy")


def test_mixedlm_residual_matches_lmer(sleep):
    spec = sl.AR1(time="Days", group="Subject")
    lme4 = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, residual=spec)
    md = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", residual=spec)
    res = md.fit()
    assert res.llf == pytest.approx(lme4.llf, abs=1e-6)
    assert res.residual_params["Phi"] == pytest.approx(lme4.residual_params["Phi"], rel=1e-5)
    assert res.residual_bse["Phi"] == pytest.approx(lme4.residual_bse["Phi"], rel=1e-3)
    np.testing.assert_allclose(res.fe_params, lme4.fe_params, rtol=1e-6)
    # statsmodels' names: variance parameters over the scale, SEs from its Hessian
    assert res.params["Subject Var"] == pytest.approx(lme4.theta[0] ** 2, rel=1e-5)
    assert np.all(np.isfinite(res.bse))
    text = str(res.summary())
    assert "Phi" in text and "Residual structure: AR(1) within Subject" in text
    assert "Residual structure" in res.summary_lme4()
    cov = res.random_effects_cov[res.model.group_labels[0]]
    assert cov.iloc[0, 0] == pytest.approx(lme4.ranef().condvar["Subject"][0, 0, 0], rel=1e-6)


def test_statsmodels_covariance_by_finite_differences_matches_analytic(sleep):
    """The Hessian used with residual structures reproduces statsmodels' in the iid case."""
    for reml in (True, False):
        res = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit(
            reml=reml
        )
        cov, _ = compat_covariance(res)
        np.testing.assert_allclose(np.sqrt(np.diag(cov)), res.bse, rtol=2e-3)


def test_summary_shows_the_structure(fits):
    text = str(fits["dietox_varident_ri"].summary())
    assert "Residual structure: VarIdent by Evit" in text
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("Evit000"))
    assert "(fixed)" in lines[at] and "Evit100" in lines[at + 1] and "Evit200" in lines[at + 2]
    assert text.index("Residual structure") < text.index("Fixed effects:")
    assert "Phi" in fits["sleepstudy_ar1_ri"].summary()


def test_anova_compares_structures(sleep):
    plain = sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    ar1 = sl.lmer(
        "Reaction ~ Days + (1 | Subject)", sleep, REML=False,
        residual=sl.AR1(time="Days", group="Subject"),
    )
    assert ar1.npar == plain.npar + 1
    table = sl.anova(plain, ar1)
    assert list(table["npar"]) == [plain.npar, ar1.npar]
    assert table["Df"].iloc[1] == 1
    assert table["Chisq"].iloc[1] == pytest.approx(2 * (ar1.llf - plain.llf))
    assert table["Pr(>Chisq)"].iloc[1] < 0.01


def test_anova_refits_reml_fits_with_ml(sleep, capsys):
    spec = sl.VarIdent("Period")
    data = sleep.assign(Period=pd.Categorical(np.where(sleep.Days <= 4, "early", "late")))
    vi = sl.lmer("Reaction ~ Days + (Days | Subject)", data, residual=spec)
    plain = sl.lmer("Reaction ~ Days + (Days | Subject)", data)
    table = sl.anova(plain, vi)
    ml = sl.lmer("Reaction ~ Days + (Days | Subject)", data, REML=False, residual=spec)
    assert table["logLik"].iloc[1] == pytest.approx(ml.llf, abs=1e-6)
    assert vi.reml  # the REML fit itself is unchanged, and its model back at its ρ
    assert vi.reml_criterion == pytest.approx(-2 * vi.llf, abs=1e-8)


def test_anova_of_statsmodels_api_fits_refits_rho_too(sleep):
    spec = sl.AR1(time="Days", group="Subject")
    plain = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject").fit()
    ar1 = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", residual=spec).fit()
    ml = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject", residual=spec).fit(reml=False)
    table = sl.anova(plain, ar1)
    assert list(table["npar"]) == [4, 5]
    assert table["logLik"].iloc[1] == pytest.approx(ml.llf, abs=1e-6)


def test_fits_sharing_a_model_keep_their_own_parameters(sleep):
    model = ResidualModel.from_formula(
        "Reaction ~ Days + (1 | Subject)", sleep, sl.AR1(time="Days", group="Subject")
    )
    reml = model.fit(REML=True)
    cond = reml.ranef().condvar["Subject"].copy()
    ml = model.fit(REML=False)
    assert reml.reml_criterion == pytest.approx(-2 * reml.llf, abs=1e-8)
    reml.__dict__.pop("condvar_blocks", None)
    np.testing.assert_allclose(reml.ranef().condvar["Subject"], cond, rtol=1e-12)
    assert ml.deviance == pytest.approx(-2 * ml.llf, abs=1e-8)


def test_pickle_round_trip(fits):
    res = fits["sleepstudy_ar1_ri"]
    back = pickle.loads(pickle.dumps(res))
    assert back.llf == res.llf
    assert back.residual_params.equals(res.residual_params)
    assert back.engine.objective(back.params_all, True) == pytest.approx(-2 * res.llf, abs=1e-8)


def test_unsupported_inference_is_refused(fits):
    res = fits["sleepstudy_ar1_ri"]
    for call in (
        lambda: res.simulate(),
        lambda: res.bootstrap(10),
        lambda: res.confint(method="profile"),
        lambda: res.profile(),
        lambda: res.coef_table("Kenward-Roger"),
    ):
        with pytest.raises(NotImplementedError, match="residual structure"):
            call()
    wald = res.confint(method="wald")
    assert np.isfinite(wald.loc["Days"]).all()
    assert np.isfinite(res.coef_table()["df"]).all()


# ======================================================================================
# Bad input
# ======================================================================================


def test_ar1_group_must_lie_within_the_grouping_levels():
    data = sl.datasets.load("dietox")
    data["Row"] = np.arange(len(data))
    with pytest.raises(ResidualStructureError, match=r"group 'Evit000' spans \d+ levels of 'Pig'"):
        sl.lmer("Weight ~ Time + (1 | Pig)", data, residual=sl.AR1(time="Row", group="Evit"))
    with pytest.raises(ResidualStructureError, match="within one level of every"):
        sl.lmer("Weight ~ Time + (1 | Pig)", data, residual=sl.AR1(time="Time", group="Litter"))


def test_ar1_times_must_be_unique_integers(sleep):
    bad = sleep.assign(Days=sleep.Days * 0.5)
    with pytest.raises(ResidualStructureError, match="integer-valued"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", bad, residual=sl.AR1("Days", "Subject"))
    dup = sleep.assign(Days=sleep.Days // 2)
    with pytest.raises(ResidualStructureError, match="unique values within each 'Subject'"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", dup, residual=sl.AR1("Days", "Subject"))
    text = sleep.assign(Days=sleep.Days.astype(str) + "d")
    with pytest.raises(ResidualStructureError, match="must be numeric"):
        sl.lmer("Reaction ~ (1 | Subject)", text, residual=sl.AR1("Days", "Subject"))


def test_unknown_and_missing_columns(sleep):
    with pytest.raises(UnknownColumnError, match="'Dayz'.*did you mean 'Days'"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, residual=sl.AR1("Dayz", "Subject"))
    holes = sleep.assign(Period=pd.Categorical(np.where(sleep.Days < 5, "a", "b")))
    holes.loc[[3, 40], "Period"] = np.nan
    with pytest.raises(MissingDataError, match="2 of 180 rows"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", holes, residual=sl.VarIdent("Period"))
    with pytest.warns(UserWarning, match="dropped 2 of 180 rows"):
        res = sl.lmer(
            "Reaction ~ Days + (1 | Subject)", holes, residual=sl.VarIdent("Period"),
            missing="drop",
        )
    assert res.nobs == 178


def test_single_stratum_and_wrong_types(sleep):
    one = sleep.assign(S="all")
    with pytest.raises(ResidualStructureError, match="single level"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", one, residual=sl.VarIdent("S"))
    with pytest.raises(TypeError, match="VarIdent"):
        sl.lmer("Reaction ~ Days + (1 | Subject)", sleep, residual="ar1")
