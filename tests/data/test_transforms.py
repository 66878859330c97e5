"""R's transforms in formulas: bases against frozen splines::bs/ns and poly values, new
values (beyond the boundary knots on both sides) through the stored state, R's names."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix
from references import REFERENCE

from sparselme.data.design import prepare_frame, r_style_name
from sparselme.data.formula import parse_one_sided
from sparselme.data.transforms import apply_qt, dummy, householder_qr, log, poly
from sparselme.errors import DataError

SPLINES = json.loads((REFERENCE / "lme4_parity" / "output_and_splines.json").read_text())
BASES = SPLINES["cases"]["spline_bases"]


def coded(call: str, x: np.ndarray):
    """The model matrix of an R call (one-sided formula without intercept) on x."""
    frame, context = prepare_frame(pd.DataFrame({"x": x}), {"x"})
    return model_matrix(f"0 + {parse_one_sided('~' + call)}", frame, context=context)


@pytest.mark.parametrize("name", list(BASES["bases"]))
def test_bases_and_new_values_match_r(name):
    case = BASES["bases"][name]
    mm = coded(case["call"], np.asarray(BASES["x"], dtype=float))
    np.testing.assert_allclose(mm, case["basis"], atol=1e-13)
    new = mm.model_spec.get_model_matrix(pd.DataFrame({"x": BASES["new"]}), context=coded_context())
    np.testing.assert_allclose(new, case["predict_new"], atol=1e-12)
    names = [r_style_name(str(c)) for c in mm.columns]
    assert names == [f"{case['call']}{c}" for c in case["colnames"]]


def coded_context() -> dict:
    return prepare_frame(pd.DataFrame({"x": [0.0]}), {"x"})[1]


def test_spline_state_holds_rs_knots():
    case = BASES["bases"]["ns_df5"]
    mm = coded(case["call"], np.asarray(BASES["x"], dtype=float))
    (state,) = mm.model_spec.transform_state.values()
    np.testing.assert_allclose(state["knots"], case["knots"])
    np.testing.assert_allclose(state["boundary"], case["boundary_knots"])


def test_poly_of_degree_one_is_one_column_named_after_the_call():
    mm = coded("poly(x, 1)", np.arange(5.0))
    assert [r_style_name(str(c)) for c in mm.columns] == ["poly(x, 1)"]
    np.testing.assert_allclose(np.asarray(mm)[:, 0], (np.arange(5) - 2) / np.sqrt(10))


def test_poly_degree_must_be_below_the_number_of_points():
    with pytest.raises(DataError, match="unique points"):
        poly(np.array([1.0, 2.0, 2.0]), 2)


def test_missing_values_stay_missing_rows():
    values = np.asarray(poly(np.array([1.0, np.nan, 2.0, 4.0]), 2))
    assert np.isnan(values[1]).all() and np.isfinite(values[[0, 2, 3]]).all()


def test_householder_qr_is_an_orthogonal_transform():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((7, 2))
    qr, qraux = householder_qr(A)
    QtA = apply_qt(qr, qraux, A)
    np.testing.assert_allclose(QtA[2:], 0, atol=1e-12)  # R in the first two rows
    Y = rng.standard_normal((7, 3))
    np.testing.assert_allclose(np.linalg.norm(apply_qt(qr, qraux, Y), axis=0),
                               np.linalg.norm(Y, axis=0))  # fmt: skip


def test_dummy_keeps_the_named_levels():
    f = pd.Series(pd.Categorical(["a", "b", "c", "b"], categories=["a", "b", "c"]))
    np.testing.assert_array_equal(dummy(f, "b"), [0, 1, 0, 1])
    both = dummy(f, ["b", "c"])
    assert tuple(both.__formulaic_metadata__.column_names) == ("b", "c")
    np.testing.assert_array_equal(np.asarray(dummy(f)), [[0, 0], [1, 0], [0, 1], [1, 0]])
    np.testing.assert_array_equal(dummy(pd.Series([2.0, 10.0, 2.0]), "10"), [0, 1, 0])
    with pytest.raises(DataError, match="not levels"):
        dummy(f, "z")


def test_r_log_takes_a_base():
    np.testing.assert_allclose(log(np.array([8.0, 100.0]), 2), [3.0, np.log2(100)])
    np.testing.assert_allclose(log(np.e), 1.0)
