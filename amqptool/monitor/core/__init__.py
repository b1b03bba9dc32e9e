"""The monitor's pure core: what the live view shows, computed from events and an explicit `now`.

The rule of this package (an import-linter contract in ``pyproject.toml``): it imports no
textual, textual_plotext, textual_serve, rich, prometheus_client, pika nor prompt_toolkit, and
none of the monitor's adapter modules (the app, screens, widgets, event feed, store, metrics,
server); it reads no clock (callers pass ``now``) and does no I/O. Here: the event fold
(`state`, `fields`, `model`), counts and runtimes (`totals`, `history`), the task filter and
sort (`query`), the view selectors (`selectors`), and text cleaning and formatting (`clean`,
`formatting`). See ``docs/architecture.md``.
"""

__all__: list[str] = []
