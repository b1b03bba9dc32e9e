"""The monitor's widgets skip the screen-wide layout pass when nothing moved; these tests show
that the layout still follows them when something did (a line that wraps, a label that grows,
a table that outgrows its height or shrinks back), and that the light key bar and the kept
help screen do what Textual's Footer and a fresh screen did."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from amqptool.monitor.bars import KeyBar, TextLine
from amqptool.monitor.screens import HelpScreen, TaskDetailScreen
from amqptool.monitor.widgets import Column, GridRow, GridTable
from tests.ui.test_monitor_app import make_app, screen_text, sync


class Lines(App[None]):
    CSS = """
    #stack { width: 20; height: auto; }
    #stack > Static { height: auto; }
    #row { height: 1; }
    #row > Static { width: auto; height: 1; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="stack"):
            yield TextLine("", id="line")
            yield Static("below", id="below")
        with Horizontal(id="row"):
            yield TextLine("", id="label")
            yield Static("next", id="next")


@sync
async def test_a_line_that_wraps_or_unwraps_moves_what_is_below_it() -> None:
    app = Lines()
    async with app.run_test(size=(40, 10)) as pilot:
        line, below = app.query_one("#line", TextLine), app.query_one("#below", Static)
        for text, rows in (
            ("short", 1),
            ("x" * 30, 2),  # wraps at 20 columns
            ("y" * 31, 2),  # the same room: redrawn, nothing moves
            ("a\nb\nc", 3),
            ("back", 1),
        ):
            line.show(Text(text))
            await pilot.pause()
            assert (line.size.height, below.region.y) == (rows, rows), text
            shown = "".join(strip.text for strip in line.render_lines(line.region))
            assert text.split("\n")[0][:20] in shown


@sync
async def test_a_label_sized_to_its_text_pushes_its_neighbour_when_it_grows() -> None:
    app = Lines()
    async with app.run_test(size=(40, 10)) as pilot:
        label, neighbour = app.query_one("#label", TextLine), app.query_one("#next", Static)
        for text in ("ab", "abcdef", "uvwxyz", "a"):  # grows, keeps its width, shrinks
            label.show(Text(text))
            await pilot.pause()
            assert neighbour.region.x == len(text), text


class Table(App[None]):
    CSS = "GridTable { height: 10; }"

    def compose(self) -> ComposeResult:
        yield GridTable([Column("n", "N")], lambda n: GridRow(str(n), (str(n),)), str, id="grid")


@sync
async def test_a_table_gets_its_scrollbar_when_rows_outgrow_it_and_loses_it_after() -> None:
    app = Table()
    async with app.run_test(size=(30, 20)) as pilot:
        grid = app.query_one(GridTable)
        grid.set_items(list(range(5)))
        await pilot.pause()
        assert not grid.show_vertical_scrollbar
        assert grid.scrollable_content_region.width == 30
        for rows in (50, 80):  # grows twice: the second time the scrollbar is already there
            grid.set_items(list(range(rows)))
            await pilot.pause()
            assert grid.show_vertical_scrollbar
            assert grid.scrollable_content_region.width == 29
            assert grid.max_scroll_y == rows + 1 - 10
            grid.action_last()
            await pilot.pause()
            assert grid.visible_keys()[-1] == str(rows - 1)
        grid.set_items(list(range(3)))
        await pilot.pause()
        assert not grid.show_vertical_scrollbar
        assert grid.scroll_offset.y == 0
        assert grid.visible_keys() == ["0", "1", "2"]


def bar_text(screen: Any) -> str:
    return str(screen.query_one(KeyBar).render())


@sync
async def test_the_key_bar_shows_each_screens_keys_and_a_click_presses_one() -> None:
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        main = app.screen
        shown = bar_text(main)
        for entry in ("q Quit", "? Help", "/ Filter", "K Shutdown worker", "palette"):
            assert entry in shown
        assert "Clear filter" not in shown  # a binding with show=False
        await pilot.press("d")  # the task detail screen has keys of its own
        await pilot.pause()
        assert isinstance(app.screen, TaskDetailScreen)
        assert "esc Back" in bar_text(app.screen) and "Filter" not in bar_text(app.screen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main
        start = shown.index("? Help")
        await pilot.click(KeyBar, offset=(start + 1, 0))
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


@sync
async def test_the_help_screen_is_built_once_and_shown_again_after_closing() -> None:
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("question_mark")
        first = app.screen
        assert isinstance(first, HelpScreen)
        assert "task detail (tasks table), worker detail" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is first
        text = screen_text(app)
        assert "Shutdown worker" in text and "(workers table)" in text  # wrapped, all there
        await pilot.press("q")  # closes help, does not quit
        assert not isinstance(app.screen, HelpScreen) and app.is_running


@sync
async def test_the_help_screen_is_built_ahead_so_the_first_press_only_shows_it() -> None:
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert app.is_screen_installed("help")
        ready = app.get_screen("help")
        assert isinstance(ready, HelpScreen)
        assert ready.is_running and ready.query(Static)  # composed, though never shown
        assert app.screen is not ready
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is ready
        assert "task detail (tasks table), worker detail" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is not ready and app.is_running
