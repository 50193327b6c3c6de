"""Reading a job's log in bounded pieces: the first or last lines of a file of any size.

A log can be gigabytes; ``gjob log --last 20`` reads from the end backwards, and only
as far as it must, ``--first`` from the start; a whole log is copied in chunks.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO, TextIO

CHUNK = 1 << 16


def last_lines(fh: BinaryIO, count: int, end: int) -> bytes:
    """The last ``count`` lines before offset ``end`` (a final line without a newline
    counts), read backwards."""
    pos = end
    chunks: list[bytes] = []
    newlines, needed = 0, count
    while pos > 0 and newlines < needed:
        step = min(CHUNK, pos)
        pos -= step
        fh.seek(pos)
        chunk = fh.read(step)
        if not chunks and chunk.endswith(b"\n"):
            needed += 1  # the newline that ends the last line does not start one
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    lines = _split(b"".join(reversed(chunks)))
    return b"".join(lines[-count:]) if count else b""


def first_lines(fh: BinaryIO, count: int) -> bytes:
    """The first ``count`` lines, read forwards only as far as they go."""
    chunks: list[bytes] = []
    newlines = 0
    while newlines < count:
        chunk = fh.read(CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    return b"".join(_split(b"".join(chunks))[:count])


def copy(fh: BinaryIO, out: TextIO) -> None:
    """The rest of the file to ``out``, in chunks (invalid UTF-8 shown as U+FFFD)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := fh.read(CHUNK):
        out.write(decoder.decode(chunk))
    out.write(decoder.decode(b"", final=True))


def _split(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
