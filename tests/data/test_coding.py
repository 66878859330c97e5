"""New data coded through the fit's stored formulaic specs (sparselme.data.coding)."""

import numpy as np
import pytest

import sparselme as sl
from sparselme.data.coding import column_names, fixed_rows, known_levels, term_rows
from sparselme.data.design import build_design
from sparselme.data.formula import parse_formula
from sparselme.errors import DataError


@pytest.fixture(scope="module")
def design():
    formula = "angle ~ recipe + temperature + (1 + recipe | replicate)"
    return build_design(parse_formula(formula), sl.datasets.load("cake"))


def test_known_levels_come_from_the_fixed_part_and_the_terms(design):
    levels, poly = known_levels(design)
    assert levels["recipe"] == ["A", "B", "C"]
    assert "temperature" in poly and len(levels["temperature"]) == 6


def test_column_names_of_a_bar_lhs_in_the_fits_coding(design):
    d = design
    assert column_names(d, "1") == ["(Intercept)"]
    assert column_names(d, "1 + recipe") == ["(Intercept)", "recipeB", "recipeC"]
    assert column_names(d, "0 + recipe") == ["recipeA", "recipeB", "recipeC"]


def test_rows_of_new_data_equal_the_training_rows(design):
    data = sl.datasets.load("cake")
    d = design
    X, missing = fixed_rows(d, data.iloc[[0, 50, 200]])
    np.testing.assert_allclose(X, d.X[[0, 50, 200]])
    assert not missing.any()
    term = d.terms[0]
    np.testing.assert_allclose(term_rows(d, term, data.iloc[[0, 50]]), d.rows[0].model[[0, 50]])
    with pytest.raises(DataError, match="new level"):
        fixed_rows(d, data.head(2).assign(recipe=["A", "Z"]))
    text = data.head(2).assign(recipe=data["recipe"].head(2).astype(str))
    np.testing.assert_allclose(fixed_rows(d, text)[0], d.X[:2])
