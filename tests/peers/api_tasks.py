"""Our worker's tasks for the task-API tests (throws, headers, replace, set results)."""

from __future__ import annotations

from typing import Any

from tests.peers.results_common import wait_for_key
from worker import Task, task


@task(name="api.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="api.expected", throws=(KeyError,))
def expected(key: str) -> None:
    raise KeyError(key)


@task(bind=True, name="api.request")
def request(self: Task) -> dict[str, Any]:
    r = self.request
    return {
        "headers": r.headers,
        "x_custom": r.x_custom,
        "expires": r.expires,
        "properties": sorted(r.properties),
        "application_headers": r.properties["application_headers"].get("x_custom"),
    }


@task(bind=True, name="api.replaced")
def replaced(self: Task, x: int) -> None:
    raise self.replace(add.s(x, 100))


@task(name="api.aset")
def aset() -> Any:
    return {1, 2}


@task(name="api.block")
def block(key: str) -> str:
    wait_for_key(key)
    return "unblocked"


@task(name="api.elsewhere", result_backend="db+sqlite:////tmp/amqptool-api-elsewhere.db")
def elsewhere(x: int) -> int:
    return x * 2
