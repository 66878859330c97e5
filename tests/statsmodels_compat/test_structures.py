"""Covariance structures through the statsmodels API: ``cov_struct=`` and structured bars."""

import numpy as np
import pytest

import sparselme as sl
from sparselme.errors import FormulaError, NonlinearStructureError, StructureError


@pytest.fixture(scope="module")
def machines():
    return sl.datasets.load("Machines")


@pytest.mark.parametrize("structure", ["cs", "toep", "rr(1)", "diag", "homcs"])
def test_cov_struct_fits_the_structure_of_the_lme4_spelling(machines, structure):
    md = sl.mixedlm(
        "score ~ Machine", machines, groups="Worker", re_formula="0 + Machine", cov_struct=structure
    )
    res = md.fit()
    keyword, _, rank = structure.partition("(")
    term = f"{keyword}(0 + Machine | Worker{', d = ' + rank.rstrip(')') if rank else ''})"
    ref = sl.lmer(f"score ~ Machine + {term}", machines)
    assert res.llf == pytest.approx(ref.llf, abs=1e-6)
    np.testing.assert_allclose(res.cov_re.to_numpy(), ref.term_covariances()[0], rtol=1e-4)
    label = res.model.layout.re_term.label()
    assert label.startswith(f"{keyword}(MachineA + MachineB + MachineC | Worker")


def test_a_structured_bar_becomes_groups_and_re_formula(machines):
    by_bar = sl.mixedlm("score ~ Machine + ar1(0 + Machine | Worker)", machines).fit()
    by_kw = sl.mixedlm(
        "score ~ Machine", machines, groups="Worker", re_formula="0 + Machine", cov_struct="ar1"
    ).fit()
    assert by_bar.llf == pytest.approx(by_kw.llf, abs=1e-8)
    assert by_bar.model.n_groups == 6
    with pytest.raises(FormulaError, match="give the structure once"):
        sl.mixedlm("score ~ Machine + ar1(0 + Machine | Worker)", machines, cov_struct="cs")


def test_cov_struct_is_checked(machines):
    for bad in ("ou", "ar1(2)", "unstructured", "rr(x)"):
        with pytest.raises(FormulaError, match="cov_struct must be one of"):
            sl.mixedlm("score ~ Machine", machines, groups="Worker", re_formula="0 + Machine",
                       cov_struct=bad)


def test_variance_standard_errors_of_a_nonlinear_structure(machines):
    res = sl.mixedlm(
        "score ~ Machine", machines, groups="Worker", re_formula="0 + Machine", cov_struct="cs"
    ).fit()
    with pytest.raises(NonlinearStructureError):
        _ = res.hessian
    with pytest.warns(UserWarning, match="not computed"):
        bse = res.bse
    np.testing.assert_allclose(bse.iloc[:3], res.bse_fe.iloc[:3])
    np.testing.assert_allclose(bse.iloc[:3], np.sqrt(np.diag(res.cov_fe)))
    assert bse.iloc[3:].isna().all()
    assert "Machine[A] Var" in str(res.summary())


def test_free_needs_the_unstructured_covariance(machines):
    md = sl.mixedlm(
        "score ~ Machine", machines, groups="Worker", re_formula="0 + Machine", cov_struct="cs"
    )
    free = sl.MixedLMParams.from_components(np.ones(3), np.eye(3))
    with pytest.raises(NonlinearStructureError, match="free="):
        md.fit(free=free)


def test_profile_re_keeps_the_order_of_a_time_structure(machines):
    md = sl.mixedlm(
        "score ~ Machine", machines, groups="Worker", re_formula="0 + Machine", cov_struct="ar1"
    )
    res = md.fit()
    first = res.profile_re(0, "re", num_low=1, dist_low=1.0, num_high=1, dist_high=1.0)
    assert first.shape == (3, 2) and first[1, 1] == pytest.approx(res.llf, abs=1e-6)
    with pytest.raises(StructureError, match="order of the columns"):
        res.profile_re(1, "re", num_low=1, dist_low=1.0, num_high=1, dist_high=1.0)
