"""Messages cannot make us run code: pickle stays off unless named, results import nothing."""

from __future__ import annotations

import pickle
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amqptool.codec import control, events, results, serialization, tasks
from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import DecodeError

FIRED: list[str] = []


def _tripwire(tag: str) -> dict[str, Any]:
    """What the hostile pickle calls. Harmless, but it proves the payload ran."""
    FIRED.append(tag)
    return {"task": "t.x", "id": "1", "type": "worker-online", "method": "ping"}


class _Hostile:
    def __reduce__(self) -> tuple[Callable[[str], dict[str, Any]], tuple[str]]:
        return (_tripwire, ("pickle payload ran",))


PICKLE_BODY = pickle.dumps(_Hostile(), protocol=4)


def pickled(headers: dict[str, Any] | None = None) -> Envelope:
    return Envelope(
        body=PICKLE_BODY,
        properties=Properties(
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers=headers or {},
        ),
    )


@pytest.fixture(autouse=True)
def _clear_tripwire() -> None:
    FIRED.clear()


@pytest.mark.parametrize(
    "decode",
    [
        lambda env, **kw: tasks.decode_task(env, **kw),
        lambda env, **kw: events.decode_events(env, **kw),
        lambda env, **kw: control.decode_request(env, **kw),
        lambda env, **kw: control.decode_reply(env, **kw),
    ],
    ids=["task", "events", "control-request", "control-reply"],
)
def test_a_pickle_payload_is_refused_unread_by_default(decode: Callable[..., Any]) -> None:
    with pytest.raises(DecodeError, match="not accepted"):
        decode(pickled({"task": "t.x", "id": "1"}))
    assert FIRED == []


def test_accepting_json_and_msgpack_still_refuses_pickle() -> None:
    accept = serialization.normalize_accept(["json", "msgpack", "yaml"])
    with pytest.raises(DecodeError, match="not accepted"):
        tasks.decode_task(pickled({"task": "t.x", "id": "1"}), accept=accept)
    assert FIRED == []
    assert "application/x-python-serialize" not in serialization.normalize_accept(None)


def test_pickle_runs_only_when_named_in_accept() -> None:
    """The same payload does run once pickle is accepted: the refusal above is the guard."""
    accept = serialization.normalize_accept(["json", "pickle"])
    serialization.loads(PICKLE_BODY, "application/x-python-serialize", "binary", accept=accept)
    assert FIRED == ["pickle payload ran"]


def test_yaml_is_loaded_safely_even_when_accepted() -> None:
    body = b"!!python/object/apply:tests.faults.test_security_codec._tripwire ['yaml payload ran']"
    accept = serialization.normalize_accept(["yaml"])
    with pytest.raises(DecodeError):
        serialization.loads(body, "application/x-yaml", "utf-8", accept=accept)
    assert FIRED == []


def test_a_result_never_imports_the_module_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"amqptool_tripwire_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Boom(Exception):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    exc = results.decode_exception(
        {"exc_type": "Boom", "exc_module": name, "exc_message": ["from a worker"]}
    )
    assert not marker.exists() and name not in sys.modules
    assert type(exc).__name__ == "Boom" and exc.args == ("from a worker",)


def test_a_result_naming_a_loaded_exception_class_gets_that_class() -> None:
    exc = results.decode_exception(
        {"exc_type": "DecodeError", "exc_module": "amqptool.errors", "exc_message": ["bad"]}
    )
    assert isinstance(exc, DecodeError) and str(exc) == "bad"
