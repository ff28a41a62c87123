"""Value types of PostgreSQL data, as asyncpg.types has them.

They live in pg-codecs (which builds them when decoding) and are re-exported
here so that ``pg_client.types.Range`` works where ``asyncpg.types.Range``
did.
"""

from __future__ import annotations

from pg_codecs.types import (
    Attribute,
    BitString,
    Box,
    Circle,
    Line,
    LineSegment,
    Path,
    Point,
    Polygon,
    Range,
    ServerVersion,
    Type,
)

__all__ = (
    "Attribute",
    "BitString",
    "Box",
    "Circle",
    "Line",
    "LineSegment",
    "Path",
    "Point",
    "Polygon",
    "Range",
    "ServerVersion",
    "Type",
)
