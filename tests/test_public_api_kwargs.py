"""No public callable accepts an argument and ignores it.

The walk is generic: every callable of ``sparselme.__all__``, ``sparselme.api`` and
``sparselme.formula.api`` (and of the modules and namespaces they export), and every
public method of the objects the API hands out (models, results of each kind, parameters,
profiles, bootstrap results, tests), gets a bogus keyword and must raise TypeError naming
it. Callables that take ``**kwargs`` forward them, so they are called with real arguments
(``FORWARDING``, which must cover every such callable the walk finds). ``MixedLM.fit``'s
keyword arguments warn instead (a FutureWarning naming them, as statsmodels' fit does for
arguments it does not use; ``WARNS``); ``NOT_AVAILABLE`` lists the methods that raise
NotImplementedError whatever their arguments.
"""

from __future__ import annotations

import inspect
import types
import warnings

import numpy as np
import pandas as pd
import pytest

import sparselme as sl
import sparselme.api as sm
import sparselme.formula.api as smf
from sparselme import cli
from sparselme.errors import UnknownColumnError
from sparselme.statsmodels_compat.fit import STATSMODELS_OPTIMIZER_KWARGS

BOGUS = "no_such_argument_xyz"

# Methods that are not available for the object at hand: they raise NotImplementedError
# for any call (a residual structure rules out simulation, the bootstrap and likelihood
# profiles). Keyed by __qualname__.
NOT_AVAILABLE = {
    "ResidualMixedLMResults.simulate",
    "ResidualMixedLMResults.bootstrap",
    "ResidualMixedLMResults.profile",
    "ResidualCompatResults.profile_re",
}

# statsmodels' MixedLM.fit (and fit_regularized, which forwards to it) warn about any
# keyword they do not use, as statsmodels does: FutureWarning naming it.
WARNS = {"MixedLM.fit", "MixedLM.fit_regularized"}

