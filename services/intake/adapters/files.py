"""Reading JSON Lines from a file or standard input, in bounded memory."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import BinaryIO

from contracts import MAX_EVENT_BYTES
from services.intake.domain.lines import Line

STDIN = "-"
BOM = b"\xef\xbb\xbf"
KEEP = MAX_EVENT_BYTES + 1
"""Bytes kept of a line: enough to judge it and to dead-letter its start, never a whole 2 GB
line in memory."""
_CHUNK = 64 * 1024


def read_lines(stream: BinaryIO, keep: int = KEEP) -> Iterator[Line]:
    """The lines of ``stream`` numbered from 1, each cut to ``keep`` bytes with its true size."""
    number = 0
    while True:
        part = stream.readline(keep)
        if not part:
            return
        number += 1
        size, last = len(part), part[-2:]
        while not last.endswith(b"\n"):
            more = stream.readline(_CHUNK)
            if not more:
                break
            size += len(more)
            last = (last + more)[-2:]
        size -= 2 if last.endswith(b"\r\n") else 1 if last.endswith(b"\n") else 0
        raw = part.rstrip(b"\r\n")
        if number == 1 and raw.startswith(BOM):
            # Editors on Windows write a byte-order mark; it is encoding, not content.
            raw, size = raw[len(BOM) :], size - len(BOM)
        yield Line(number, raw, size)


async def batches(lines: Iterator[Line], size: int = 1000) -> AsyncIterator[list[Line]]:
    """Read in a worker thread, so acknowledgements keep flowing while a pipe is slow."""
    while True:
        batch = await asyncio.to_thread(lambda: list(islice(lines, size)))
        if not batch:
            return
        yield batch


@contextmanager
def open_input(path: str) -> Iterator[tuple[BinaryIO, int | None, str]]:
    """The byte stream, its size when known (for the progress bar), and a name for reports."""
    if path == STDIN:
        yield sys.stdin.buffer, None, "(stdin)"
        return
    with open(path, "rb") as stream:
        try:
            total: int | None = os.fstat(stream.fileno()).st_size or None
        except OSError:
            total = None
        yield stream, total, os.path.basename(path)
