"""The ``sparselme`` command.

Usage:

    sparselme fit DATA.csv|.parquet "FORMULA" [--groups G [--re-formula F] [--vc NAME=F]]
                  [--ml] [--missing drop] [--format text|json]
    sparselme datasets                       # list the bundled datasets
    sparselme datasets export NAME [PATH]    # write one as CSV (or .parquet, or - for stdout)

An lme4 formula (``"y ~ x + (1 | g)"``) is fitted with `sparselme.lmer`; with
``--groups`` the formula is statsmodels' and the fit goes through
`sparselme.mixedlm`. Bad input is reported as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, datasets
from .errors import FormulaError, SparselmeError

__all__ = ["main", "read_table", "results_to_dict"]

EXIT_BAD_INPUT = 2


class CommandError(Exception):
    """A problem with the command's input that is not the model's (file type, extras)."""


# ---- reading and writing tables ---------------------------------------------------------------
def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally compressed), TSV or Parquet file into a DataFrame."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise CommandError(
                "reading Parquet needs pyarrow: pip install 'sparselme[parquet]'"
            ) from None
    compressed = suffixes[-1] in (".gz", ".bz2", ".xz", ".zip", ".zst") if suffixes else False
    kind = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes or [""])[-1]
    if kind not in (".csv", ".tsv", ".txt"):
        raise CommandError(f"{path}: expected a .csv, .tsv or .parquet file")
    try:
        return pd.read_csv(path, sep="\t" if kind == ".tsv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read as a table ({exc})") from None


def _write_table(data: pd.DataFrame, path: str) -> None:
    if path == "-":
        data.to_csv(sys.stdout, index=False)
    elif path.lower().endswith((".parquet", ".pq")):
        try:
            data.to_parquet(path, index=False)
        except ImportError:
            raise CommandError(
                "writing Parquet needs pyarrow: pip install 'sparselme[parquet]'"
            ) from None
    else:
        data.to_csv(path, index=False)


# ---- results as plain data ---------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if pd.isna(value):
        return None
    return str(value)


def results_to_dict(res: Any) -> dict[str, Any]:
    """Estimates, standard errors, variance components, likelihood and convergence."""
    fe, se = res.fe_params, res.bse_fe
    vc = res.varcorr
    optsum = res.optsum
    out = {
        "method": res.method,
        "nobs": res.nobs,
        "ngroups": res.ngroups,
        "fixed_effects": [
            {
                "name": name,
                "estimate": fe[name],
                "std_error": se[name],
                "t_value": fe[name] / se[name],
            }
            for name in fe.index
        ],
        "variance_components": [
            {col: row[col] for col in ("grp", "var1", "var2", "vcov", "sdcor")}
            for _, row in vc.iterrows()
        ],
        "sigma": res.sigma,
        "theta": res.theta,
        "loglik": res.llf,
        "AIC": res.AIC,
        "BIC": res.BIC,
        "deviance": res.deviance if not res.reml else None,
        "reml_criterion": res.reml_criterion if res.reml else None,
        "converged": res.converged,
        "singular": res.is_singular,
        "optimizer": {
            "name": optsum.optimizer,
            "evaluations": optsum.feval,
            "return": optsum.returnvalue,
            "messages": list(optsum.messages),
        },
    }
    return _clean(out)


# ---- commands ------------------------------------------------------------------------------------
def _parse_vc(items: Sequence[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, formula = item.partition("=")
        if not sep or not name.strip() or not formula.strip():
            raise CommandError(
                f"--vc expects NAME=FORMULA, e.g. classroom='0 + C(classroom)'; got {item!r}"
            )
        out[name.strip()] = formula.strip()
    return out


def _fit(args: argparse.Namespace) -> int:
    from .lme4 import lmer
    from .statsmodels_compat import mixedlm

    if (args.re_formula or args.vc) and not args.groups:
        raise CommandError("--re-formula and --vc need --groups (or write lme4 bar terms)")
    data = read_table(args.data)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.groups:
            model = mixedlm(
                args.formula,
                data,
                groups=args.groups,
                re_formula=args.re_formula,
                vc_formula=_parse_vc(args.vc),
                missing=args.missing,
            )
            res = model.fit(reml=not args.ml)
        else:
            res = lmer(args.formula, data, REML=not args.ml, missing=args.missing)
    elapsed = time.perf_counter() - start
    notes = _warning_lines(caught)
    if args.format == "json":
        out = {"formula": args.formula, "groups": args.groups, "re_formula": args.re_formula}
        out.update(results_to_dict(res))
        out["warnings"] = notes
        out["seconds"] = round(elapsed, 4)
        print(json.dumps(out, indent=2))
    else:
        print(str(res.summary()))
    for note in notes:
        print(f"sparselme: warning: {note}", file=sys.stderr)
    return 0


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    seen: list[str] = []
    for w in caught:
        if issubclass(w.category, DeprecationWarning):
            continue
        text = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        if text not in seen:
            seen.append(text)
    return seen


def _datasets(args: argparse.Namespace) -> int:
    if args.action is None:
        if args.name is not None:
            raise CommandError("usage: sparselme datasets [export NAME [PATH]]")
        rows = []
        for name in datasets.names():
            info = datasets.meta(name)
            cols = ", ".join(c["name"] for c in info["columns"])
            rows.append((name, str(info.get("nrow", "")), cols))
        width = max(len(r[0]) for r in rows)
        for name, nrow, cols in rows:
            print(f"{name:<{width}}  {nrow:>7} rows  {cols}")
        return 0
    if args.action != "export":
        raise CommandError(f"unknown datasets action {args.action!r}; expected 'export'")
    if args.name is None:
        raise CommandError("usage: sparselme datasets export NAME [PATH]")
    data = datasets.load(args.name)
    path = args.path or f"{datasets.meta(args.name)['dataset']}.csv"
    _write_table(data, path)
    if path != "-":
        print(f"wrote {len(data)} rows to {path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparselme",
        description="Linear mixed-effects models with lme4 formulas or statsmodels' MixedLM.",
    )
    parser.add_argument("--version", action="version", version=f"sparselme {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{fit,datasets}")

    fit = sub.add_parser(
        "fit",
        help="fit a model to a CSV or Parquet file",
        description="Fit a linear mixed model. Without --groups the formula is lme4's, "
        "e.g. 'Reaction ~ Days + (Days | Subject)'; with --groups it is statsmodels'.",
    )
    fit.add_argument("data", help="a .csv (.csv.gz, .tsv) or .parquet file")
    fit.add_argument("formula", help="model formula")
    fit.add_argument("--groups", help="grouping column (statsmodels' mixedlm)")
    fit.add_argument("--re-formula", help="random-effects formula for --groups, e.g. '~Time'")
    fit.add_argument(
        "--vc",
        action="append",
        metavar="NAME=FORMULA",
        help="a variance component within --groups, e.g. classroom='0 + C(classroom)'",
    )
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument(
        "--missing",
        choices=["raise", "drop"],
        default="raise",
        help="rows with missing values: raise an error (default) or drop them",
    )
    fit.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    fit.set_defaults(func=_fit)

    ds = sub.add_parser(
        "datasets",
        help="list the bundled datasets, or export one",
        description="Without arguments, list the bundled datasets. "
        "'export NAME [PATH]' writes one as CSV (PATH.parquet: Parquet; '-': stdout).",
    )
    ds.add_argument("action", nargs="?", help="'export'")
    ds.add_argument("name", nargs="?", help="dataset name (case-insensitive)")
    ds.add_argument("path", nargs="?", help="output file (default NAME.csv)")
    ds.set_defaults(func=_datasets)
    return parser


def _message(exc: BaseException) -> str:
    """One line for the user."""
    if isinstance(exc, FormulaError) and exc.formula is not None:
        where = f" at character {exc.position + 1}" if exc.position is not None else ""
        return f"malformed formula{where}: {exc.reason}: {exc.formula}"
    if isinstance(exc, KeyError) and not isinstance(exc, SparselmeError):
        text = str(exc.args[0]) if exc.args else "missing key"
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        text = f"no such file: {exc.filename}"
    else:
        text = str(exc)
    # the remedies the library's messages give as Python keywords, as options of the command
    text = text.replace("pass missing='drop'", "pass --missing drop")
    text = text.replace("Pass missing='drop'", "Pass --missing drop")
    return " ".join(text.split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0, or 2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SparselmeError, CommandError, ValueError, KeyError, FileNotFoundError) as exc:
        print(f"sparselme: error: {_message(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sparselme: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
