"""Saving fits: whole results as pickles, and the optimizer's summary as portable JSON.

* `save` / `load`: the results object pickled (statsmodels' ``save`` and ``load``); load
  only files you trust, with a compatible version of the package.
* `save_optsum` / `restore_optsum`: a JSON record of the optimizer's summary (the
  parameters at the optimum, the criterion, the evaluation count and log, the settings and
  the versions that made it), like MixedModels.jl's ``saveoptsum``/``restoreoptsum!``. It
  holds no data and no code: a fit is restored on the same data without optimizing again,
  by evaluating the model at the recorded parameters. Restoring onto other data is refused:
  the record keeps the number of observations, the fixed-effect and parameter names, each
  term's levels (count and a digest of their labels), and the criterion at the optimum
  and at two points away from it; each must match (the criterion to 1e-9, relative).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import platform
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from ..engine.optimize import OptSummary
from ..errors import DataError

if TYPE_CHECKING:
    from ..model.mixed_model import MixedModel
    from ..model.results import ModelFit

__all__ = ["save", "load", "optsum_record", "save_optsum", "read_optsum", "restore_optsum"]

FORMAT = "sparselme.optsum"
FORMAT_VERSION = 1
# Relative agreement required of the recorded criterion values: the same data give the
# same values to rounding (whether read at once or in chunks), a changed value does not.
RTOL = 1e-9


# ---- pickles ------------------------------------------------------------------------------
def save(obj: object, fname: str | os.PathLike | IO[bytes]) -> None:
    """Pickle ``obj`` to a path or a binary file object."""
    if hasattr(fname, "write"):
        pickle.dump(obj, fname, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[arg-type]
        return
    with open(fname, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load(fname: str | os.PathLike | IO[bytes]) -> Any:
    """Results saved with ``res.save(fname)`` (unpickled: load only files you trust).

    Parameters
    ----------
    fname : str, os.PathLike or binary file object
        Where `save` wrote the results.

    Returns
    -------
    MixedLMResults (or whichever results object was saved)
    """
    if hasattr(fname, "read"):
        return pickle.load(fname)  # type: ignore[arg-type]  # noqa: S301 - the user's own file
    with open(fname, "rb") as fh:
        return pickle.load(fh)  # noqa: S301


# ---- JSON values ---------------------------------------------------------------------------
def _number(v: float) -> float | str:
    """JSON has no NaN or infinity: those are written as the strings "NaN", "Infinity"."""
    v = float(v)
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _numbers(a: Any) -> list | None:
    return None if a is None else [_number(v) for v in np.asarray(a, dtype=float).ravel()]


def _array(values: list | None) -> np.ndarray | None:
    return None if values is None else np.array([float(v) for v in values], dtype=float)


def _as_array(v: Any) -> np.ndarray:
    """(m,) floats of a recorded number or list of numbers."""
    return _array(v if isinstance(v, list) else [v])  # type: ignore[return-value]


def _versions() -> dict[str, str]:
    from .. import __version__

    out = {"sparselme": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("scipy", "nlopt", "pandas"):
        try:
            out[name] = str(__import__(name).__version__)
        except (ImportError, AttributeError):  # pragma: no cover - depends on the environment
            pass
    return out


# ---- what identifies the data --------------------------------------------------------------
def _digest(labels: Any) -> str:
    text = "\x1f".join(str(v) for v in labels)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _checks(model: MixedModel) -> dict[str, Any]:
    """The model's sizes, names and levels (what does not depend on how it was read)."""
    d = model.design
    return {
        "nobs": int(d.nobs),
        "fixed_effects": list(d.fixed_names),
        "parameters": list(model.parameter_names),
        "terms": [
            {
                "group": t.name,
                "columns": list(t.columns),
                "levels": t.nlevels,
                "labels_sha256": _digest(t.levels),
            }
            for t in d.terms
        ],
    }


def _probe_points(model: MixedModel, params: np.ndarray) -> list[np.ndarray]:
    """Two parameter vectors away from the optimum (θ moved, other blocks kept) at which
    the criterion is recorded: the data are then checked away from the optimum too."""
    theta = params[: model.n_theta]
    up = np.r_[theta + 0.25 * (1 + np.abs(theta)), params[model.n_theta :]]
    down = np.r_[0.5 * theta, params[model.n_theta :]]
    return [up, down]


def _probe(model: MixedModel, params: np.ndarray, reml: bool) -> float | None:
    try:
        value = model.objective(params, reml)
    except Exception:  # noqa: BLE001 - outside the model's domain: no probe there
        return None
    return value if math.isfinite(value) else None


