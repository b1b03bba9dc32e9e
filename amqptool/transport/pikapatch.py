"""Fix pika's header-table codec for floats (PROTOCOL.md §0 and §6.6).

pika decodes AMQP ``d``/``f`` fields into truncated integers and cannot encode a Python
``float`` at all. We replace the module-level ``decode_value``/``encode_value`` (which
``decode_table``/``encode_table`` look up as globals) with versions that keep floats.
"""

from __future__ import annotations

import struct
from typing import Any

import pika.data

__all__ = ["install"]

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    original_decode = pika.data.decode_value
    original_encode = pika.data.encode_value

    def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
        kind = encoded[offset : offset + 1]
        if kind == b"d":
            return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
        if kind == b"f":
            return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
        result: tuple[Any, int] = original_decode(encoded, offset)
        return result

    def encode_value(pieces: list[bytes], value: Any) -> int:
        if isinstance(value, float):
            pieces.append(struct.pack(">cd", b"d", value))
            return 9
        result: int = original_encode(pieces, value)
        return result

    pika.data.decode_value = decode_value
    pika.data.encode_value = encode_value
    _installed = True
