"""Serializers and compression, compatible with kombu's registry.

JSON is the default and understands kombu's tagged values both ways
(``{"__type__": "datetime", "__value__": ...}`` and friends). msgpack and YAML work when those
packages are installed. Pickle is **never** accepted unless the caller names it explicitly in
``accept`` (it can run code on load).

Compression is named by the ``compression`` header with the MIME types kombu uses.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import json
import lzma
import pickle
import uuid
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from amqptool.errors import DecodeError, UsageError

__all__ = [
    "DEFAULT_ACCEPT",
    "Serializer",
    "available_compressions",
    "available_serializers",
    "compress",
    "decompress",
    "dumps",
    "get_serializer",
    "json_dumps",
    "json_loads",
    "loads",
    "normalize_accept",
]

DEFAULT_ACCEPT: frozenset[str] = frozenset({"application/json"})


# --------------------------------------------------------------------------- JSON (kombu tags)


def _tag(kind: str, value: Any) -> dict[str, Any]:
    return {"__type__": kind, "__value__": value}


def _json_default(obj: Any) -> Any:
    reducer = getattr(obj, "__json__", None)
    if callable(reducer):
        return reducer()
    if isinstance(obj, datetime):
        return _tag("datetime", obj.isoformat())
    if isinstance(obj, date):
        return _tag("date", obj.isoformat())
    if isinstance(obj, time):
        return _tag("time", obj.isoformat())
    if isinstance(obj, Decimal):
        return _tag("decimal", str(obj))
    if isinstance(obj, uuid.UUID):
        return _tag("uuid", {"hex": obj.hex})
    if isinstance(obj, bytes | bytearray | memoryview):
        raw = bytes(obj)
        try:
            return _tag("bytes", raw.decode("utf-8"))
        except UnicodeDecodeError:
            return _tag("base64", base64.b64encode(raw).decode("ascii"))
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_TAG_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": lambda v: datetime.fromisoformat(v).date(),
    "time": time.fromisoformat,
    "decimal": Decimal,
    "uuid": lambda v: uuid.UUID(**v) if isinstance(v, dict) else uuid.UUID(v),
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v.encode("ascii")),
}


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 2 and "__type__" in obj and "__value__" in obj:
        decoder = _TAG_DECODERS.get(obj["__type__"])
        if decoder is None:
            raise DecodeError(f"unsupported tagged JSON type {obj['__type__']!r}")
        try:
            return decoder(obj["__value__"])
        except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            # ArithmeticError: Decimal("") raises decimal.InvalidOperation
            raise DecodeError(f"bad tagged JSON value for {obj['__type__']!r}: {exc}") from None
    return obj


# json.dumps with keyword arguments builds a new encoder per call; this one is built once
# (the same settings, so the same text; encode() keeps no state between calls).
_ENCODER = json.JSONEncoder(default=_json_default, separators=(", ", ": "))


def json_dumps(value: Any) -> str:
    """JSON text with kombu's tagged values for datetimes, decimals, uuids and bytes."""
    return _ENCODER.encode(value)


_JSON_DECODER = json.JSONDecoder(object_hook=_object_hook)  # json.loads builds one per call


def json_loads(text: str | bytes) -> Any:
    """Parse JSON, turning kombu's tagged values back into Python objects."""
    try:
        if isinstance(text, str) and not text.startswith("\ufeff"):
            return _JSON_DECODER.decode(text)  # what json.loads does with a str, minus a decoder
        return json.loads(text, object_hook=_object_hook)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"body is not valid JSON: {exc}") from None


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Serializer:
    name: str
    content_type: str
    content_encoding: str
    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]


def _json_dump_bytes(value: Any) -> bytes:
    return json_dumps(value).encode("utf-8")


# orjson parses JSON bytes several times faster than the json module, but not the same way
# everywhere: it turns integers beyond 64 bits into floats and has no object hook (kombu's
# tagged values). A body goes to it only when neither can matter: no "__type__" (a key can only
# be spelled otherwise with a \u escape, so no \u at all) and no run of 19 digits. What orjson
# refuses (NaN, 1e400, lone surrogates, a BOM, bad UTF-8) goes the json module's way, which
# reads it or gives its own error. tests/unit/test_json_fast_path.py compares both ways.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def _json_load_bytes(body: bytes) -> Any:
    if (
        type(body) is bytes
        and (b"\\" not in body or b"\\u" not in body)  # one byte first: a faster search
        and b'"__type__"' not in body
        and _NINETEEN_DIGITS not in body.translate(_DIGITS_AS_ZERO)
    ):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the json module reads it, or says what is wrong in its words
    return _json_load_bytes_slow(body)


