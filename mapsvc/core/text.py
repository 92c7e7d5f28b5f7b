"""Which characters free text may hold: what a person can type, and what every database can store.

Control characters (NUL above all: PostgreSQL's text cannot hold it) and lone surrogates (halves
of a UTF-16 pair, which no UTF-8 text can hold) come only from broken or hostile clients; they
are refused, never stored.
"""

from __future__ import annotations

import re

#: Control characters (C0, DEL, C1) and surrogates; tab, line feed and carriage return are allowed
#: in text of several lines.
_REFUSED_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, and tab, line feed and carriage return too: text of one line (a name).
_REFUSED_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

#: Text of several lines as a JSON Schema (ECMA-262) pattern, for the OpenAPI documents: no control
#: character but tab and line breaks. A lone surrogate cannot be written in a pattern; it is refused too.
FREE_TEXT_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"


def refused_characters(text: str, *, lines: bool = True) -> bool:
    """Return whether ``text`` holds a character free text may not: a control character or a lone surrogate.

    Parameters
    ----------
    text : str
        The text as received.
    lines : bool
        Whether the text may have several lines (then tab, line feed and carriage return are allowed).

    """
    return (_REFUSED_IN_LINES if lines else _REFUSED_IN_LINE).search(text) is not None
