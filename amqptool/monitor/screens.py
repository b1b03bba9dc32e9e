"""The monitor's secondary screens: task detail, help, confirmation, rate-limit prompt."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static

from amqptool.monitor.actions import valid_rate
from amqptool.monitor.bars import KeyBar
from amqptool.monitor.core.history import Series
from amqptool.monitor.core.selectors import TaskDetail
from amqptool.monitor.core.totals import TypeRow
from amqptool.monitor.tables import types_table
from amqptool.monitor.widgets import STATE_STYLES, GridTable

__all__ = [
    "ConfirmScreen",
    "GraphsScreen",
    "HelpScreen",
    "RateLimitScreen",
    "TaskDetailScreen",
    "TaskTypesScreen",
    "render_detail",
]


def render_detail(detail: TaskDetail) -> RenderableType:
    """The detail view of one task as a rich renderable (pure function of the selector)."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    for label, value in detail.fields:
        style = STATE_STYLES.get(value, "") if label == "state" else ""
        fields.add_row(Text(label), Text(value, style=style))
    for label, value in detail.extra:
        fields.add_row(Text(label), Text(value, style="italic"))
    timeline = Table(title="timeline", title_justify="left", expand=False, box=None)
    timeline.add_column("time", no_wrap=True)
    timeline.add_column("+", justify="right", no_wrap=True)
    timeline.add_column("event", no_wrap=True)
    timeline.add_column("host", no_wrap=True)
    for entry in detail.timeline:
        event_state = entry.event.removeprefix("task-").upper()
        colour = {"SUCCEEDED": "green", "FAILED": "red", "RETRIED": "magenta"}.get(event_state)
        timeline.add_row(
            entry.time, entry.offset, Text(entry.event, style=colour or ""), entry.host
        )
    parts: list[RenderableType] = [fields, Text(""), timeline]
    if detail.parent or detail.children:
        family = Table(title="parent and children", title_justify="left", box=None)
        for column in ("", "uuid", "name", "state"):
            family.add_column(column, no_wrap=True)
        for role, (uuid, name, state) in [
            *([("parent", detail.parent)] if detail.parent else []),
            *(("child", c) for c in detail.children),
        ]:
            family.add_row(role, uuid, name, Text(state, style=STATE_STYLES.get(state, "")))
        parts += [Text(""), family]
    if detail.traceback:
        parts += [Text(""), Text("traceback", style="bold"), Text(detail.traceback, style="red")]
    return Group(*parts)


