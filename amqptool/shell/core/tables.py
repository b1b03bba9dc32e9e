"""Listings as aligned text columns (numbers to the right). Pure."""

from __future__ import annotations

from typing import Any

from amqptool.shell.core.outcome import Table

__all__ = ["cell", "table_text"]


def cell(value: Any) -> str:
    """One value as table text: '-' for none, yes/no for booleans, k=v for small dicts."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) or "-"


def table_text(table: Table) -> str:
    if not table.rows:
        return f"(no {table.what})"
    if table.vertical:
        width = max(len(c) for c in table.columns)
        return "\n".join(
            f"{c.ljust(width)}  {cell(row.get(c))}" for row in table.rows for c in table.columns
        )
    cells = [[cell(row.get(c)) for c in table.columns] for row in table.rows]
    numeric = [
        all(
            (isinstance(row.get(c), int | float) and not isinstance(row.get(c), bool))
            or row.get(c) is None
            for row in table.rows
        )
        for c in table.columns
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(table.columns)]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(list(table.columns)), *(line(r) for r in cells)])
