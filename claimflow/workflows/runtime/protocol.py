"""The message protocol between the server and a workflow runner: length-prefixed JSON frames.

Each frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON (one object with a
``t`` member naming its type). It runs over the runner's stdin (server to runner) and a private
copy of its stdout (runner to server). Frames are small and few per run, so JSON keeps the two
sides readable and the protocol inspectable; ``MAX_FRAME_BYTES`` bounds what either side reads.

Server to runner
    ``run``     ``{t, run, declared, event, env}``: start one run; ``env`` carries the values
                of the variables declared by name (``{key: {value, is_secret} | null}``);
    ``reply``   ``{t, id, ok, value | error}``: the answer to a binding call;
    ``cancel``  ``{t, run}``: the deadline passed, stop now.
Runner to server
    ``ready``   ``{t}``: loaded and waiting;
    ``call``    ``{t, id, run, binding, args}``: a binding call the server checks and performs;
    ``log``     ``{t, run, level, message}``: a run-log line;
    ``done``    ``{t, run, access_token, id_token, denied, error}``: the run's result.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Bigger than any claim a token can carry (the budget caps tokens at a few KiB)."""

_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not a frame of this protocol."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    data = body.encode("utf-8")
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    return _LENGTH.pack(len(data)) + data


def _message(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise ProtocolError("frame is not JSON") from exc
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError("frame is not an object with a type")
    return message


def _length(header: bytes) -> int:
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    return int(length)


def decode_frame(data: bytes) -> dict[str, Any]:
    """The one frame ``data`` holds (a runner's ``--describe`` output)."""
    if len(data) < _LENGTH.size or _length(data[: _LENGTH.size]) != len(data) - _LENGTH.size:
        raise ProtocolError("not exactly one frame")
    return _message(data[_LENGTH.size :])


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame; ``asyncio.IncompleteReadError`` when the other side closed the pipe."""
    length = _length(await reader.readexactly(_LENGTH.size))
    return _message(await reader.readexactly(length))
