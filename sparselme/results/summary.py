"""lme4's printout of a fit, as text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.results import ModelFit
from .rprint import correlation_block, scaled_residuals_block

__all__ = ["lme4_summary", "scaled_residuals"]

#: lme4's ``lme4.summary.cor.max``: the correlation block is shown up to this many fixed effects
COR_MAX = 12


def scaled_residuals(res: ModelFit) -> np.ndarray:
    """(n,) lme4's ``residuals(m, scaled = TRUE)``: Pearson residuals √w (y − fitted) / σ."""
    r = np.asarray(res.resid, dtype=float)
    w = res.design.weights
    r = r if w is None else r * np.sqrt(w)
    return r[~np.isnan(r)] / res.sigma


def lme4_summary(res: ModelFit, correlation: bool | None = None) -> str:
    """Text in the layout of lme4's ``summary(lmer(...))``.

    ``correlation``: print the "Correlation of Fixed Effects" block; by default (None) when
    there are at most 12 fixed effects, as lme4 does.
    """
    d = res.design
    formula = d.parsed.text if d.parsed is not None else ""
    crit = "REML criterion at convergence" if res.reml else "deviance"
    lines = [
        f"Linear mixed model fit by {'REML' if res.reml else 'maximum likelihood'}",
        f"Formula: {formula}",
        "",
    ]
    if res.reml:
        lines.append(f"{crit}: {res.reml_criterion:.4f}")
    else:
        lines.append(
            f"{'AIC':>10} {'BIC':>10} {'logLik':>10} {'deviance':>10}\n"
            f"{res.AIC:>10.1f} {res.BIC:>10.1f} {res.llf:>10.1f} {res.deviance:>10.1f}"
        )
    lines += ["", *scaled_residuals_block(scaled_residuals(res)), "", "Random effects:"]
    vc = res.varcorr
    table = [("Groups", "Name", "Variance", "Std.Dev.", "Corr")]
    for _, row in vc[vc["var2"].isna()].iterrows():
        table.append(
            (
                str(row.grp),
                "" if pd.isna(row.var1) else str(row.var1),
                f"{row.vcov:.4g}",
                f"{row.sdcor:.4g}",
                "",
            )
        )
    for _, row in vc[vc["var2"].notna()].iterrows():
        for i, tr in enumerate(table):
            if tr[0] == row.grp and tr[1] == row.var2:
                table[i] = tr[:4] + ((tr[4] + f" {row.sdcor:5.2f}").strip(),)
    widths = [max(len(tr[i]) for tr in table) for i in range(5)]
    last = None
    for tr in table:
        grp = tr[0] if tr[0] != last else ""
        last = tr[0]
        lines.append(
            " "
            + "  ".join(
                (grp if i == 0 else tr[i]).ljust(widths[i]) if i < 2 else tr[i].rjust(widths[i])
                for i in range(5)
            ).rstrip()
        )
    ng = "; ".join(f"{k}, {v}" for k, v in res.ngroups.items())
    lines += [f"Number of obs: {res.nobs}, groups:  {ng}", "", "Fixed effects:"]
    fe = pd.DataFrame(
        {
            "Estimate": res.fe_params,
            "Std. Error": res.bse_fe,
            "t value": res.fe_params / res.bse_fe,
        }
    )
    lines.append(fe.to_string(float_format=lambda v: f"{v:.5g}"))
    lines += correlation_lines(res, correlation)
    if res.is_singular:
        lines += ["", "boundary (singular) fit: see help('isSingular')"]
    for m in res.optsum.messages:
        lines.append(f"note: {m}")
    return "\n".join(lines)


def correlation_lines(res: ModelFit, correlation: bool | None) -> list[str]:
    p = res.k_fe
    if correlation is None:
        correlation = p <= COR_MAX
        if not correlation:
            return [
                "",
                f"Correlation matrix not shown by default, as p = {p} > {COR_MAX}.",
                "Use summary(correlation=True) or vcov() if you need it",
            ]
    if not correlation or p < 2:
        return []
    cov = res.cov_fe
    sd = np.sqrt(np.diag(cov))
    return ["", *correlation_block(cov / np.outer(sd, sd), list(res.exog_names))]
