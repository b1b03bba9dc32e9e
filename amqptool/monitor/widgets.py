"""The monitor's widgets. They draw what the selectors give them and never touch the state.

:class:`GridTable` is a small Line-API table (toolong style): it holds a sequence of items and
formats only the rows on screen, so a 10 000-task table costs the same to redraw as a
30-row one, and swapping in a new sorted/filtered list is just an assignment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Sparkline

from amqptool.monitor.bars import TextLine
from amqptool.monitor.core.clean import visible
from amqptool.monitor.core.selectors import HeaderView

__all__ = ["Column", "GridRow", "GridTable", "MonitorHeader"]

STATE_STYLES: dict[str, str] = {
    "SUCCESS": "green",
    "FAILURE": "bold red",
    "RETRY": "bold dark_orange",
    "REVOKED": "bold magenta",
    "REJECTED": "bright_red",
    "STARTED": "yellow",
    "RECEIVED": "cyan",
    "PENDING": "blue",
    "online": "green",
    "offline": "red",
}


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    width: int | None = None  # fixed width, or None to share the rest
    min_width: int = 6
    weight: int = 1
    compact: int | None = None  # a narrower fixed width used when the table is short of room
    optional: int = 0  # > 0: hidden when short of room (the highest number goes first)


@dataclass(frozen=True)
class GridRow:
    """One formatted row: its key, cells, the column whose value picks a colour, and dim."""

    key: str
    cells: tuple[str, ...]
    dim: bool = False


class GridTable(ScrollView, can_focus=True):
    """A scrollable table over a sequence of items, formatted lazily row by row."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid--header",
        "grid--cursor",
        "grid--cursor-blurred",
        "grid--dim",
    }
    DEFAULT_CSS = """
    GridTable {
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        background: $surface;
    }
    GridTable > .grid--header { text-style: bold; background: $panel; color: $text; }
    GridTable > .grid--cursor { background: $accent; color: $text; text-style: bold; }
    GridTable > .grid--cursor-blurred { background: $accent 40%; }
    GridTable > .grid--dim { color: $text-disabled; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "activate", "Open", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class RowActivated(Message):
        """Enter or a double click on a row."""

        def __init__(self, table: GridTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> GridTable:
            return self.table

    class HeaderClicked(Message):
        def __init__(self, table: GridTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

        @property
        def control(self) -> GridTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        formatter: Callable[[Any], GridRow],
        key_of: Callable[[Any], str],
        *,
        style_column: str | None = None,
        empty_text: str = "",
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.columns = list(columns)
        self.formatter = formatter
        self.key_of = key_of
        self.style_column = style_column
        self.empty_text = empty_text
        self.items: Sequence[Any] = ()
        self.sort_column: str | None = None
        self.sort_descending = True
        self.follow = True  # keep the cursor on the first row while it is there
        self._cache: dict[int, GridRow] = {}
        self._widths_cache: tuple[int, list[int]] | None = None

    # ------------------------------------------------------------------ data

    def set_items(self, items: Sequence[Any]) -> None:
        """Show ``items``; the cursor stays on the same key (or on the first row)."""
        selected = self.cursor_key
        self.items = items
        self._cache.clear()
        self._resize_rows(len(items) + 1)
        if not items or (self.follow and self.cursor == 0):
            self.cursor = 0
        elif selected is not None:
            index = self._index_of(selected)
            self.cursor = index if index is not None else min(self.cursor, len(items) - 1)
        else:
            self.cursor = min(self.cursor, len(items) - 1)
        self.refresh()

    def _resize_rows(self, rows: int) -> None:
        """Set the scrollable height without a screen-wide layout pass.

        ``virtual_size`` is a layout reactive: assigning it re-arranges and repaints the whole
        screen, which during a burst (rows added every refresh) is what a key press waited
        for. The scrollbars are updated in place instead; when one has to appear or vanish,
        its own reactive still asks for the layout.
        """
        size = Size(self.size.width, rows)
        if size != self.virtual_size:
            self.set_reactive(GridTable.virtual_size, size)
            self._scroll_update(size)

    def set_sort(self, column: str | None, descending: bool) -> None:
        self.sort_column = column
        self.sort_descending = descending
        self.refresh()

    def _index_of(self, key: str) -> int | None:
        key_of = self.key_of
        for i, item in enumerate(self.items):
            if key_of(item) == key:
                return i
        return None

    def row(self, index: int) -> GridRow:
        cached = self._cache.get(index)
        if cached is None:
            cached = self._cache[index] = self.formatter(self.items[index])
        return cached

    @property
    def cursor_key(self) -> str | None:
        if 0 <= self.cursor < len(self.items):
            return self.key_of(self.items[self.cursor])
        return None

    @property
    def cursor_item(self) -> Any:
        if 0 <= self.cursor < len(self.items):
            return self.items[self.cursor]
        return None

    def visible_keys(self) -> list[str]:
        """Keys of the rows on screen, top to bottom (for tests and the status line)."""
        top = int(self.scroll_offset.y)
        height = max(0, self.scrollable_content_region.height - 1)
        return [self.key_of(item) for item in self.items[top : top + height]]

    # ------------------------------------------------------------------ cursor

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.items) - 1)) if self.items else 0

    def watch_cursor(self, value: int) -> None:
        self.follow = value == 0
        height = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_offset.y)
        if value < top:
            self.scroll_to(y=value, animate=False, immediate=True)
        elif value >= top + height:
            self.scroll_to(y=value - height + 1, animate=False, immediate=True)
        self.refresh()

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= max(1, self.scrollable_content_region.height - 2)

    def action_page_down(self) -> None:
        self.cursor += max(1, self.scrollable_content_region.height - 2)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self.items) - 1

    def action_activate(self) -> None:
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowActivated(self, key))

    def on_click(self, event: events.Click) -> None:
        y = event.y
        if y == 0:
            column = self._column_at(event.x)
            if column is not None:
                self.post_message(self.HeaderClicked(self, column))
            return
        index = int(self.scroll_offset.y) + y - 1
        if 0 <= index < len(self.items):
            self.cursor = index
            if event.chain >= 2:
                self.action_activate()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # ------------------------------------------------------------------ layout

    def _widths(self, total: int) -> list[int]:
        """Each column's width; 0 for an optional column hidden for lack of room."""
        cached = self._widths_cache
        if cached is not None and cached[0] == total:
            return cached[1]
        shown = list(self.columns)
        fixed_widths = [c.width for c in shown]

        def needed() -> int:
            pairs = zip(shown, fixed_widths, strict=True)
            return sum(w if w is not None else c.min_width for c, w in pairs)

        for drop in sorted((c for c in shown if c.optional), key=lambda c: -c.optional):
            if needed() <= total - (len(shown) - 1):
                break
            index = shown.index(drop)
            del shown[index], fixed_widths[index]
        if needed() > total - (len(shown) - 1):
            fixed_widths = [c.compact or c.width if c.width is not None else None for c in shown]
        widths = self._share(shown, fixed_widths, total - (len(shown) - 1))
        by_key = {c.key: w for c, w in zip(shown, widths, strict=True)}
        result = [by_key.get(c.key, 0) for c in self.columns]
        self._widths_cache = (total, result)
        return result

    @staticmethod
    def _share(cols: list[Column], fixed_widths: list[int | None], avail: int) -> list[int]:
        fixed = sum(w for w in fixed_widths if w is not None)
        flex = [c for c in cols if c.width is None]
        rest = max(0, avail - fixed)
        weights = sum(c.weight for c in flex) or 1
        widths: list[int] = []
        given = 0
        for c, fixed_width in zip(cols, fixed_widths, strict=True):
            if fixed_width is not None:
                widths.append(fixed_width)
            else:
                w = max(c.min_width, rest * c.weight // weights)
                widths.append(w)
                given += w
        if flex and given < rest:  # hand the remainder to the last flexible column
            last = max(i for i, c in enumerate(cols) if c.width is None)
            widths[last] += rest - given
        return widths

    def _column_at(self, x: int) -> str | None:
        pos = 0
        for col, width in zip(
            self.columns, self._widths(self.scrollable_content_region.width), strict=True
        ):
            if not width:
                continue
            if pos <= x < pos + width + 1:
                return col.key
            pos += width + 1
        return None

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return self._header_strip(width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self.items):
            if index == 0 and self.empty_text:
                text = _fit(self.empty_text, width)
                return Strip([Segment(text, base + self.get_component_rich_style("grid--dim"))])
            return Strip.blank(width, base)
        row = self.row(index)
        if index == self.cursor:
            name = "grid--cursor" if self.has_focus else "grid--cursor-blurred"
            row_style = base + self.get_component_rich_style(name)
        elif row.dim:
            row_style = base + self.get_component_rich_style("grid--dim")
        else:
            row_style = base
        segments: list[Segment] = []
        # the cursor row is drawn in one colour: state colours on the accent are hard to read
        coloured = index != self.cursor and not row.dim
        for i, (col, cell_width) in enumerate(zip(self.columns, self._widths(width), strict=True)):
            if not cell_width:
                continue
            if segments:
                segments.append(Segment(" ", row_style))
            text = _fit(row.cells[i] if i < len(row.cells) else "", cell_width)
            style = row_style
            if coloured and col.key == self.style_column:
                colour = STATE_STYLES.get(row.cells[i]) if i < len(row.cells) else None
                if colour:
                    style = row_style + Style.parse(colour)
            segments.append(Segment(text, style))
        return Strip(segments).crop_extend(0, width, base)

    def _header_strip(self, width: int) -> Strip:
        style = self.rich_style + self.get_component_rich_style("grid--header")
        parts: list[str] = []
        for col, cell_width in zip(self.columns, self._widths(width), strict=True):
            if not cell_width:
                continue
            title = col.title
            if col.key == self.sort_column:
                title += " ↓" if self.sort_descending else " ↑"
            parts.append(_fit(title, cell_width))
        return Strip([Segment(" ".join(parts), style)]).crop_extend(0, width, style)


def _fit(text: str, width: int) -> str:
    """One cell: control characters visible (a second guard: the state cleans them already)."""
    if width <= 0:
        return ""
    text = visible(text)
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.ljust(width)


def _pack(items: list[Text], width: int, gap: str = "   ") -> Text:
    """Items on as many lines as ``width`` needs, never breaking one item in two."""
    out = Text()
    used = 0
    for item in items:
        if used and used + len(gap) + len(item) > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(gap)
            used += len(gap)
        out.append_text(item)
        used += len(item)
    return out


class MonitorHeader(Vertical):
    """Broker, connection state, workers, counts by state, rates and sparklines."""

    DEFAULT_CSS = """
    MonitorHeader { height: auto; background: $panel; padding: 0 1; }
    MonitorHeader > Static { height: auto; }
    MonitorHeader #rates { height: 1; }
    MonitorHeader #rates > Static { width: auto; height: 1; padding-right: 1; }
    MonitorHeader Sparkline { width: 40; height: 1; margin-right: 2; }
    MonitorHeader #ok-spark > .sparkline--max-color { color: $success; }
    MonitorHeader #ok-spark > .sparkline--min-color { color: $success 30%; }
    MonitorHeader #fail-spark > .sparkline--max-color { color: $error; }
    MonitorHeader #fail-spark > .sparkline--min-color { color: $error 30%; }
    """

    def compose(self) -> ComposeResult:
        yield TextLine("", id="title")
        yield TextLine("", id="summary")
        with Horizontal(id="rates"):
            yield TextLine("", id="ok-rate")
            yield Sparkline([0], id="ok-spark")
            yield TextLine("", id="fail-rate")
            yield Sparkline([0], id="fail-spark")

    _view: HeaderView | None = None

    def on_resize(self) -> None:
        if self._view is not None:
            self.show(self._view)

    def show(self, view: HeaderView) -> None:
        self._view = view
        if view.connected:
            conn = Text("● " + view.connection, style="bold green")
        else:
            conn = Text("✖ " + view.connection, style="bold red")
        totals = f"   events {view.events}  tasks {view.tasks_in_memory}/{view.max_tasks}"
        if view.malformed:
            totals += f"  malformed {view.malformed}"
        title = Text.assemble(
            ("amqptool monitor  ", "bold"), conn, "  ", (view.broker, "dim"), (totals, "dim")
        )
        self.query_one("#title", TextLine).show(title)
        items = [Text(f"workers {view.workers_online} online / {view.workers_offline} offline")]
        if not view.counts:
            items.append(Text("no tasks yet", style="dim"))
        for state, n in view.counts:
            items.append(Text.assemble((state, STATE_STYLES.get(state, "")), f" {n}"))
        self.query_one("#summary", TextLine).show(_pack(items, max(20, self.size.width - 2)))
        self.query_one("#ok-rate", TextLine).show(
            Text(f"succeeded {view.ok_rate:7.1f}/s", style="green")
        )
        self.query_one("#fail-rate", TextLine).show(
            Text(f"failed {view.fail_rate:6.1f}/s", style="red")
        )
        self.query_one("#ok-spark", Sparkline).data = list(view.ok_series) or [0]
        self.query_one("#fail-spark", Sparkline).data = list(view.fail_series) or [0]
