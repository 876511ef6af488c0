"""CSV exports that a spreadsheet opens safely.

A cell that starts with `=`, `+`, `-`, `@` (or a tab or carriage return) is a formula to
Excel, LibreOffice and Google Sheets: a token named `=HYPERLINK(…)` or a build's report
would run in the admin's spreadsheet. Every text cell Slipway exports passes through
`safe_cell`, which puts a `'` in front of such a value (OWASP's advice for CSV injection);
numbers stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterable, Iterator
from itertools import islice

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> object:
    """The value as a CSV cell: None is empty, text that a spreadsheet would evaluate is
    quoted with a leading apostrophe, everything else is written as it is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file that hands back what is written, so csv.writer makes lines to stream."""

    def write(self, value: str) -> str:
        return value


def csv_writer():
    """A csv writer whose `writerow` returns the line (for streaming responses)."""
    return csv.writer(_Echo())


def csv_row(writer, cells: Iterable) -> str:
    """One line of neutralised cells."""
    return writer.writerow([safe_cell(cell) for cell in cells])


# How many lines one hop to the database thread reads, under ASGI.
LINES_PER_HOP = 1000


def streamed_response(request, lines: Iterator[str], *, content_type: str) -> StreamingHttpResponse:
    """An export that streams in flat memory whatever serves it. Under ASGI, Django would
    read a synchronous iterator to its end into a list before sending a byte (a million
    rows, all in memory): the lines go as an asynchronous iterator instead, read in the
    request's own database thread a thousand at a time."""
    from django.core.handlers.asgi import ASGIRequest

    http_request = getattr(request, "_request", request)  # a DRF request wraps Django's
    if isinstance(http_request, ASGIRequest):
        return StreamingHttpResponse(_in_hops(iter(lines)), content_type=content_type)
    return StreamingHttpResponse(lines, content_type=content_type)


async def _in_hops(lines: Iterator[str]) -> AsyncIterator[str]:
    take = sync_to_async(lambda: "".join(islice(lines, LINES_PER_HOP)))
    while text := await take():
        yield text
