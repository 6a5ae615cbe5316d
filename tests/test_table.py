"""The one table renderer of the ``vigil`` commands."""

from __future__ import annotations

from shared.table import render_table


def test_columns_fit_their_widest_cell_and_numbers_align_right() -> None:
    lines = render_table(("NAME", "COUNT", "NOTE"), [("alpha", 3, "ok"), ("b", 120, "")])
    assert lines == [
        "NAME   COUNT  NOTE",
        "alpha      3  ok",
        "b        120",
    ]


def test_floats_have_three_decimals_and_a_mixed_column_aligns_left() -> None:
    lines = render_table(("K", "SCORE", "LAG"), [("x", 0.5, 3), ("y", 1.0, "?")], indent="  ")
    assert lines == [
        "  K  SCORE  LAG",
        "  x  0.500  3",
        "  y  1.000  ?",
    ]


def test_a_table_without_rows_is_its_header() -> None:
    assert render_table(("ID", "REASON"), []) == ["ID  REASON"]
