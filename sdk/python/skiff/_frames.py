"""The frames body of Dict and Queue writes (docs/api.md): each frame a
4-byte big-endian length and then its bytes; frame 0 the request's options
as a JSON object, the frames after it the pickled items as they are, so
that a batch is neither base64 nor JSON on either side."""

from __future__ import annotations

import json
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Tuple

FRAMES_TYPE = "application/x-skiff-frames"
_LEN = struct.Struct(">I").pack
_UNLEN = struct.Struct(">I").unpack_from
_json_encode = json.JSONEncoder(separators=(",", ":")).encode


def encode(opts: Dict[str, Any], items: Iterable[bytes]) -> bytes:
    """opts then items, each behind its length."""
    head = _json_encode(opts).encode("utf-8")
    parts = [_LEN(len(head)), head]
    for it in items:
        parts.append(_LEN(len(it)))
        parts.append(it)
    return b"".join(parts)


def decode(data: bytes) -> Tuple[Dict[str, Any], List[bytes]]:
    """The options and items of a frames answer."""
    view = memoryview(data)
    pos, end, frames = 0, len(data), []
    while pos < end:
        if end - pos < 4:
            raise ValueError("a frames answer ends inside a frame's length")
        (n,) = _UNLEN(data, pos)
        pos += 4
        if end - pos < n:
            raise ValueError("a frames answer ends inside a frame")
        frames.append(view[pos:pos + n])
        pos += n
    if not frames:
        raise ValueError("a frames answer has no options frame")
    return json.loads(bytes(frames[0])), frames[1:]