def _json_load_bytes_slow(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"JSON body is not UTF-8: {exc}") from None
    return json_loads(text)


def _msgpack() -> Any:
    try:
        import msgpack
    except ImportError:
        return None
    return msgpack


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        return None
    return yaml


def _msgpack_dumps(value: Any) -> bytes:
    mod = _msgpack()
    if mod is None:
        raise UsageError("msgpack is not installed", hint="pip install msgpack")
    return bytes(mod.packb(value, use_bin_type=True))


def _msgpack_loads(body: bytes) -> Any:
    mod = _msgpack()
    if mod is None:
        raise DecodeError("msgpack body received but msgpack is not installed")
    try:
        return mod.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many unrelated types on garbage
        raise DecodeError(f"body is not valid msgpack: {exc}") from None


def _yaml_dumps(value: Any) -> bytes:
    mod = _yaml()
    if mod is None:
        raise UsageError("PyYAML is not installed", hint="pip install PyYAML")
    return str(mod.safe_dump(value)).encode("utf-8")


def _yaml_loads(body: bytes) -> Any:
    mod = _yaml()
    if mod is None:
        raise DecodeError("YAML body received but PyYAML is not installed")
    try:
        return mod.safe_load(body)
    except Exception as exc:  # yaml's error tree is wide; all mean "bad body"
        raise DecodeError(f"body is not valid YAML: {exc}") from None


def _pickle_dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=4)


def _pickle_loads(body: bytes) -> Any:
    try:
        return pickle.loads(body)  # only reached when pickle was explicitly accepted
    except Exception as exc:  # unpickling can raise anything
        raise DecodeError(f"body is not a valid pickle: {exc}") from None


def _raw_loads(body: bytes) -> Any:
    return body


_SERIALIZERS: dict[str, Serializer] = {
    "json": Serializer("json", "application/json", "utf-8", _json_dump_bytes, _json_load_bytes),
    "msgpack": Serializer(
        "msgpack", "application/x-msgpack", "binary", _msgpack_dumps, _msgpack_loads
    ),
    "yaml": Serializer("yaml", "application/x-yaml", "utf-8", _yaml_dumps, _yaml_loads),
    "pickle": Serializer(
        "pickle", "application/x-python-serialize", "binary", _pickle_dumps, _pickle_loads
    ),
}
_BY_CONTENT_TYPE: dict[str, Serializer] = {s.content_type: s for s in _SERIALIZERS.values()}
_BY_CONTENT_TYPE["application/data"] = Serializer(
    "raw", "application/data", "binary", lambda v: bytes(v), _raw_loads
)
_BY_CONTENT_TYPE["application/text"] = _BY_CONTENT_TYPE["application/data"]
_ALIASES = {
    "application/msgpack": "application/x-msgpack",
    "text/yaml": "application/x-yaml",
    "application/yaml": "application/x-yaml",
}


def available_serializers() -> list[str]:
    names = ["json", "pickle"]
    if _msgpack() is not None:
        names.append("msgpack")
    if _yaml() is not None:
        names.append("yaml")
    return sorted(names)


def get_serializer(name: str) -> Serializer:
    try:
        return _SERIALIZERS[name]
    except KeyError:
        raise UsageError(
            f"unknown serializer {name!r}", hint="known: " + ", ".join(sorted(_SERIALIZERS))
        ) from None


def normalize_accept(names: Iterable[str] | None) -> frozenset[str]:
    """Turn serializer names or content types into a set of content types."""
    if names is None:
        return DEFAULT_ACCEPT
    out: set[str] = set()
    for raw in names:
        item = raw.strip()
        if not item:
            continue
        if item in _SERIALIZERS:
            out.add(_SERIALIZERS[item].content_type)
        elif "/" in item:
            out.add(_ALIASES.get(item, item))
        else:
            raise UsageError(
                f"unknown content type or serializer {item!r}",
                hint="known: " + ", ".join(sorted(_SERIALIZERS)),
            )
    return frozenset(out)


