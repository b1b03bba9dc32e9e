"""Two lines of text the monitor redraws often, each redrawn in place: :class:`TextLine` (the
header and status lines) and :class:`KeyBar` (the keys of the screen in front). Both exist to
keep Textual's screen-wide layout pass out of the way of a key press (bench_monitor_ui).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget
from textual.widgets import Static

__all__ = ["KeyBar", "TextLine"]


class TextLine(Static):
    """A :class:`Static` for text that changes often: an update that takes the same room on
    screen repaints this widget only, not the whole screen's layout."""

    _room: tuple[int, int, int] | None = None

    def show(self, text: Text) -> None:
        width = self.content_region.width
        cells = [line.cell_len for line in text.split("\n", allow_blank=True)]
        rows = sum(-(-c // width) or 1 for c in cells) if width > 0 else len(cells)
        # a width:auto widget grows with its widest line; any other only with its rows
        widest = (
            max(cells, default=0) if self.styles.width is None or self.styles.width.is_auto else 0
        )
        room = (width, rows, widest)
        self.update(text, layout=room != self._room)
        self._room = room


class KeyBar(Widget):
    """The shown keys of the screen it is on, drawn as one line of text; a click on a key
    presses it.

    Textual's ``Footer`` mounts a widget per key and re-mounts them all whenever the bindings
    change (each screen pushed or popped, each focus move), and the screen's layout runs again
    for it: a key press that opened or closed a screen waited for that. This line is redrawn
    in place.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"keybar--key", "keybar--description"}
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $footer-background; }
    KeyBar > .keybar--key {
        color: $footer-key-foreground; background: $footer-key-background; text-style: bold;
    }
    KeyBar > .keybar--description { color: $footer-description-foreground; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: list[tuple[str, str, bool, str]] = []  # shown key, description, on, key

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._collect()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Any) -> None:
        if self.is_attached and screen is self.screen:
            self._collect()

    def _collect(self) -> None:
        entries, seen = [], set()
        active = self.screen.active_bindings
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue  # one entry per action, for its first key (as Footer shows them)
            seen.add(binding.action)
            entries.append(
                (self.app.get_key_display(binding), binding.description, enabled, binding.key)
            )
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if self.app.ENABLE_COMMAND_PALETTE and palette and palette.binding.action not in seen:
            _node, binding, enabled, _tooltip = palette  # last, as Footer shows it
            entries.append((self.app.get_key_display(binding), "palette", enabled, binding.key))
        if entries != self._entries:
            self._entries = entries
            self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        text_style = self.get_component_rich_style("keybar--description", partial=True)
        text = Text(no_wrap=True, overflow="crop", end="")
        for shown, description, enabled, _key in self._entries:
            dim = Style() if enabled else Style(dim=True)
            text.append(f" {shown} ", key_style + dim)
            text.append(f"{description} ", text_style + dim)
        return text

    def on_click(self, event: events.Click) -> None:
        start = 0
        for shown, description, _enabled, key in self._entries:
            end = start + cell_len(shown) + cell_len(description) + 3
            if start <= event.x < end:
                self.app.simulate_key(key)
                return
            start = end