class TaskDetailScreen(Screen[None]):
    """Args, kwargs, result or exception with traceback, retries, eta/expires, timeline."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "app.pop_screen", "Back"),
        Binding("x", "app.revoke_task", "Revoke"),
        Binding("X", "app.terminate_task", "Terminate"),
        Binding("l", "app.rate_limit", "Rate limit"),
        Binding("question_mark", "app.help", "Help"),
    ]
    DEFAULT_CSS = """
    TaskDetailScreen #detail-title { height: 1; background: $panel; padding: 0 1; }
    TaskDetailScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(self, uuid: str, render: Callable[[str], TaskDetail | None]) -> None:
        super().__init__()
        self.uuid = uuid
        self._detail_for = render
        self._last: TaskDetail | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title")
        with VerticalScroll():
            yield Static("", id="detail-body")
        yield KeyBar()

    def on_mount(self) -> None:
        self.refresh_detail()
        self.set_interval(0.5, self.refresh_detail)

    def refresh_detail(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen is being dismissed
            self._show(self._detail_for(self.uuid))

    def _show(self, detail: TaskDetail | None) -> None:
        if detail is None:
            self.query_one("#detail-title", Static).update(
                Text(f"task {self.uuid}: no longer in memory", style="bold red")
            )
            return
        if detail == self._last:
            return
        self._last = detail
        title = Text.assemble(
            ("task ", "bold"),
            (detail.uuid, "bold"),
            "  ",
            detail.name,
            "  ",
            (detail.state, STATE_STYLES.get(detail.state, "bold")),
        )
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#detail-body", Static).update(render_detail(detail))


class HelpScreen(ModalScreen[None]):
    """Every key, generated from the same tables the bindings come from."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close")
    ]
    WIDTH = 72  # the box; its text is 6 columns narrower (border and padding)
    DEFAULT_CSS = f"""
    HelpScreen {{ align: center middle; }}
    HelpScreen > Vertical {{
        width: {WIDTH}; height: auto; max-height: 90%;
        border: thick $accent; background: $surface; padding: 1 2;
    }}
    """

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        # Plain lines wrapped here, not a rich Table: measuring and drawing a Table grid was a
        # large part of the time between the key press and the help showing.
        width = max((cell_len(key) for key, _ in self.keys), default=0)
        room = max(10, self.WIDTH - 6 - width - 3)
        lines: list[Text] = []
        for key, text in self.keys:
            for i, part in enumerate(textwrap.wrap(text, room) or [""]):
                label = key if i == 0 else ""
                lines.append(
                    Text.assemble(
                        (label + " " * (width - cell_len(label)), "bold cyan"), "   ", part
                    )
                )
        table = Text("\n").join(lines)
        with Vertical():
            yield Label(Text("amqptool monitor: keys", style="bold"))
            yield Static(table, id="help-keys")
            yield Label(
                Text(
                    "filter syntax: state:FAILURE,RETRY name:add worker:w1 free words",
                    style="dim",
                )
            )


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question for destructive actions (``y``/Enter yes, ``n``/Escape no)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 90%; max-width: 110; height: auto; border: thick $error; background: $surface;
        padding: 1 2;
    }
    ConfirmScreen #question { width: 100%; }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; }
    ConfirmScreen Button { margin-right: 2; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), id="question")
            with Horizontal():
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class RateLimitScreen(ModalScreen[str | None]):
    """Ask for a rate limit (``10/m``; ``0`` removes the limit)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    RateLimitScreen { align: center middle; }
    RateLimitScreen > Vertical {
        width: 70; height: auto; border: thick $accent; background: $surface; padding: 1 2;
    }
    RateLimitScreen #rate-error { color: $error; height: auto; }
    """

    def __init__(self, task_name: str) -> None:
        super().__init__()
        self.task_name = task_name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                Text(f"Rate limit for {self.task_name} (e.g. 10/s, 100/m, 1000/h; 0 = none)")
            )
            yield Input(placeholder="10/m", id="rate")
            yield Label("", id="rate-error")

    def on_mount(self) -> None:
        self.query_one("#rate", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not valid_rate(value):
            self.query_one("#rate-error", Label).update(
                Text(f"not a rate: {value!r} (use N, N/s, N/m or N/h)")
            )
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TaskTypesScreen(Screen[None]):
    """Totals since start per task type (never forgotten), with runtime percentiles."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,T", "app.pop_screen", "Back"),
        Binding("question_mark", "app.help", "Help"),
    ]
    DEFAULT_CSS = """
    TaskTypesScreen #types-title { height: 1; background: $panel; padding: 0 1; }
    TaskTypesScreen #types { height: 1fr; }
    """

    def __init__(self, rows: Callable[[], Sequence[TypeRow]], title: Callable[[], str]) -> None:
        super().__init__()
        self._rows = rows
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static("", id="types-title")
        yield types_table()
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#types", GridTable).focus()
        self.refresh_types()
        self.set_interval(1.0, self.refresh_types)

    def refresh_types(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen is being dismissed
            self.query_one("#types-title", Static).update(Text(self._title(), style="bold"))
            self.query_one("#types", GridTable).set_items(list(self._rows()))


class GraphsScreen(Screen[None]):
    """Throughput, failures, queue depth and runtime p95 over the last minutes (plotext)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,h", "app.pop_screen", "Back"),
        Binding("plus", "span(15)", "Longer"),
        Binding("minus", "span(-15)", "Shorter"),
    ]
    DEFAULT_CSS = """
    GraphsScreen #graphs-title { height: 1; background: $panel; padding: 0 1; }
    GraphsScreen Grid { grid-size: 2 2; height: 1fr; }
    """
    _PLOTS = (
        ("throughput", "succeeded tasks per second"),
        ("failures", "failed tasks per second"),
        ("depth", "messages ready in the watched queues"),
        ("p95", "runtime p95 of succeeded tasks (seconds)"),
    )

    def __init__(self, series: Callable[[int], Series]) -> None:
        super().__init__()
        self._series = series
        self.minutes = 15
        self.drawn: Series | None = None

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        yield Static("", id="graphs-title")
        with Grid():
            for key, _ in self._PLOTS:
                yield PlotextPlot(id=f"plot-{key}")
        yield KeyBar()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(2.0, self.redraw)

    def action_span(self, delta: int) -> None:
        self.minutes = max(15, min(60, self.minutes + delta))
        self.redraw()

    def redraw(self) -> None:
        from textual_plotext import PlotextPlot

        series = self._series(self.minutes)
        self.drawn = series
        with contextlib.suppress(NoMatches):
            self.query_one("#graphs-title", Static).update(
                Text(f"the last {self.minutes} minutes (+/- to change)   ", style="bold")
            )
            for key, title in self._PLOTS:
                values: list[float | None] = getattr(series, key)
                points = [
                    (x, y) for x, y in zip(series.minutes, values, strict=True) if y is not None
                ]
                widget = self.query_one(f"#plot-{key}", PlotextPlot)
                plt = widget.plt
                plt.clear_data()
                plt.clear_figure()
                plt.title(title)
                plt.xlabel("minutes ago")
                plt.xlim(-self.minutes, 0)
                if points:
                    plt.plot([p[0] for p in points], [p[1] for p in points], marker="braille")
                widget.refresh()
