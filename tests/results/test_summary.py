"""lme4's summary printout: the scaled residuals and the Correlation of Fixed Effects block
as lme4 prints them (R's abbreviate and number formatting), against frozen R output."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from references import REFERENCE

import sparselme as sl
from sparselme.results.rprint import abbreviate, format_real, zapsmall

PARITY = REFERENCE / "lme4_parity"
PRINTS = json.loads((PARITY / "output_and_splines.json").read_text())["cases"]
SUMMARIES = json.loads((PARITY / "reference.json").read_text())["cases"]


def block(lines: list[str], title: str, length: int | None = None) -> list[str]:
    """The lines of a block from its title to the next empty line (or ``length`` lines)."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = (
        start + length
        if length
        else next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    )
    return lines[start:end]


def fit_of(case: dict):
    data = sl.datasets.load(case["data"].split(" ")[0])
    if "temp =" in case["data"]:
        data = data.assign(temp=data["temperature"].astype(str).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sl.lmer(case["formula"], data, REML=case["REML"])


@pytest.mark.parametrize("key", [k for k in PRINTS if k.startswith("print_")])
def test_summary_blocks_print_as_lme4(key):
    case = PRINTS[key]
    res = fit_of(case)
    ours = str(res.summary()).splitlines()
    theirs = case["summary_lines"]
    assert block(ours, "Scaled residuals:", 3) == block(theirs, "Scaled residuals:", 3)
    if case["summary_message"]:  # p > 12: lme4 says how to get the block
        assert "Correlation of Fixed Effects:" not in ours
        assert any("not shown by default, as p = 18 > 12" in line for line in ours)
        shown = str(res.summary(correlation=True)).splitlines()
        assert len(block(shown, "Correlation of Fixed Effects:")) == 1 + 1 + 17
    else:
        assert block(ours, "Correlation of Fixed Effects:") == block(
            theirs, "Correlation of Fixed Effects:"
        )


@pytest.mark.parametrize("key", ["summary_sleepstudy_rs", "summary_dietox_rs"])
def test_summary_numbers_match_lme4(key):
    case = SUMMARIES[key]
    res = fit_of(case)
    text = str(res.summary())
    q = case["scaled_residual_quantiles"]["values"]
    shown = block(text.splitlines(), "Scaled residuals:", 3)[2].split()
    np.testing.assert_allclose([float(v) for v in shown], q, atol=6e-5)
    corr = np.asarray(case["correlation_of_fixed_effects"])
    line = block(text.splitlines(), "Correlation of Fixed Effects:")[-1]
    assert float(line.split()[-1]) == pytest.approx(corr[1, 0], abs=5e-4)


def test_abbreviate_as_r():
    case = PRINTS["abbreviate"]
    assert abbreviate(case["names"], 6) == case["minlength_6"]
    assert abbreviate(case["names"], 11) == case["minlength_11"]
    assert abbreviate(["temperature1", "temperature2"], 4) == ["tmp1", "tmp2"]


def test_abbreviations_that_collide_get_longer():
    out = abbreviate(["abcdex", "abcdey"], 3)
    assert len(set(out)) == 2


def test_format_real_uses_one_number_of_decimals():
    assert format_real([-3.9536, -0.4634, 0.0231, 5.1793], 4) == [
        "-3.9536", "-0.4634", " 0.0231", " 5.1793"
    ]  # fmt: skip
    assert format_real([1.0, -0.0001], 7, nsmall=3) == [" 1.0000", "-0.0001"]
    assert format_real([-0.0], 4, nsmall=3) == ["0.000"]
    np.testing.assert_allclose(zapsmall(np.array([-2.518503, -0.09257612]), 5), [-2.5185, -0.09258])
