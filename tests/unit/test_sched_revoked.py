"""The revoked set: bounded by size and age, merged from hello, kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amqptool.errors import AmqpToolError, ExitCode
from worker.policy.revoked import (
    DEFAULT_EXPIRES,
    DEFAULT_MAXLEN,
    RevokedSet,
    StateDB,
    StateFileError,
    parse_stamp_headers,
)

T0 = 1_800_000_000.0  # wall-clock seconds


def test_the_defaults_are_celerys_50000_ids_for_3_hours() -> None:
    revoked = RevokedSet()
    assert (revoked.maxlen, revoked.expires) == (DEFAULT_MAXLEN, DEFAULT_EXPIRES)
    assert (DEFAULT_MAXLEN, DEFAULT_EXPIRES) == (50_000, 10_800.0)


def test_a_revoked_id_is_in_the_set_until_discarded() -> None:
    revoked = RevokedSet()
    revoked.add("a", T0)
    assert "a" in revoked
    assert "b" not in revoked
    revoked.discard("a")
    revoked.discard("never-there")
    assert "a" not in revoked
    assert not revoked


def test_a_full_set_evicts_the_oldest_ids_first() -> None:
    revoked = RevokedSet(maxlen=3)
    for i, task_id in enumerate("abcde"):
        revoked.add(task_id, T0 + i)
    assert revoked.ids() == ["c", "d", "e"]
    assert len(revoked) == 3


def test_adding_an_id_again_makes_it_the_newest() -> None:
    revoked = RevokedSet(maxlen=3)
    for i, task_id in enumerate("abc"):
        revoked.add(task_id, T0 + i)
    revoked.add("a", T0 + 10)
    revoked.add("d", T0 + 11)
    assert revoked.ids() == ["c", "a", "d"]


@pytest.mark.parametrize(
    ("age", "kept"),
    [(0.0, True), (10_799.0, True), (10_800.0, False), (50_000.0, False)],
)
def test_ids_older_than_expires_are_purged(age: float, kept: bool) -> None:
    revoked = RevokedSet()
    revoked.add("old", T0)
    revoked.add("new", T0 + age)
    removed = revoked.purge(T0 + age)
    assert ("old" in revoked) is kept
    assert "new" in revoked
    assert removed == (0 if kept else 1)


def test_expiry_zero_keeps_ids_for_ever_and_maxlen_zero_is_unbounded() -> None:
    revoked = RevokedSet(maxlen=0, expires=0)
    revoked.update((str(i) for i in range(1000)), T0)
    revoked.purge(T0 + 10**9)
    assert len(revoked) == 1000


@pytest.mark.parametrize(
    ("incoming", "merged"),
    [
        (["x", "y"], ["x", "y"]),  # Celery 5.7: a list of ids
        ({"x": [12.5, "x"], "y": [13.0, "y"]}, ["x", "y"]),  # Celery <= 5.6: {id: [time, id]}
        ([], []),
        (None, []),
        (7, []),
    ],
)
def test_hello_merges_both_forms_of_revoked_ids(incoming: Any, merged: list[str]) -> None:
    revoked = RevokedSet()
    assert revoked.merge(incoming, T0) == len(merged)
    assert revoked.ids() == merged


def test_merged_ids_are_stamped_with_our_clock_not_the_senders() -> None:
    revoked = RevokedSet()
    revoked.merge({"x": [1.0, "x"]}, T0)  # the sender's monotonic stamp means nothing here
    revoked.purge(T0 + 10)
    assert "x" in revoked


def test_merging_an_id_we_know_keeps_its_age_so_peers_cannot_keep_it_alive() -> None:
    revoked = RevokedSet()
    revoked.add("x", T0)
    assert revoked.merge(["x", "y"], T0 + 10_000) == 1
    revoked.purge(T0 + 10_800)
    assert revoked.ids() == ["y"]


def test_the_hello_reply_lists_live_ids_oldest_first_and_the_clock() -> None:
    revoked = RevokedSet()
    revoked.add("expired", T0)
    revoked.add("b", T0 + 9_000)
    revoked.add("c", T0 + 9_001)
    assert revoked.hello_reply(clock=275, now=T0 + 10_900) == {"revoked": ["b", "c"], "clock": 275}


@pytest.mark.parametrize(
    ("headers", "parsed"),
    [
        (["mystamp=blue"], {"mystamp": ["blue"]}),
        (["a=1", "a=2", "b=x=y"], {"a": ["1", "2"], "b": ["x=y"]}),
        ({"mystamp": "blue"}, {"mystamp": ["blue"]}),
        ({"mtask_id": ["i1", "i2"]}, {"mtask_id": ["i1", "i2"]}),
    ],
)
def test_stamped_header_revokes_take_an_object_or_k_equals_v_strings(
    headers: Any, parsed: dict[str, list[Any]]
) -> None:
    assert parse_stamp_headers(headers) == parsed


def test_a_stamped_header_without_equals_is_refused() -> None:
    with pytest.raises(ValueError, match="name=value"):
        parse_stamp_headers(["nope"])


@pytest.mark.parametrize(
    ("stamped_headers", "stamps", "revoking"),
    [
        (["mystamp"], {"mystamp": "blue"}, {"mystamp": "blue"}),
        (["mystamp"], {"mystamp": "red"}, None),
        (["mystamp"], {"mystamp": ["red", "blue"]}, {"mystamp": "blue"}),
        (["other"], {"other": "blue"}, None),
        (None, {"mystamp": "blue"}, None),  # not a stamped header of this task
        (["mystamp"], {}, None),
    ],
)
def test_a_task_is_revoked_by_any_matching_stamp(
    stamped_headers: list[str] | None, stamps: dict[str, Any], revoking: dict[str, Any] | None
) -> None:
    revoked = RevokedSet()
    revoked.revoke_stamps(["mystamp=blue"])
    assert revoked.revoking_stamp(stamped_headers, stamps) == revoking
    assert revoked.is_revoked("some-id", stamped_headers, stamps) is (revoking is not None)


def test_revoking_a_stamp_twice_keeps_one_value() -> None:
    revoked = RevokedSet()
    revoked.revoke_stamps({"s": "v"})
    revoked.revoke_stamps({"s": ["v", "w"]})
    assert revoked.stamps() == {"s": ["v", "w"]}


# ---------------------------------------------------------------------- --statedb


def test_revokes_survive_a_restart_with_their_ages(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "worker.state")
    before = RevokedSet()
    before.add("a", T0)
    before.add("b", T0 + 100)
    before.revoke_stamps(["mystamp=blue"])
    db.save(before, clock=42)

    state = StateDB(tmp_path / "worker.state").load()
    assert state.clock == 42
    after = RevokedSet()
    state.restore_into(after, now=T0 + 10_850)
    assert after.ids() == ["b"]  # "a" reached 3 h while the worker was down
    assert after.records() == [("b", T0 + 100)]
    assert after.stamps() == {"mystamp": ["blue"]}


def test_a_restore_keeps_the_newest_ids_when_the_set_is_smaller(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.json")
    big = RevokedSet(maxlen=0)
    big.update([f"id{i}" for i in range(10)], T0)
    for i in range(10):
        big.add(f"id{i}", T0 + i)
    db.save(big)
    small = RevokedSet(maxlen=3)
    db.load().restore_into(small, now=T0 + 20)
    assert small.ids() == ["id7", "id8", "id9"]


def test_a_missing_state_file_is_an_empty_state(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "nothing-yet").load()
    assert (state.revoked, state.stamps, state.clock) == ([], {}, 0)


def test_saving_replaces_the_file_whole_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "worker.state"
    db = StateDB(path)
    revoked = RevokedSet()
    for i in range(3):
        revoked.add(f"id{i}", T0 + i)
        db.save(revoked, clock=i)
    assert [p.name for p in tmp_path.iterdir()] == ["worker.state"]
    assert json.loads(path.read_text())["revoked"] == [[f"id{i}", T0 + i] for i in range(3)]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00\x01 not json", "not JSON"),
        (b"{}", "not an amqptool worker state file"),
        (b"[1, 2]", "not an amqptool worker state file"),
        (b'{"format": "amqptool-worker-state", "version": 99}', "unsupported version 99"),
        (
            b'{"format": "amqptool-worker-state", "version": 1, "revoked": [["a"]]}',
            "bad revoked entry",
        ),
        (
            b'{"format": "amqptool-worker-state", "version": 1, "revoked": {}}',
            "'revoked' must be a list",
        ),
        (b'{"format": "amqptool-worker-state", "version": 1, "clock": "7"}', "'clock' must be"),
        (b"\xff\xfe\xfa", "cannot read it"),
    ],
)
def test_a_corrupt_state_file_is_one_clear_error(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "worker.state"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as info:
        StateDB(path).load()
    err = info.value
    assert isinstance(err, AmqpToolError)
    assert err.exit_code == ExitCode.FAILED
    assert f"worker state file {path} is not usable" in err.user_line()
    assert why in err.user_line()
    assert "delete it" in err.user_line()
    assert "\n" not in err.user_line()


def test_a_state_file_in_a_missing_directory_cannot_be_written(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "no" / "such" / "dir" / "worker.state")
    with pytest.raises(StateFileError, match="cannot write the worker state file"):
        db.save(RevokedSet())
