"""JSON for the command-line clients, without importing :mod:`json`.

``import json`` loads ``re`` and ``enum`` for its pure-Python fallbacks: a third of a
short client command's start-up. The clients read and write JSON with the C accelerator
:mod:`json` itself uses (``_json``), set up as :func:`json.loads` and :func:`json.dumps`
set it up, and fall back to :mod:`json` on a Python without it (and for the error
message of bad input). The daemon and everything else use :mod:`json`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_SPACE = " \t\n\r"


class _Decoding:
    """What the scanner reads from a ``json.JSONDecoder()``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": -1e999, "Infinity": 1e999, "NaN": 1e999 - 1e999}.__getitem__


def _unknown(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _scanner() -> Callable[[str, int], tuple[Any, int]] | None:
    try:
        import _json
    except ImportError:
        return None
    scan: Any = _json.make_scanner(_Decoding())  # type: ignore[arg-type]
    return scan  # type: ignore[no-any-return]


_SCAN = _scanner()


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``; a ValueError (``json.JSONDecodeError``) on bad input."""
    text = data.decode() if isinstance(data, bytes) else data
    if _SCAN is not None:
        start = len(text) - len(text.lstrip(_SPACE))
        try:
            value, end = _SCAN(text, start)
        except (StopIteration, ValueError):
            end = -1
        if end >= 0 and not text[end:].strip(_SPACE):
            return value
    import json

    return json.loads(text)


def dumps(value: Any) -> str:
    """``json.dumps(value)``."""
    try:
        from _json import encode_basestring_ascii, make_encoder
    except ImportError:
        import json

        return json.dumps(value)
    # (markers, default, encoder, indent, key sep., item sep., sort_keys, skipkeys, allow_nan)
    encode: Any = make_encoder(
        {}, _unknown, encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return "".join(encode(value, 0))
