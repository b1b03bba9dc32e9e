"""The shell's pure core: from a typed line to a parsed command, and from an outcome to text.

The rule of this package (an import-linter contract in ``pyproject.toml``): it imports no
prompt_toolkit, pika nor textual, and none of the shell's adapter modules (the prompt_toolkit
REPL and completer, the runner over the transport, the session's I/O, the consume loop, the
watchdog, the management listing); it reads no clock and does no I/O. Here: the lexer and
parser, the command specs and table (`spec`, `toolspecs`, `command_table`, `vocab`), help
text, completion analysis (`completion`, over the known names in `names`), the outcome types
and their rendering (`outcome`, `render`, `tables`), message views (`messages`), the JSON-lines
form of a message (`jsonl`) and the ports the runner drives (`ports`). See
``docs/architecture.md``.
"""

__all__: list[str] = []
