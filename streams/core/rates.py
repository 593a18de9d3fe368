"""Long-run rates of a key's entropy series: dS/dt, σ, γ_eff = σ − dS/dt, drift suppression, variance shares.

All with standard errors, 95% confidence intervals and p-values (normal approximations). Pure functions.

>>> r = slope_estimate([1.0, 1.1, 1.2, 1.3, 1.4], [0.05] * 5)
>>> round(r.value, 3), r.p_value < 0.001
(0.1, True)
>>> round(suppression(slope_estimate([0, .002, .004, .006], [.01] * 4),
...                   slope_estimate([0, .012, .024, .036], [.01] * 4)).value, 1)
83.3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from valuedrift.streams.core.rules.base import two_sided_p

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error, 95% CI and two-sided p-value against 0."""

    value: float
    se: float
    n: int

    @property
    def ci(self) -> tuple[float, float]:
        return (self.value - Z95 * self.se, self.value + Z95 * self.se)

    @property
    def p_value(self) -> float:
        return two_sided_p(self.value / self.se) if self.se > 0 else (0.0 if self.value else 1.0)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "ci_low": self.ci[0], "ci_high": self.ci[1], "p_value": self.p_value}


def slope_estimate(values: Sequence[float], ses: Sequence[float] | None = None,
                   steps: Sequence[float] | None = None) -> Estimate:
    """OLS slope of S per step. The SE is the larger of the residual-based SE and the one implied by the
    windows' own sampling SEs (so a short, smooth series does not claim more precision than sampling allows).

    ``steps`` gives each value's position (e.g. window index with gaps where a key had no events);
    the default is 0, 1, 2, ..."""
    y = np.asarray(values, dtype=float)
    t = len(y)
    if t < 3:
        raise ValueError(f"a slope needs at least 3 windows, got {t}")
    x = np.arange(t, dtype=float) if steps is None else np.asarray(steps, dtype=float)
    if len(x) != t:
        raise ValueError(f"steps has {len(x)} positions for {t} values")
    xc = x - x.mean()
    sxx = float((xc**2).sum())
    slope = float((xc * (y - y.mean())).sum() / sxx)
    resid = y - y.mean() - slope * xc
    se_resid = math.sqrt(float((resid**2).sum()) / (t - 2) / sxx)
    se = se_resid
    if ses is not None:
        s = np.asarray(ses, dtype=float)
        se = max(se, math.sqrt(float((xc**2 * s**2).sum())) / sxx)
    return Estimate(slope, se, t)


def effective_alignment_work(sigma: Estimate, observed: Estimate) -> Estimate:
    """γ_eff = σ − dS/dt: the entropy production a key's alignment removes (σ from a reference key or config)."""
    return Estimate(sigma.value - observed.value, math.hypot(sigma.se, observed.se), min(sigma.n, observed.n))


def suppression(tuned: Estimate, base: Estimate) -> Estimate:
    """Drift suppression in percent: 100·(1 − slope_tuned / slope_base), delta-method SE."""
    if base.value == 0:
        raise ValueError("the base key shows no drift (slope 0): suppression is undefined")
    r = tuned.value / base.value
    se_r = math.sqrt(tuned.se**2 + (r * base.se) ** 2) / abs(base.value)
    return Estimate(100.0 * (1.0 - r), 100.0 * se_r, min(tuned.n, base.n))


def variance_shares(values: Sequence[float], ses: Sequence[float]) -> dict[str, float]:
    """Split the variance of window entropies into sampling (mean SE²) and the rest (between steps/prompts)."""
    v = float(np.var(np.asarray(values, dtype=float), ddof=1)) if len(values) > 1 else 0.0
    sampling = float(np.mean(np.asarray(ses, dtype=float) ** 2)) if len(ses) else 0.0
    share = min(sampling / v, 1.0) if v > 0 else 1.0
    return {"total_variance": v, "sampling_variance": sampling, "sampling_share": share,
            "between_share": 1.0 - share}
