"""The monitor's GC tuning while a feed runs: applied once, nested, restored, thread-safe."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from amqptool.monitor import gctune
from amqptool.monitor.gctune import GEN0_THRESHOLD, ingest_gc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()
    gc.enable()


def test_raises_gen0_freezes_and_restores_on_exit() -> None:
    gc.set_threshold(700, 10, 10)
    garbage: list[object] = []
    garbage.append(garbage)  # a cycle that exists before: collected, not frozen
    del garbage
    with ingest_gc():
        assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    assert gctune._users == 0


def test_nested_and_concurrent_users_restore_once_the_last_leaves() -> None:
    gc.set_threshold(700, 10, 10)
    with ingest_gc():
        with ingest_gc():
            assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_threshold()[0] == GEN0_THRESHOLD  # the outer one still runs
        inside = threading.Event()
        release = threading.Event()

        def other() -> None:
            with ingest_gc():
                inside.set()
                release.wait(5)

        thread = threading.Thread(target=other)
        thread.start()
        assert inside.wait(5)
        release.set()
        thread.join(5)
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_never_lowers_a_higher_threshold_nor_turns_a_disabled_collector_on() -> None:
    gc.set_threshold(GEN0_THRESHOLD * 3, 10, 10)
    with ingest_gc():
        assert gc.get_threshold()[0] == GEN0_THRESHOLD * 3
    gc.set_threshold(0, 10, 10)
    with ingest_gc():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_keeps_thresholds_someone_else_set_while_it_ran() -> None:
    gc.set_threshold(700, 10, 10)
    with ingest_gc():
        gc.set_threshold(2000, 5, 5)
    assert gc.get_threshold() == (2000, 5, 5)


def test_restores_when_the_block_raises() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), ingest_gc():
        raise RuntimeError("feed failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert gctune._users == 0


@pytest.mark.parametrize("tune", [True, False])
def test_the_feed_applies_it_while_it_runs_unless_told_not_to(tune: bool) -> None:
    from amqptool.errors import AmqpToolError
    from amqptool.monitor.feed import EventFeed
    from amqptool.settings import BrokerSettings

    gc.set_threshold(700, 10, 10)
    seen: list[tuple[str, int]] = []
    feed = EventFeed(
        BrokerSettings.from_url("amqp://guest:guest@127.0.0.1:1//"),  # nothing listens there
        lambda batch: None,
        lambda status: seen.append((status.state, gc.get_threshold()[0])),
        reconnect=False,
        tune_gc=tune,
    )
    with pytest.raises(AmqpToolError):
        feed.run()
    assert seen[0] == ("connecting", GEN0_THRESHOLD if tune else 700)
    assert gc.get_threshold() == (700, 10, 10)
