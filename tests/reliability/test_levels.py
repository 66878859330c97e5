"""Grouping factors: lme4's identifiability checks, unused categories, level relabelling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
from sparselme.errors import DataError, IdentifiabilityError, SingularFitWarning


def test_one_level(frame):
    with pytest.raises(IdentifiabilityError) as info:
        sl.lmer("y ~ x + (1|g)", frame.assign(g="only"))
    msg = str(info.value)
    assert "grouping factor 'g' of term (1 | g) has 1 level ('only')" in msg
    assert "must have > 1 sampled level" in msg
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


def test_as_many_levels_as_observations(frame):
    with pytest.raises(
        IdentifiabilityError,
        match=r"levels of each grouping factor must be < number of observations \(= 60\); "
        r"problems: 'obs' \(60 levels\)",
    ):
        sl.lmer("y ~ x + (1|g) + (1|obs)", frame.assign(obs=np.arange(60)))


def test_one_level_fewer_than_observations_is_allowed(frame):
    obs = np.r_[0, np.arange(59)]
    assert sl.lmer("y ~ x + (1|obs)", frame.assign(obs=obs)).ngroups == {"obs": 59}


def test_more_random_effects_than_observations(frame):
    pairs = frame.assign(p=np.arange(60) // 2)  # 30 levels x 2 effects = 60 = nobs
    with pytest.raises(
        IdentifiabilityError,
        match=r"number of observations \(= 60\) <= number of random effects "
        r"\(= 60: 2 per level × 30 levels\) for term \(x \| p\)",
    ):
        sl.lmer("y ~ x + (x|p)", pairs)
    triples = frame.assign(p=np.arange(60) // 3)  # 20 x 2 = 40 < 60: fine
    with pytest.warns(SingularFitWarning):  # no slope variance in these data
        assert sl.lmer("y ~ x + (x|p)", triples).nobs == 60


def test_the_check_counts_levels_after_missing_rows_are_dropped(frame):
    data = frame.assign(g=np.where(frame.g == "g0", "g0", "g1"))
    data.loc[data.g == "g1", "y"] = np.nan
    with pytest.warns(UserWarning, match="dropped 50"), pytest.raises(IdentifiabilityError):
        sl.lmer("y ~ x + (1|g)", data, missing="drop")


def test_unused_categories_are_dropped(frame):
    data = frame.copy()
    data["g"] = pd.Categorical(data.g, categories=[*sorted(set(data.g)), "never", "seen"])
    data["f"] = data.f.cat.add_categories(["unused"])
    res = sl.lmer("y ~ x + f + (1|g)", data)
    assert res.ngroups == {"g": 6}
    assert list(res.fe_params.index) == ["(Intercept)", "x", "fmid", "fhi"]
    plain = sl.lmer("y ~ x + f + (1|g)", frame)
    np.testing.assert_array_equal(res.theta, plain.theta)


def test_interaction_and_nested_factors_count_observed_combinations(frame):
    res = sl.lmer("y ~ x + (1|g:s)", frame)
    assert res.ngroups == {"g:s": frame.groupby(["g", "s"]).ngroups}
