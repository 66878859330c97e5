"""Result tables that print whole: every row and column, whatever pandas' display options.

A `Table` is a pandas DataFrame whose ``str``/``repr`` (and notebook HTML) show all of
it, as R prints a data frame, under optional heading lines (``heading``, e.g. the model
formulas of an ``anova`` table). Anything else is the DataFrame's behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["Table", "as_table"]


class Table(pd.DataFrame):
    """A DataFrame printed in full, after ``attrs["heading"]`` (a list of lines) if set."""

    @property
    def _constructor(self):
        return Table

    @property
    def heading(self) -> list[str]:
        return list(self.attrs.get("heading", []))

    def __repr__(self) -> str:
        return "\n".join([*self.heading, self.to_string()])

    __str__ = __repr__

    def _repr_html_(self) -> str:
        head = "".join(f"<p>{line}</p>" for line in self.heading)
        return head + self.to_html(max_rows=None, max_cols=None)


def as_table(frame: pd.DataFrame, heading: Sequence[str] = ()) -> Table:
    """``frame`` as a `Table` (same data, index and attrs) with ``heading`` lines."""
    out = Table(frame)
    out.attrs = dict(frame.attrs)
    if heading:
        out.attrs["heading"] = list(heading)
    return out
