"""What the code cites is in the repository: docs/protocol.md sections exist, nothing outside."""

from __future__ import annotations

import re

from tests.harness import ROOT

FOLDERS = ("amqptool", "worker", "tests", "bench", "scripts", "examples")
# Reference files that live outside this repository (spelled in pieces so this file is not one).
OUTSIDE = re.compile(
    "|".join(
        [
            "PROTOCOL" + r"\.md",
            "ANCH" + "ORS",
            "STYLE" + r"\.md",
            "SEEDS" + r"\.md",
            "BACKENDS" + r"\.md",
            r"\.\./shared",
            "/work/" + "shared",
        ]
    )
)
CITED = re.compile(r"docs/protocol\.md((?:,? ?§[0-9.\-]+)+)")


def sources() -> list[tuple[str, str]]:
    return [
        (path.relative_to(ROOT).as_posix(), path.read_text())
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*.py")
    ]


def test_no_source_cites_a_file_outside_the_repository() -> None:
    offenders = [name for name, text in sources() if OUTSIDE.search(text)]
    assert offenders == []


def test_every_cited_protocol_section_exists() -> None:
    headings = set(
        re.findall(
            r"^#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? ", (ROOT / "docs/protocol.md").read_text(), re.M
        )
    )
    missing = set()
    for name, text in sources():
        for match in CITED.finditer(text.replace("\n", " ")):
            for section in re.findall(r"§([0-9.]+(?:-[0-9.]+)?)", match.group(1)):
                for part in section.split("-"):
                    if part.rstrip(".") not in headings:
                        missing.add(f"{name}: §{part}")
    assert missing == set()
    assert (ROOT / "docs/architecture.md").exists()
