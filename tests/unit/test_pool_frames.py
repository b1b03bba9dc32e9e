"""The prefork pool's pipe frames: whatever way the bytes arrive, the reader gives back the
items in order, once each; a dead writer's last frames are drained; a frame that does not
unpickle is skipped without losing the frames around it."""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Iterator

import pytest

from worker.pool.base import Done, Started
from worker.pool.execute import Outcome
from worker.pool.frames import FrameReader, write_frame


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            os.close(fd)


def _frame(items: list[object]) -> bytes:
    body = pickle.dumps(items)
    return len(body).to_bytes(4, "big") + body


def test_frames_come_back_in_order_however_the_bytes_are_split(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.set_blocking(r, False)
    reports = [Started(1, 42), Done(1, Outcome(1, "SUCCESS", 0.5)), Started(2, 42)]
    data = _frame(reports[:2]) + _frame(reports[2:])
    reader = FrameReader(r)
    got: list[object] = []
    for i in range(0, len(data), 7):  # cut anywhere, headers included
        os.write(w, data[i : i + 7])
        got += reader.read()
    assert got == reports
    assert reader.buf == bytearray() and not reader.eof


def test_write_frame_then_read_on_a_blocking_pipe(pipe: tuple[int, int]) -> None:
    r, w = pipe
    write_frame(w, [Started(7, 1)])
    write_frame(w, [None])
    reader = FrameReader(r)
    got = reader.read()
    if not reader.pending() and len(got) < 2:
        got += reader.read()
    assert got == [Started(7, 1), None]


def test_a_frame_bigger_than_the_pipe_is_written_whole(pipe: tuple[int, int]) -> None:
    r, w = pipe
    big = ["x" * 200_000]
    pid = os.fork()
    if pid == 0:  # the writer blocks until the reader has taken the first 64 KiB
        try:
            os.close(r)
            write_frame(w, big)
        finally:
            os._exit(0)
    os.close(w)
    reader = FrameReader(r)
    got: list[object] = []
    while not reader.eof:
        got += reader.read()
    os.waitpid(pid, 0)
    assert got == big


def test_drain_reads_a_dead_writers_last_frames_then_eof(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.set_blocking(r, False)
    write_frame(w, [Started(3, 9)])
    write_frame(w, [Done(3, Outcome(3, "SUCCESS"))])
    os.close(w)
    reader = FrameReader(r)
    assert reader.drain() == [Started(3, 9), Done(3, Outcome(3, "SUCCESS"))]
    assert reader.eof


def test_drain_stops_when_the_pipe_is_empty_but_open(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.set_blocking(r, False)
    write_frame(w, [Started(4, 9)])
    reader = FrameReader(r)
    assert reader.drain() == [Started(4, 9)]
    assert not reader.eof


def test_a_frame_that_does_not_unpickle_is_skipped_not_the_others(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.set_blocking(r, False)
    junk = b"not a pickle"
    os.write(w, _frame([Started(5, 1)]) + len(junk).to_bytes(4, "big") + junk)
    os.write(w, _frame([Started(6, 1)]))
    reader = FrameReader(r)
    assert reader.drain() == [Started(5, 1), Started(6, 1)]
