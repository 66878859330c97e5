"""MkDocs hooks: draw the plots shown in the docs, and link pages that exist.

* ``on_config``: pages in the nav whose file is not (yet) in docs/ are left out of the
  nav with an info message instead of failing ``mkdocs build --strict``.
* ``on_pre_build``: fits the example models and writes ``docs/img/*.png`` with
  sparselme's own plotting functions, so the images always show the current code. A file
  is rewritten only when its bytes change, so ``mkdocs serve`` does not loop.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.sparselme")


# ---- navigation ------------------------------------------------------------------------------
def _prune(nav: list, docs_dir: Path) -> list:
    kept = []
    for item in nav:
        if isinstance(item, dict):
            ((title, target),) = item.items()
            if isinstance(target, list):
                target = _prune(target, docs_dir)
                if target:
                    kept.append({title: target})
            elif "://" in str(target) or (docs_dir / str(target)).exists():
                kept.append(item)
            else:
                log.info("nav: %s (%s) is not written yet; left out", title, target)
        elif isinstance(item, str) and not (docs_dir / item).exists():
            log.info("nav: %s is not written yet; left out", item)
        else:
            kept.append(item)
    return kept


def on_config(config):
    if config.nav:
        config.nav = _prune(config.nav, Path(config.docs_dir))
    return config


# ---- images ----------------------------------------------------------------------------------
def _diagnostics():
    import sparselme as sl

    res = sl.lmer("Weight ~ Time + (Time | Pig)", sl.datasets.load("dietox"))
    return res.plot_diagnostics()


def _caterpillar():
    import numpy as np
    import pandas as pd

    import sparselme as sl

    rng = np.random.default_rng(2024)  # the students of "Getting started"
    rows = []
    for s in range(20):
        a, b = rng.normal(0, 3.0), rng.normal(0, 0.4)
        for c in range(4):
            u = rng.normal(0, 1.5)
            for _ in range(10):
                hours = rng.uniform(0, 10)
                score = 60 + 1.5 * hours + a + b * hours + u + rng.normal(0, 2.5)
                rows.append(
                    {"school": f"S{s:02d}", "classroom": c + 1, "hours": hours, "score": score}
                )
    res = sl.lmer("score ~ hours + (1 | school/classroom)", pd.DataFrame(rows))
    return res.plot_ranef(groups=["school"])


def _caterpillar_crossed():
    import sparselme as sl

    res = sl.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", sl.datasets.load("Penicillin"))
    return res.plot_ranef()


def _caterpillar_slopes():
    import sparselme as sl

    res = sl.lmer("Reaction ~ Days + (Days | Subject)", sl.datasets.load("sleepstudy"))
    return res.plot_ranef()


def _sitka_profile():
    import numpy as np
    import pandas as pd

    import sparselme as sl
    from sparselme.plotting import plot_profile

    data = sl.datasets.load("Sitka")
    data["Intercept"] = 1.0
    exog = data[["Intercept", "Time"]]
    mdf = sl.MixedLM(data["size"], exog, groups=data["tree"], exog_re=exog["Intercept"]).fit()
    v = mdf.cov_re.iloc[0, 0]
    likev = mdf.profile_re(0, "re", num_low=8, dist_low=0.5 * v, num_high=8, dist_high=v)
    value, loglik = likev[:, 0], likev[:, 1]
    zeta = np.sign(value - v) * np.sqrt(np.maximum(2 * (mdf.llf - loglik), 0))
    return plot_profile({"Intercept Var": pd.DataFrame({"value": value, "zeta": zeta})})


IMAGES: dict[str, Callable] = {
    "diagnostics.png": _diagnostics,
    "caterpillar.png": _caterpillar,
    "caterpillar-crossed.png": _caterpillar_crossed,
    "caterpillar-slopes.png": _caterpillar_slopes,
    "sitka-profile.png": _sitka_profile,
}


def write_images(img_dir: Path) -> list[str]:
    """Draw every image; returns the names of the files that changed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, draw in IMAGES.items():
        fig = draw()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        path = img_dir / name
        if not path.exists() or path.read_bytes() != buf.getvalue():
            path.write_bytes(buf.getvalue())
            changed.append(name)
    return changed


def on_pre_build(config):
    changed = write_images(Path(config.docs_dir) / "img")
    if changed:
        log.info("drew %s", ", ".join(changed))
