"""The checks made on chunk-additive summaries (`sparselme.data.checks`), one at a time."""

import numpy as np
import pandas as pd
import pytest

from sparselme.data import checks
from sparselme.data.design import coded_term
from sparselme.data.moments import ColumnMoments
from sparselme.errors import (
    DataError,
    DroppedRowsWarning,
    IdentifiabilityError,
    IdentifiabilityWarning,
    MissingDataError,
    ScaleWarning,
)


def test_weights():
    checks.check_weights(checks.WeightCounts.of(np.array([1.0, 2.0])), 2)  # nothing to say
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 2 rows with weight 0"):
        checks.check_weights(checks.WeightCounts.of(np.array([1.0, 0.0])), 2)
    with pytest.raises(DataError, match="non-negative"):
        checks.check_weights(checks.WeightCounts.of(np.array([1.0, -1.0])), 2)
    with pytest.raises(DataError, match="sum to zero"):
        checks.check_weights(checks.WeightCounts.of(np.zeros(3)), 3)
    with pytest.raises(DataError, match="ratio"):
        checks.check_weights(checks.WeightCounts.of(np.array([1.0, 1e13])), 2)


def test_weight_counts_add_up_over_chunks():
    w = np.array([0.5, 0.0, 3.0, 2.0, 0.0])
    whole = checks.WeightCounts.of(w)
    parts = checks.WeightCounts.sum([checks.WeightCounts.of(w[:2]), checks.WeightCounts.of(w[2:])])
    fields = ("negative", "zero", "positive", "low", "high")
    assert [getattr(parts, f) for f in fields] == [getattr(whole, f) for f in fields]
    assert (whole.zero, whole.positive, whole.low, whole.high) == (2, 3, 0.5, 3.0)


def test_non_finite_model_rows_raise_or_drop():
    counts = {"log(x)": 1}
    with pytest.raises(MissingDataError, match="1 of 3 rows"):
        checks.report_nonfinite(counts, 1, 3, "raise")
    with pytest.warns(DroppedRowsWarning, match="dropped 1 of 3"):
        checks.report_nonfinite(counts, 1, 3, "drop")


def test_magnitudes_and_exact_fits():
    with pytest.raises(DataError, match="too large"):
        checks.check_magnitude(np.array([1e200]), ["x"], "the column")
    y = np.array([1.0, 2.0, 3.0])
    X = np.column_stack([np.ones(3), y])
    with pytest.raises(DataError, match="fitted exactly"):
        checks.check_fixed(ColumnMoments.of(np.column_stack([X, y])), ["Intercept", "x"], "y")
    with pytest.raises(DataError, match="is constant"):
        checks.check_fixed(ColumnMoments.of(np.ones((3, 2))), ["Intercept"], "y")


def test_redundant_fixed_columns_are_found_on_the_scaled_columns():
    rng = np.random.default_rng(1)
    days = np.arange(10.0)
    X = np.column_stack([np.ones(10), days + 1e9, 2 * days])  # Days + 1e9 is no constant
    y = rng.normal(size=10)
    dropped, residual = checks.check_fixed(
        ColumnMoments.of(np.column_stack([X, y])), ["Intercept", "a", "b"], "y"
    )
    assert dropped == [2] and residual > 0


def _term(codes, model, levels):
    return coded_term("g", [f"c{j}" for j in range(model.shape[1])], pd.Index(levels), codes, model)


def test_identifiability_of_grouping_factors():
    one, _ = _term(np.zeros(4, int), np.ones((4, 1)), ["a"])
    with pytest.raises(IdentifiabilityError, match="has 1 level"):
        checks.check_identifiable([one], 4)
    crowded, _ = _term(np.arange(4), np.ones((4, 1)), list("abcd"))
    with pytest.raises(IdentifiabilityError, match="must be < number of observations"):
        checks.check_identifiable([crowded], 4)
    wide, _ = _term(np.arange(4) % 2, np.ones((4, 3)), ["a", "b"])
    with pytest.raises(IdentifiabilityError, match="number of random effects"):
        checks.check_identifiable([wide], 4)
    with pytest.warns(IdentifiabilityWarning, match="number of random effects"):
        checks.check_identifiable([wide], 4, nobs_vs_nre="warning")  # statsmodels' API


def test_random_effects_columns_checks():
    x = np.arange(8.0)
    term, rows = _term(np.arange(8) % 2, np.column_stack([x, 2 * x]), ["a", "b"])
    with pytest.raises(IdentifiabilityError, match="linearly dependent"):
        checks.check_random_terms([term], 8, rows=[rows])
    term, rows = _term(np.arange(8) % 2, np.column_stack([np.ones(8), x * 1e6]), ["a", "b"])
    with pytest.warns(ScaleWarning, match="standard deviation"):
        checks.warn_about_scales([term], checks.term_moments([rows]))
    term, rows = _term(np.arange(8) % 2, np.column_stack([np.ones(8), np.r_[x[:-1], np.nan]]),
                       ["a", "b"])  # fmt: skip
    with pytest.raises(MissingDataError, match="non-finite"):
        checks.check_random_terms([term], 8, rows=[rows])