# Callables with **kwargs (forwarded to a callable with a strict signature, or checked):
# the positional and keyword arguments of a valid call, keyed by __qualname__.
FORWARDING = {
    "lmer": lambda d: ((d["formula"], d["sleep"]), {}),
    "LinearMixedModel.from_formula": lambda d: ((d["formula"], d["sleep"]), {}),
    "MixedLM.from_formula": lambda d: (("Reaction ~ Days", d["sleep"]), {"groups": "Subject"}),
    "MixedLM.fit": lambda d: ((), {}),
    "MixedLM.fit_regularized": lambda d: ((), {}),
    "StreamedMixedLM.fit": lambda d: ((), {}),
    "MixedLMCompatResults.profile_re": lambda d: ((0, "re"), {}),
    "MixedLMResults.bootstrap": lambda d: ((), {"nsim": 2}),
    "MixedLMResults.confint": lambda d: ((), {}),
    "ResidualMixedLMResults.confint": lambda d: ((), {"method": "wald"}),
    "MixedLMResults.profile": lambda d: ((), {}),
    "MixedLMResults.plot_diagnostics": lambda d: ((), {}),
    "MixedLMResults.plot_ranef": lambda d: ((), {}),
    "Profile.plot": lambda d: ((), {}),
    "anova": lambda d: ((), {}),  # keywords name fitted models: anything else is refused
    "MixedLMResults.anova": lambda d: ((), {}),
}


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> dict:
    """The objects the public API hands out, one of each kind, and data to call it with."""
    sleep = sl.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (1 | Subject)"
    path = tmp_path_factory.mktemp("kwargs") / "sleep.parquet"
    sleep.assign(Subject=sleep["Subject"].astype(str)).to_parquet(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lme4 = sl.lmer(formula, sleep)
        model = sl.mixedlm("Reaction ~ Days", sleep, groups="Subject")
        compat = model.fit()
        by_subject = sl.VarIdent("Subject")
        residual = sl.lmer(formula, sleep, residual=by_subject)
        compat_residual = sl.mixedlm(
            "Reaction ~ Days", sleep, groups="Subject", residual=by_subject
        ).fit()
        streamed_model = sl.mixedlm("Reaction ~ Days", str(path), groups="Subject")
        streamed = streamed_model.fit()
        streamed_lme4 = sl.lmer(formula, str(path))
        dyestuff = sl.lmer("Yield ~ 1 + (1 | Batch)", sl.datasets.load("Dyestuff"))
        profile = dyestuff.profile()
        boot = sl.bootstrap(dyestuff, nsim=3, seed=1)
        influence = lme4.influence(groups="Subject", units=["308", "309"])
    instances = [
        lme4,
        lme4.model,
        model,
        compat,
        residual,
        compat_residual,
        streamed_model,
        streamed,
        streamed_lme4.model,
        profile,
        boot,
        influence,
        lme4.fixef,
        lme4.ranef(),
        compat.t_test("Days = 0"),
        compat.params_object,
        sm.VCSpec([], [], []),
        by_subject,
        sl.AR1(time="Days", group="Subject"),
    ]
    data = {"sleep": sleep, "formula": formula, "parquet": str(path)}
    return {"instances": instances, "data": data}


def module_callables() -> list[tuple[str, object]]:
    """(name, callable) of the exported API: modules' __all__, namespaces, recursively."""
    out, seen = [], set()

    def visit(prefix: str, obj) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            names = getattr(obj, "__all__", [])
        elif isinstance(obj, types.SimpleNamespace):
            names = list(vars(obj))
        else:
            if callable(obj):
                out.append((prefix, obj))
            return
        for name in names:
            visit(f"{prefix}.{name}", getattr(obj, name))

    for module in (sl, sm, smf):
        visit(module.__name__, module)
    return out


def public_methods(obj) -> list[tuple[str, object]]:
    """(Class.name, bound method) of obj's public methods defined by sparselme.

    Properties are not evaluated (they take no arguments).
    """
    out = []
    cls = type(obj)
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        func = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        if not inspect.isfunction(func) or not func.__module__.startswith("sparselme"):
            continue
        out.append((f"{cls.__name__}.{name}", getattr(obj, name)))
    return out


def takes_any_keyword(func) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def qualname(func) -> str:
    return getattr(getattr(func, "__func__", func), "__qualname__", repr(func))


def check_rejects_bogus_keyword(label: str, func, data: dict) -> None:
    name = qualname(func)
    kwargs = {BOGUS: 1}
    args: tuple = ()
    if name in NOT_AVAILABLE:
        with pytest.raises(NotImplementedError):
            func(**kwargs)
        return
    if takes_any_keyword(func):
        assert name in FORWARDING, f"{label} ({name}) takes **kwargs: add a valid call"
        args, given = FORWARDING[name](data)
        kwargs.update(given)
    if name in WARNS:
        with pytest.warns(FutureWarning, match=f"Argument {BOGUS} not used by MixedLM.fit"):
            func(*args, **kwargs)
        return
    with pytest.raises(TypeError) as err:
        func(*args, **kwargs)
    text = str(err.value)
    assert BOGUS in text or "takes no" in text, f"{label}: {text}"


def test_exported_callables_reject_unknown_keywords(objects):
    walked = module_callables()
    funcs = [f for _, f in walked]
    for expected in (sl.lmer, sl.mixedlm, sm.MixedLM, sm.add_constant, sm.datasets.get_rdataset):
        assert any(f is expected for f in funcs)
    assert any(f is sl.datasets.load for f in funcs) and any(f is sl.anova for f in funcs)
    for label, func in walked:
        check_rejects_bogus_keyword(label, func, objects["data"])


def test_methods_of_the_api_objects_reject_unknown_keywords(objects):
    kinds = {type(obj).__name__ for obj in objects["instances"]}
    exported = {
        label.rsplit(".", 1)[1] for label, obj in module_callables() if inspect.isclass(obj)
    }
    exported -= {c.__name__ for c in vars(sl.errors).values() if inspect.isclass(c)}
    assert exported <= kinds, f"add an instance of {sorted(exported - kinds)}"
    checked = 0
    for obj in objects["instances"]:
        for label, method in public_methods(obj):
            check_rejects_bogus_keyword(label, method, objects["data"])
            checked += 1
    assert checked > 80


def test_forwarding_and_exceptions_are_all_still_needed(objects):
    """Every entry of the two lists is a callable the walk meets (no stale exceptions)."""
    met = {qualname(f) for _, f in module_callables()}
    for obj in objects["instances"]:
        met |= {qualname(f) for _, f in public_methods(obj)}
    assert set(FORWARDING) <= met and NOT_AVAILABLE <= met


# ---- statsmodels' optimizer settings warn, as statsmodels warns about unused fit arguments ------


@pytest.fixture(scope="module")
def dyestuff_model():
    return sl.mixedlm("Yield ~ 1", sl.datasets.load("Dyestuff"), groups="Batch")


@pytest.mark.parametrize("name", ["method", "niter_sa", *STATSMODELS_OPTIMIZER_KWARGS])
def test_statsmodels_optimizer_settings_warn(dyestuff_model, name):
    value = {"method": "bfgs", "niter_sa": 5}.get(name, 10)
    with pytest.warns(FutureWarning, match=f"{name} not used by MixedLM.fit") as caught:
        res = dyestuff_model.fit(**{name: value})
    assert caught[0].filename == __file__  # points at the caller
    assert res.llf == pytest.approx(dyestuff_model.fit().llf, abs=1e-10)


def test_optimizer_settings_warn_in_profile_re_and_streamed_fits(objects, dyestuff_model):
    res = dyestuff_model.fit()
    with pytest.warns(FutureWarning, match="gtol not used by profile_re"):
        res.profile_re(0, "re", num_low=1, num_high=1, dist_low=1.0, dist_high=1.0, gtol=1e-4)
    streamed = next(o for o in objects["instances"] if type(o).__name__ == "StreamedMixedLM")
    with pytest.warns(FutureWarning, match="maxiter not used"):
        streamed.fit(maxiter=20)
    with pytest.raises(NotImplementedError, match="do_cg"):
        streamed.fit(do_cg=False)


# ---- named parameters that could have been ignored ----------------------------------------------


def test_parameters_that_apply_to_one_case_only_are_checked(objects, dyestuff_model):
    lme4 = objects["instances"][0]
    with pytest.raises(TypeError, match="nsim apply to method='boot' only"):
        lme4.confint(method="wald", nsim=10)
    with pytest.raises(TypeError, match="names and refit"):
        lme4.anova(names=["a"])
    with pytest.raises(TypeError, match="type and ddf"):
        lme4.anova(lme4, ddf="Kenward-Roger")
    res = dyestuff_model.fit()
    # profile_fe=False uses the given β: at the estimates it is the fit's llf
    assert dyestuff_model.loglike(res.params_object, profile_fe=False) == pytest.approx(res.llf)
    moved = res.params_object.copy()
    moved.fe_params = moved.fe_params + 100
    assert dyestuff_model.loglike(moved, profile_fe=False) < res.llf - 1
    chi2 = res.wald_test("Intercept = 1500", use_f=False)
    F = res.wald_test("Intercept = 1500", use_f=True)  # one constraint: F = χ²
    assert chi2.statistic > 0 and float(np.squeeze(F.fvalue)) == pytest.approx(chi2.statistic)
    dyes = sl.datasets.load("Dyestuff").assign(x=np.arange(30.0))
    by_env = sl.mixedlm("Yield ~ half(x)", dyes, groups="Batch", eval_env={"half": lambda v: v / 2})
    assert by_env.exog_names == ["Intercept", "half(x)"]
    with pytest.raises(UnknownColumnError, match="half"):
        sl.mixedlm("Yield ~ half(x)", dyes, groups="Batch", eval_env=-1)
    with pytest.raises(ValueError, match="constant"):
        sm.add_constant(np.ones((3, 1)), has_constant="raise")
    x = np.column_stack([np.ones(3), np.arange(3.0)])
    assert sm.add_constant(x, has_constant="add").shape == (3, 3)
    assert sm.add_constant(x).shape == (3, 2)


def test_lme4_methods_check_the_arguments_that_apply_to_one_case_only(objects):
    lme4 = objects["instances"][0]
    with pytest.raises(TypeError, match="offset"):
        lme4.predict(random_only=True, offset=np.zeros(180))
    with pytest.raises(TypeError, match="add_dropped"):
        lme4.fixef(add_dropped=1.0)
    with pytest.raises(TypeError, match=BOGUS):
        lme4.fixef(**{BOGUS: 1})
    with pytest.raises(ValueError, match="F tests need"):
        lme4.drop1(test="F", ddf="normal")
    with pytest.raises(TypeError, match="REML"):
        lme4.update(REML="no")


def test_statsmodels_results_predict_takes_no_unknown_keyword(objects):
    compat = objects["instances"][3]
    new = pd.DataFrame({"Days": [1.0], "Subject": ["308"]})
    with pytest.raises(TypeError, match="re_form"):
        compat.predict(new, re_form="~0")  # lme4's argument: use sl.lmer(...).predict


def test_cli_rejects_unknown_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["fit", str(tmp_path / "d.csv"), "y ~ x + (1 | g)", "--frobnicate"])
    assert err.value.code == 2
    assert "--frobnicate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["datasets", "--frobnicate"])
