"""SASLprep (RFC 4013): the string preparation SCRAM applies to passwords.

Pure function, no state. Uses the stdlib ``stringprep`` tables (RFC 3454,
Unicode 3.2) and ``unicodedata`` for NFKC. Knows nothing about SCRAM itself:
:mod:`pg_wire.auth` decides what to do when a password cannot be prepared
(PostgreSQL then uses the raw UTF-8 bytes, and so do we).

How it works (RFC 4013 section 2, on top of RFC 3454 section 2):

1. map: non-ASCII spaces (table C.1.2) become U+0020; characters "commonly
   mapped to nothing" (table B.1, e.g. the soft hyphen) are dropped;
2. normalize with NFKC;
3. prohibit: table C.1.2, C.2.1 to C.9, and unassigned code points (A.1);
4. bidi: a string with any right-to-left character (D.1) must not contain a
   left-to-right one (D.2), and must start and end with a right-to-left one.

PostgreSQL's own implementation (``src/common/saslprep.c``) runs the checks
of steps 3 and 4 on the mapped string before normalization, while RFC 3454
asks for them after. We run them on both, so anything either reading rejects
is rejected; for real passwords the two readings agree. An empty result is
rejected as PostgreSQL does.
"""

from __future__ import annotations

import stringprep
import unicodedata

__all__ = ["SaslprepError", "saslprep"]


class SaslprepError(ValueError):
    """The string contains something SASLprep prohibits, or maps to nothing."""


# Tables of RFC 4013 section 2.3 (C.1.2 is checked too: NFKC could in theory
# bring a non-ASCII space back after step 1).
_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,  # unassigned: RFC 4013 treats passwords as stored strings
)


def _check(text: str) -> None:
    """Raise SaslprepError if *text* breaks the prohibition or bidi rules."""
    for char in text:
        for table in _PROHIBITED:
            if table(char):
                raise SaslprepError(f"prohibited character U+{ord(char):04X}")
    if any(stringprep.in_table_d1(char) for char in text):
        if any(stringprep.in_table_d2(char) for char in text):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
            raise SaslprepError("right-to-left string must start and end with an RTL character")


def saslprep(text: str) -> str:
    """Prepare *text* with the SASLprep profile of stringprep.

    :param text: The string to prepare, typically a password.
    :return: The prepared string; pure ASCII without control characters comes
        back unchanged.
    :raises SaslprepError: If the string holds a prohibited or unassigned
        character, breaks the bidi rules, or is empty after mapping. The
        message names the offending code point, never the string itself.
    """
    # U+200B is in both tables; like PostgreSQL, the space mapping wins.
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if stringprep.in_table_c12(char) or not stringprep.in_table_b1(char)
    )
    if not mapped:
        raise SaslprepError("string is empty after SASLprep mapping")
    _check(mapped)
    normalized = unicodedata.normalize("NFKC", mapped)
    if normalized != mapped:
        _check(normalized)
    return normalized
