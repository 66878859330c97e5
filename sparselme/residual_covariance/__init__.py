"""Residual variance structures: heteroscedastic strata (VarIdent) and AR(1) within groups.

The residuals get a covariance σ²R(ρ) instead of σ²W₀⁻¹ (W₀: prior weights):

    VarIdent("s"):  var(εᵢ) = σ² δ²_{s(i)} / w₀ᵢ,  δ of the first level of s fixed at 1
    AR1("t", "g"):  corr(εᵢ, εⱼ) = φ^|tᵢ − tⱼ|  within a group of g, 0 between groups

Both keep the engine's central property, no O(n) work per evaluation: the precision
W(ρ) = R(ρ)⁻¹ is a fixed linear combination Σⱼ cⱼ(ρ) Wⱼ of sparse matrices that do not
depend on ρ, so every cross-product [Z X y]ᵀW[Z X y] the engine needs is Σⱼ cⱼ(ρ) Pⱼ with
Pⱼ = [Z X y]ᵀWⱼ[Z X y] computed once. An evaluation combines the stored Pⱼ (a (J,)·(J, size)
product over the size of the cross-products, never over n), writes them into the engine's
cross-products in place and refactors. log|W(ρ)| has a closed form.

* VarIdent: one Wⱼ per stratum (the indicator of its rows), cⱼ = δⱼ⁻².
* AR1: the precision of a stationary AR(1) observed at integer times is tridiagonal
  (a Markov chain). For consecutive observations i, i' of a group with gap d = t_i' − t_i,
  r = φ^d, it adds (e_i' − r e_i)(e_i' − r e_i)ᵀ/(1 − r²); the first observation of each
  group adds e_i e_iᵀ. So per distinct gap d there are three products — the later
  observations (cⱼ = 1/(1−r²)), the earlier ones (r²/(1−r²)) and the lag pairs
  (−r/(1−r²)) — plus one for the group starts (cⱼ = 1); log|W| = −Σ_d n_d log(1 − φ^{2d}).
  With equally spaced times there is only d = 1 (the tridiagonal (C₀ + φ²C_interior −
  φC_lag1)/(1 − φ²) of nlme's corAR1); gaps in the times are exact, as in nlme's
  corARMA(p = 1). Lag products keep each term's level-block-diagonal pattern because an
  AR group must lie within one level of every grouping factor (checked).

`ResidualBlock` makes ρ a parameter block of the model (the one fit driver fits θ and
ρ jointly, δ on a log scale, φ = tanh η); `residual_covariance` gives ρ's standard
errors from the finite-difference Hessian of the profiled deviance.
"""

from __future__ import annotations

from .model import ResidualBlock, ResidualModel, residual_covariance, residual_rows
from .products import CrossProductLayout
from .structures import AR1, ResidualStructureError, VarIdent

__all__ = [
    "VarIdent",
    "AR1",
    "ResidualStructureError",
    "ResidualBlock",
    "ResidualModel",
    "CrossProductLayout",
    "residual_covariance",
    "residual_rows",
]
