"""CHOLMOD's own 'problem too large' in the symbolic analysis is a ProblemTooLargeError."""

from __future__ import annotations

import pytest
from sksparse import cholmod

import sparselme as sl
from sparselme.engine import sparse_cholesky
from sparselme.errors import ProblemTooLargeError


def test_cholmod_overflow_is_refused_with_the_alternative(monkeypatch):
    def overflow(*args, **kwargs):
        raise cholmod.CholmodTooLargeError("cholmod_super_symbolic.c:683: problem too large")

    monkeypatch.setattr(sparse_cholesky.cholmod, "analyze", overflow)
    sleep = sl.datasets.load("sleepstudy")
    with pytest.raises(ProblemTooLargeError, match='estimator="moments"') as err:
        sl.LinearMixedModel.from_formula(
            "Reaction ~ Days + (Days|Subject)", sleep, factorization="sparse"
        )
    assert "problem too large" in str(err.value) and err.value.estimate is None
