"""Plain-text tables for the terminal: every table the ``vigil`` commands print
(``status``, ``sources status``, ``subscriptions list``, ``dlq list``, ``eval``).

Columns are as wide as their widest cell, two spaces apart; a column of numbers is aligned
right (floats with three decimals), any other column left; lines carry no trailing spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _text(cell: object) -> str:
    return f"{cell:.3f}" if isinstance(cell, float) else str(cell)


def render_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, indent: str = ""
) -> list[str]:
    """The lines of a table: ``header`` then ``rows``, each line starting with ``indent``."""
    body = [list(row) for row in rows]
    numeric = [
        bool(body) and all(isinstance(row[i], int | float) for row in body)
        for i in range(len(header))
    ]
    cells = [list(header), *([_text(cell) for cell in row] for row in body)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        indent
        + "  ".join(
            text.rjust(width) if right else text.ljust(width)
            for text, width, right in zip(row, widths, numeric, strict=True)
        ).rstrip()
        for row in cells
    ]
