"""Plain-text tables and numbers for the command line's printouts."""

from __future__ import annotations


def percent(value) -> str:
    """A share (0-1) as "65.1%", or "-" when unknown."""
    return "-" if value is None else f"{100 * value:.1f}%"


def number(value, digits: int) -> str:
    """A number with `digits` decimals, or "-" when unknown."""
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[list[str]]) -> None:
    """Rows of text cells (the first one the header) in left-aligned columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