def _mismatches(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between the recorded checks and the model's."""
    return [
        f"{key}: recorded {recorded.get(key)!r}, here {current[key]!r}"
        for key in ("nobs", "fixed_effects", "parameters", "terms")
        if recorded.get(key) != current[key]
    ]


# ---- the record ----------------------------------------------------------------------------
_OPTSUM_FLOATS = ("fmin", "ftol_abs", "xtol_abs", "elapsed")
_OPTSUM_ARRAYS = ("initial", "lower", "final", "upper", "gradient", "hessian", "theta_scale")
_OPTSUM_PLAIN = (
    "feval",
    "returnvalue",
    "optimizer",
    "maxeval",
    "restarts",
    "newton_steps",
    "messages",
    "boundary_snapped",
)


def optsum_record(res: ModelFit) -> dict[str, Any]:
    """The JSON-ready record of a fit's optimizer summary (see the module docstring)."""
    o = res.optsum
    probes = []
    for point in _probe_points(res.engine, res.params_all):
        value = _probe(res.engine, point, res.reml)
        if value is not None:
            probes.append({"parameters": _numbers(point), "criterion": value})
    optsum: dict[str, Any] = {k: _number(getattr(o, k)) for k in _OPTSUM_FLOATS}
    optsum |= {k: _numbers(getattr(o, k)) for k in _OPTSUM_ARRAYS}
    if o.hessian is not None:
        optsum["hessian_shape"] = list(np.shape(o.hessian))
    optsum |= {k: getattr(o, k) for k in _OPTSUM_PLAIN}
    optsum["messages"] = list(o.messages)
    optsum["boundary_snapped"] = [int(i) for i in o.boundary_snapped]
    optsum["fitlog"] = [[_numbers(x), _number(v)] for x, v in o.fitlog]
    parsed = res.design.parsed
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "model": {
            "formula": parsed.text if parsed is not None else None,
            "REML": res.reml,
            "residual": str(getattr(res.engine, "residual", None) or "") or None,
            "checks": _checks(res.engine),
            "probes": probes,
        },
        "optsum": optsum,
        "estimates": {
            "parameters": _numbers(res.params_all),
            "theta": _numbers(res.theta),
            "beta": dict(zip(res.design.fixed_names, _numbers(res.solution.beta) or [])),
            "sigma": _number(res.sigma),
        },
    }


def save_optsum(res: ModelFit, fname: str | os.PathLike | IO[str]) -> None:
    """Write `optsum_record` as JSON to a path or a text file object."""
    text = json.dumps(optsum_record(res), indent=1)
    if hasattr(fname, "write"):
        fname.write(text)  # type: ignore[union-attr]
        return
    with open(fname, "w", encoding="utf-8") as fh:
        fh.write(text)


def read_optsum(source: str | os.PathLike | IO[str] | dict) -> dict[str, Any]:
    """A record written by `save_optsum` (a path, a text file object or the dict itself)."""
    if isinstance(source, dict):
        record = source
    elif hasattr(source, "read"):
        record = json.loads(source.read())  # type: ignore[union-attr]
    else:
        with open(source, encoding="utf-8") as fh:
            record = json.load(fh)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise DataError(f"not an optimizer summary written by save_optsum (format {FORMAT!r})")
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise DataError(
            f"the optimizer summary has format version {record['format_version']}; this "
            f"version of sparselme reads up to {FORMAT_VERSION}: update sparselme"
        )
    return record


def _optsum(fields: dict[str, Any]) -> OptSummary:
    values: dict[str, Any] = {k: float(fields[k]) for k in _OPTSUM_FLOATS}
    values |= {k: _array(fields.get(k)) for k in _OPTSUM_ARRAYS}
    if values["hessian"] is not None:
        values["hessian"] = values["hessian"].reshape(fields["hessian_shape"])
    values |= {k: fields[k] for k in _OPTSUM_PLAIN}
    values["fitlog"] = [(_array(x), float(v)) for x, v in fields.get("fitlog", [])]
    return OptSummary(**values)


def restore_optsum(
    model: MixedModel,
    source: str | os.PathLike | IO[str] | dict,
    REML: bool | None = None,  # noqa: N803 - lme4's argument name
) -> ModelFit:
    """The fit of ``model`` at the recorded optimum, without optimizing.

    Parameters
    ----------
    model : the model built on the same data (formula, data, weights, residual structure).
    source : what `save_optsum` wrote: a path, a text file object, or the record as a dict.
    REML : the criterion the caller expects; None takes the record's.

    Returns
    -------
    ModelFit
        Evaluated at the recorded parameters; its ``optsum`` is the recorded one.

    Raises
    ------
    sparselme.errors.DataError
        The record is not one, or was made on other data or another model (the message
        lists what differs), or its criterion is not reproduced here.
    """
    record = read_optsum(source)
    reml = bool(record["model"]["REML"])
    if REML is not None and bool(REML) != reml:
        fit_kind = "REML" if reml else "maximum likelihood"
        raise DataError(f"the optimizer summary is of a {fit_kind} fit; pass REML={reml}")
    problems = _mismatches(record["model"]["checks"], _checks(model))
    versions = record.get("versions", {})
    from .. import __version__

    made_by = versions.get("sparselme")
    note = f" (it was made by sparselme {made_by}, this is {__version__})"
    note = note if made_by != __version__ else ""
    if problems:
        raise DataError(
            "the optimizer summary was not made on this model and data; "
            + "; ".join(problems)
            + note
        )
    optsum = _optsum(record["optsum"])
    params = _array(record["estimates"]["parameters"])
    points = [(params, optsum.fmin)] + [
        (_array(p["parameters"]), float(p["criterion"])) for p in record["model"]["probes"]
    ]
    for point, recorded in points:
        value = model.objective(point, reml)
        if not math.isclose(value, recorded, rel_tol=RTOL, abs_tol=RTOL):
            raise DataError(
                f"the recorded criterion {recorded!r} is not reproduced on these data "
                f"({value!r}): the data or the model differ from those of the record{note}"
            )
    return model.fit_at(params, optsum, reml)
