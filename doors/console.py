"""A build's console, read in byte ranges, as text: whatever the bytes hold (NUL, invalid
UTF-8, a character split between two reads), for any CI server's door."""

from __future__ import annotations


def _incomplete_tail(data: bytes) -> int:
    """How many bytes at the end start a UTF-8 character that the next chunk completes."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for the lead byte
        if byte < 0x80:
            return 0
        needs = (
            2
            if byte & 0xE0 == 0xC0
            else 3
            if byte & 0xF0 == 0xE0
            else 4
            if byte & 0xF8 == 0xF0
            else 1
        )
        return back if needs > back else 0
    return 0


def decode_console(data: bytes, final: bool) -> tuple[str, int]:
    """The text of console bytes and how many bytes it stands for.

    Whatever the console holds is kept: invalid UTF-8 becomes U+FFFD and NUL bytes (which
    PostgreSQL text cannot hold) too. A character cut at the end of a chunk is held back
    for the next one, unless the log is final.
    """
    used = len(data) if final else len(data) - _incomplete_tail(data)
    text = data[:used].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return text, used
