"""The conformance run of statsmodels' MixedLM tests (test_statsmodels_suite.py).

Lifts statsmodels' own ``slow`` marks from its imported tests (so ``make test`` runs
them all), registers its other marks, counts their outcomes and prints, at the end of the
run, "P passed of N applicable" with what was left out and why.
"""

from __future__ import annotations

import pytest

SUITE = "statsmodels.regression.tests.test_lme"
_outcomes: dict[str, str] = {}
_vacuous: set[str] = set()
_excluded: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    for mark in ("high_memory", "smoke"):
        config.addinivalue_line("markers", f"{mark}: statsmodels' mark, from its test_lme.py")


def _from_suite(item: pytest.Item) -> bool:
    func = getattr(item, "function", None)
    return getattr(func, "__module__", None) == SUITE


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _from_suite(item):
            item.own_markers = [m for m in item.own_markers if m.name != "slow"]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _outcomes:
        return
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and _outcomes[report.nodeid] != "failed":
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed and _outcomes[report.nodeid] == "not run":
        _outcomes[report.nodeid] = "passed"


def pytest_itemcollected(item: pytest.Item) -> None:
    if _from_suite(item):
        _outcomes[item.nodeid] = "not run"
        _excluded.update(item.module.EXCLUDED)
        if item.module.is_vacuous(item):
            _vacuous.add(item.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    ran = {k: v for k, v in _outcomes.items() if v != "not run" and k not in _vacuous}
    if not ran:
        return
    import statsmodels

    passed = sum(v == "passed" for v in ran.values())
    vacuous = sum(_outcomes[k] != "not run" for k in _vacuous)
    write = terminalreporter.write_line
    write("")
    write(
        f"statsmodels {statsmodels.__version__} test_lme.py on sparselme: "
        f"{passed} passed of {len(ran)} applicable"
    )
    write(f"  also run, not counted (they return before asserting anything): {vacuous}")
    for name, why in _excluded.items():
        write(f"  left out: {name}: {why}")
    for nodeid, outcome in sorted(ran.items()):
        if outcome != "passed":
            write(f"  {outcome}: {nodeid}")
