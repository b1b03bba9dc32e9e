"""The shape of the house, checked by machine: a pure core, pika in one place, thin fronts."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.harness import ROOT, modules_loaded_by

CORE = [
    "amqptool.errors",
    "amqptool.settings",
    "amqptool.codec",
    "amqptool.codec.tasks",
    "amqptool.codec.results",
    "amqptool.codec.events",
    "amqptool.codec.control",
    "amqptool.codec.serialization",
    "amqptool.cli",
    "amqptool.entrypoint",
    "worker",
    "worker.task.define",
    "worker.task.periodic",
    "worker.policy.eta",
    "worker.policy.rate_limit",
    "worker.policy.revoked",
    "worker.policy.time_limits",
    "worker.control",
]

FRONT_END_CORES = {"monitor": "monitor-core-pure", "shell": "shell-core-pure"}


def _core_modules(front_end: str) -> list[str]:
    folder = ROOT / "amqptool" / front_end / "core"
    return [f"amqptool.{front_end}.core.{p.stem}" for p in sorted(folder.glob("*.py"))]


def imported_after(modules: list[str]) -> set[str]:
    return modules_loaded_by("".join(f"import {m}\n" for m in modules))


def test_the_core_imports_no_pika_textual_or_prompt_toolkit() -> None:
    loaded = imported_after(CORE)
    assert not {"pika", "textual", "prompt_toolkit"} & loaded


@pytest.mark.parametrize("package", ["amqptool", "worker"])
def test_pika_is_imported_only_by_the_transport(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("amqptool", "transport"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "pika" or n.startswith("pika.") for n in names):
                offenders.append(str(rel))
    assert offenders == []


def _imports_of(package: Path) -> set[str]:
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_front_ends_keep_to_their_own_toolkit() -> None:
    assert "textual" not in _imports_of(ROOT / "amqptool" / "shell")
    assert "prompt_toolkit" not in _imports_of(ROOT / "amqptool" / "monitor")
    assert not {"textual", "prompt_toolkit"} & _imports_of(ROOT / "worker")


@pytest.mark.parametrize("front_end", sorted(FRONT_END_CORES))
def test_front_end_core_loads_no_toolkit_or_pika(front_end: str) -> None:
    loaded = imported_after(_core_modules(front_end))
    assert not {"pika", "textual", "prompt_toolkit", "rich", "prometheus_client"} & loaded


@pytest.mark.parametrize("front_end", sorted(FRONT_END_CORES))
def test_core_contract_names_every_adapter_module(front_end: str) -> None:
    # The import contract lists the adapters by name; a new adapter module must join the list.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["id"] == FRONT_END_CORES[front_end]]
    folder = ROOT / "amqptool" / front_end
    adapters = {f"amqptool.{front_end}.{p.stem}" for p in folder.glob("*.py")} - {
        f"amqptool.{front_end}.__init__"
    }
    adapters |= {f"amqptool.{front_end}.{p.name}" for p in folder.iterdir() if p.is_dir()} - {
        f"amqptool.{front_end}.core",
        f"amqptool.{front_end}.__pycache__",
    }
    assert adapters <= set(contract["forbidden_modules"])
