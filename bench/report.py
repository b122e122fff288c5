"""`make bench`'s output: one table of every figure with its reference, ratio, target and verdict, and one JSON line
with keys that stay the same from run to run (see bench/__main__.py for the keys)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Row:
    """One figure. `key` is its stable name in the JSON line. `target` bounds the ratio (ours / reference) or, with
    `on="value"`, ours itself; no target: shown for information."""

    key: str
    figure: str
    ours: float | None
    reference: float | None = None
    unit: str = ""
    target: float | None = None
    on: Literal["ratio", "value"] = "ratio"

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.reference is None or self.reference == 0:
            return None
        return self.ours / self.reference

    @property
    def passed(self) -> bool | None:
        checked = self.ours if self.on == "value" else self.ratio
        if self.target is None or checked is None:
            return None
        return checked <= self.target

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: ""}[self.passed]

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"≤ {_number(self.target)} {self.unit}".rstrip() if self.on == "value" else f"≤ {_number(self.target)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "ours": _finite(self.ours),
            "reference": _finite(self.reference),
            "ratio": _finite(self.ratio),
            "unit": self.unit,
            "target": self.target,
            "target_on": self.on if self.target is not None else None,
            "pass": self.passed,
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def _number(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "—"
    magnitude = abs(value)
    if value == int(value) and magnitude >= 1:
        return f"{int(value)} {unit}".rstrip()
    text = f"{value:.0f}" if magnitude >= 100 else f"{value:.1f}" if magnitude >= 10 else f"{value:.2f}"
    if magnitude and magnitude < 0.1:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip()


COLUMNS = ("figure", "ours", "reference", "ratio", "target", "")


def table(sections: Mapping[str, Iterable[Row]]) -> str:
    """The one table: a header, then each section's rows under its title."""
    cells: list[tuple[str, ...] | str] = []
    for title, rows in sections.items():
        cells.append(title)
        cells += [
            (
                f"  {row.figure}",
                _number(row.ours, row.unit),
                _number(row.reference, row.unit),
                "—" if row.ratio is None else _number(row.ratio),
                row.target_text(),
                row.verdict,
            )
            for row in rows
        ]
    widths = [len(name) for name in COLUMNS]
    for cell in cells:
        if isinstance(cell, tuple):
            widths = [max(width, len(text)) for width, text in zip(widths, cell, strict=True)]
    rule = "  ".join("-" * width for width in widths)

    def line(values: tuple[str, ...]) -> str:
        first, *rest = values
        return "  ".join(
            [first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))]
        ).rstrip()

    out = [line(COLUMNS), rule]
    for cell in cells:
        out.append(cell if isinstance(cell, str) else line(cell))
    return "\n".join(out)


def json_line(header: Mapping[str, Any], sections: Mapping[str, Iterable[Row]]) -> str:
    """`header` (run settings and headline numbers) plus `figures`: every row by key."""
    figures = {row.key: row.as_json() for rows in sections.values() for row in rows}
    return json.dumps({**header, "figures": figures}, separators=(",", ":"), sort_keys=False)