def dumps(value: Any, serializer: str = "json") -> tuple[bytes, str, str]:
    """Serialize ``value``; returns ``(body, content_type, content_encoding)``."""
    ser = get_serializer(serializer)
    try:
        return ser.dumps(value), ser.content_type, ser.content_encoding
    except (TypeError, ValueError, OverflowError) as exc:
        raise UsageError(f"cannot serialize with {serializer}: {exc}") from None


def loads(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    accept: Collection[str] = DEFAULT_ACCEPT,
) -> Any:
    """Deserialize a body by its content type, refusing types not in ``accept``.

    ``accept`` holds content types (see :func:`normalize_accept`). Raises :class:`DecodeError`
    for a refused content type or a body that does not decode; nothing else.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    ctype = _ALIASES.get(ctype, ctype)
    if not ctype:
        ctype = "application/data"
    if ctype not in accept and ctype not in ("application/data", "application/text"):
        raise DecodeError(
            f"content type {ctype!r} is not accepted (accepted: " + ", ".join(sorted(accept)) + ")"
        )
    ser = _BY_CONTENT_TYPE.get(ctype)
    if ser is None:
        raise DecodeError(f"unknown content type {ctype!r}")
    if ser.name == "raw":
        if content_encoding and content_encoding.lower() not in ("binary", "8bit"):
            try:
                return body.decode(content_encoding)
            except (LookupError, ValueError):  # unknown codec, bad bytes, "\x00" in the name
                return body
        return body
    try:
        return ser.loads(body)
    except DecodeError:
        raise
    except Exception as exc:  # a decoder bug must not kill a consumer
        raise DecodeError(f"cannot decode {ctype} body: {exc}") from None


# --------------------------------------------------------------------------- compression

_COMPRESSORS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "application/x-gzip": (zlib.compress, zlib.decompress),
    "application/x-bz2": (bz2.compress, bz2.decompress),
    "application/x-lzma": (lzma.compress, lzma.decompress),
}
_COMPRESSION_ALIASES = {
    "zlib": "application/x-gzip",
    "gzip": "application/x-gzip",
    "bzip2": "application/x-bz2",
    "bzip": "application/x-bz2",
    "lzma": "application/x-lzma",
    "xz": "application/x-lzma",
    "brotli": "application/x-brotli",
    "zstd": "application/zstd",
    "zstandard": "application/zstd",
}


def _optional_compressor(ctype: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if ctype == "application/x-brotli":
        try:
            import brotli
        except ImportError:
            raise UsageError("brotli compression needs the brotli package") from None
        return brotli.compress, brotli.decompress
    if ctype == "application/zstd":
        try:
            from backports import zstd  # type: ignore[import-not-found,unused-ignore]  # optional
        except ImportError:
            try:
                import zstandard as zstd
            except ImportError:
                raise UsageError("zstd compression needs backports.zstd or zstandard") from None
        return zstd.compress, zstd.decompress
    raise UsageError(
        f"unknown compression {ctype!r}", hint="known: " + ", ".join(sorted(_COMPRESSION_ALIASES))
    )


def _compressor(name: str) -> tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    ctype = _COMPRESSION_ALIASES.get(name.lower(), name.lower())
    pair = _COMPRESSORS.get(ctype) or _optional_compressor(ctype)
    return ctype, pair[0], pair[1]


def available_compressions() -> list[str]:
    names = ["bzip2", "gzip", "lzma", "zlib"]
    for extra in ("brotli", "zstd"):
        try:
            _compressor(extra)
        except UsageError:
            continue
        names.append(extra)
    return sorted(names)


def compress(body: bytes, name: str) -> tuple[bytes, str]:
    """Compress with a scheme name or MIME type; returns ``(body, header_value)``."""
    ctype, enc, _ = _compressor(name)
    return enc(body), ctype


def decompress(body: bytes, header_value: str) -> bytes:
    """Undo the compression named by a ``compression`` header."""
    try:
        ctype, _, dec = _compressor(header_value)
    except UsageError as exc:
        raise DecodeError(str(exc)) from None
    try:
        if ctype == "application/x-gzip" and body[:2] == b"\x1f\x8b":
            return gzip.decompress(body)  # a real gzip stream rather than kombu's zlib one
        return dec(body)
    except Exception as exc:  # every codec has its own error type
        raise DecodeError(f"cannot decompress {ctype} body: {exc}") from None
