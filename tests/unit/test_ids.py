"""Task ids: version 4 UUIDs in the text form ``str(uuid.uuid4())`` gives."""

from __future__ import annotations

import uuid

from amqptool.client.options import build_message
from amqptool.codec.ids import new_id
from amqptool.codec.tasks import TaskMessage


def test_ids_are_random_version_4_uuids_in_canonical_text() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2_000]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower case, 8-4-4-4-12
    # every one of the 122 random bits takes both values somewhere
    ored = anded = None
    for text in ids:
        value = uuid.UUID(text).int
        ored = value if ored is None else ored | value
        anded = value if anded is None else anded & value
    fixed = (0xF << 76) | (0x3 << 62)  # the version and variant bits
    assert ored is not None and anded is not None
    assert (ored ^ anded) | fixed == (1 << 128) - 1


def test_messages_without_an_id_get_a_new_one_each() -> None:
    first, second = TaskMessage(task="t"), TaskMessage(task="t")
    assert first.id != second.id and uuid.UUID(first.id).version == 4
    built = build_message("t", [], None)
    assert uuid.UUID(built.id).version == 4
    assert build_message("t", [], None, task_id="mine").id == "mine"
