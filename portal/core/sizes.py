"""How long the product's texts may be, by kind: a column, the audit detail that copies
it, and the message shown all cut at the same length."""

from __future__ import annotations

QUOTE = 200  # what an outside system said, quoted in Slipway's own words; a person's name
LINE = 300  # one line: a reason, a note, a progress line, a URL, a target's description
PARAGRAPH = 500  # a comment, a gate's detail, a failure's summary, a link's address
