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
    from collections.abc import Callable, Iterator
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


def head_and_batches(
    chunks: Iterator[bytes], last: str
) -> tuple[dict[str, Any], Iterator[list[Any]]]:
    """Read ``{"key": value, ..., "<last>": [item, item, ...]}`` while it arrives: the
    object without its last member's items, then the items in lists, as many at a time
    as have arrived (a listing of 100,000 jobs shows its first rows before the last ones
    are sent). The members before ``last`` must not hold its name followed by ``": ["``."""
    if _SCAN is None:
        whole = loads(b"".join(chunks))
        return {**whole, last: []}, iter([whole[last]])
    text = _Text(chunks)
    opening = dumps(last) + ": ["
    start = text.find(opening) + len(opening)
    head = loads(text.buf[:start] + "]}")
    text.pos = start
    return head, _batches(text)


class _Text:
    """Decoded text of the chunks, read from ``pos`` on, more fetched when needed."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        import codecs

        self.chunks = chunks
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0

    def more(self) -> bool:
        if self.pos > 1 << 16:
            self.buf, self.pos = self.buf[self.pos :], 0
        for chunk in self.chunks:
            if chunk:
                self.buf += self.decoder.decode(chunk)
                return True
        return False

    def find(self, part: str) -> int:
        while (at := self.buf.find(part, self.pos)) < 0:
            if not self.more():
                raise ValueError(f"the answer ended before {part!r}")
        return at


def _batches(text: _Text) -> Iterator[list[Any]]:
    scan = _SCAN
    while True:
        while True:
            rest = text.buf[text.pos : text.pos + 1]
            if rest and rest in ", \t\n\r":
                text.pos += 1
            elif rest or not text.more():
                break
        if not rest:
            raise ValueError("the answer ended inside its list")
        if rest == "]":
            return
        if rest == "[" and (cut := _last_row_end(text.buf, text.pos)) > 0:
            whole = "[" + text.buf[text.pos : cut + 1] + "]"
            try:  # the complete rows at hand in one go (a wrong cut does not parse)
                values, end = scan(whole, 0)  # type: ignore[misc]
            except (StopIteration, ValueError):
                end = -1
            if end == len(whole):
                text.pos = cut + 1
                yield values
                continue
        try:
            value, end = scan(text.buf, text.pos)  # type: ignore[misc]
        except (StopIteration, ValueError):
            if not text.more():
                loads(text.buf[text.pos :])  # raises json's own error
                raise ValueError("the answer ended inside an item") from None
            continue
        text.pos = end
        yield [value]


def _last_row_end(buf: str, start: int) -> int:
    """Where the last complete row (a list whose next one starts with its id) ends."""
    end = len(buf)
    for _ in range(16):
        cut = buf.rfind("]", start, end)
        if cut <= start:
            return -1
        after = buf[cut + 1 : cut + 5].replace(" ", "")
        if after[:2] == ",[" and after[2:3].isdigit():
            return cut
        end = cut
    return -1
