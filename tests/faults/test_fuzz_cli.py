"""Property-based: any arguments to the control and call CLIs end in a result or a one-line error.

The broker URL points at a loopback port nobody listens on, so a well-formed command fails
fast with exit 70 and a malformed one with exit 2; what must never happen is an uncaught
exception, an "internal error" or a traceback.
"""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from amqptool import cli
from amqptool.control.command_table import all_names
from amqptool.errors import ExitCode
from tests.brokers import free_port

DEAD_URL = f"amqp://guest:S3CRET-cli@127.0.0.1:{free_port()}//"
CONTRACT = {int(code) for code in ExitCode}

words = st.one_of(
    st.sampled_from(sorted(all_names())),
    st.sampled_from(
        [
            "-d",
            "--destination",
            "-t",
            "--timeout",
            "--limit",
            "--idle",
            "--json",
            "--pattern",
            "--matcher",
            "pcre",
            "glob",
            "--terminate",
            "--signal",
            "SIGKILL",
            "--with-defaults",
            "--reload",
            "--safe",
            "--builtins",
            "--kwargs",
            "--countdown",
            "--eta",
            "--expires",
            "-Q",
            "--priority",
            "--task-id",
            "--serializer",
            "--wait",
            "-1",
            "0",
            "1e9",
            "nan",
            "10/s",
            "a=b",
            "{}",
            '{"x": [1, 2]}',
            "[",
            "--",
            "-",
            "",
        ]
    ),
    st.text(max_size=12),
)
FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse --help/--version
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue(), err.getvalue()


def assert_contract(code: int, out: str, err: str) -> None:
    assert code in CONTRACT, (code, err)
    assert "Traceback" not in err + out
    assert "internal error" not in err, err
    assert "S3CRET" not in err + out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, err
    if code != 0:
        assert errors, f"exit {code} without an error line: {err!r}"


@FUZZ
@given(
    options=st.lists(words, max_size=2),
    command=st.sampled_from(sorted(all_names())),
    args=st.lists(words, max_size=4),
)
def test_any_control_arguments_give_a_result_or_one_error_line(
    options: list[str], command: str, args: list[str]
) -> None:
    code, out, err = run_cli(["control", "-b", DEAD_URL, "-t", "0.2", *options, command, *args])
    event(f"exit {code}")
    assert_contract(code, out, err)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(name=st.one_of(st.just("peer.add"), st.text(max_size=10)), args=st.lists(words, max_size=5))
def test_any_call_arguments_give_a_result_or_one_error_line(name: str, args: list[str]) -> None:
    code, out, err = run_cli(["call", "-b", DEAD_URL, name, *args])
    event(f"exit {code}")
    assert_contract(code, out, err)
