"""Python value types for PostgreSQL data that has no natural stdlib type.

These are the objects the codecs return for ranges, bit strings and the
geometric types, plus the small named tuples that describe types, attributes
and server versions. Names, constructors, methods, equality and repr follow
``asyncpg.types`` so that code written for asyncpg keeps working: ``Point``,
``Box``, ``Line``, ``LineSegment`` and ``Circle`` are tuple subclasses (they
compare equal to plain tuples), while ``Path``, ``Polygon``, ``Range`` and
``BitString`` are plain classes.

Pure Python; knows nothing about wire formats or connections.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence
from typing import Any, Generic, NamedTuple, SupportsFloat, SupportsIndex

if typing.TYPE_CHECKING:
    import builtins
    import sys

    if sys.version_info >= (3, 11):
        from typing import Self
    else:
        from typing_extensions import Self

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


# -- descriptions of the server's schema ---------------------------------------


class Type(NamedTuple):
    """A data type known to the server."""

    oid: int
    name: str
    kind: str
    schema: str


Type.oid.__doc__ = "The type's OID."
Type.name.__doc__ = 'The type\'s name, e.g. "int4".'
Type.kind.__doc__ = '"scalar", "array", "composite" or "range".'
Type.schema.__doc__ = "The schema the type lives in."


class Attribute(NamedTuple):
    """A column of a relation or of a statement's result."""

    name: str
    type: Type


Attribute.name.__doc__ = "The attribute's name."
Attribute.type.__doc__ = "The attribute's data type (a Type)."


class ServerVersion(NamedTuple):
    """The version of a PostgreSQL server, in the shape of ``sys.version_info``."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


# -- ranges --------------------------------------------------------------------


class _Comparable(typing.Protocol):
    def __eq__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...


_T = typing.TypeVar("_T", bound=_Comparable)


class Range(Generic[_T]):
    """An immutable PostgreSQL range value.

    ``None`` for a bound means that side is unbounded (infinite). A missing
    bound is never inclusive, whatever *lower_inc*/*upper_inc* say, which is
    how the server normalizes it too.

    :param lower: Lower bound, or None for unbounded.
    :param upper: Upper bound, or None for unbounded.
    :param lower_inc: Whether the lower bound belongs to the range.
    :param upper_inc: Whether the upper bound belongs to the range.
    :param empty: Make the empty range; the other arguments are ignored.
    """

    __slots__ = ("_empty", "_lower", "_lower_inc", "_upper", "_upper_inc")

    _lower: _T | None
    _upper: _T | None
    _lower_inc: bool
    _upper_inc: bool
    _empty: bool

    def __init__(
        self,
        lower: _T | None = None,
        upper: _T | None = None,
        *,
        lower_inc: bool = True,
        upper_inc: bool = False,
        empty: bool = False,
    ) -> None:
        self._empty = empty
        if empty:
            self._lower = None
            self._upper = None
            self._lower_inc = False
            self._upper_inc = False
        else:
            self._lower = lower
            self._upper = upper
            self._lower_inc = lower is not None and lower_inc
            self._upper_inc = upper is not None and upper_inc

    @property
    def lower(self) -> _T | None:
        """The lower bound, or None when unbounded (or empty)."""
        return self._lower

    @property
    def lower_inc(self) -> bool:
        """True if the lower bound is part of the range."""
        return self._lower_inc

    @property
    def lower_inf(self) -> bool:
        """True if the range has no lower bound (and is not empty)."""
        return self._lower is None and not self._empty

    @property
    def upper(self) -> _T | None:
        """The upper bound, or None when unbounded (or empty)."""
        return self._upper

    @property
    def upper_inc(self) -> bool:
        """True if the upper bound is part of the range."""
        return self._upper_inc

    @property
    def upper_inf(self) -> bool:
        """True if the range has no upper bound (and is not empty)."""
        return self._upper is None and not self._empty

    @property
    def isempty(self) -> bool:
        """True for the empty range."""
        return self._empty

    def _lower_within(self, other: Range[_T]) -> bool:
        # Does our lower bound start at or after other's?
        if other._lower is None:
            return True
        if self._lower is None:
            return False
        if self._lower > other._lower:
            return True
        return self._lower == other._lower and (other._lower_inc or not self._lower_inc)

    def _upper_within(self, other: Range[_T]) -> bool:
        # Does our upper bound end at or before other's?
        if other._upper is None:
            return True
        if self._upper is None:
            return False
        if self._upper < other._upper:
            return True
        return self._upper == other._upper and (other._upper_inc or not self._upper_inc)

    def issubset(self, other: Range[_T]) -> bool:
        """Return True if every point of this range is also in *other*.

        :param other: The range to compare with.
        """
        if self._empty:
            return True
        if other._empty:
            return False
        return self._lower_within(other) and self._upper_within(other)

    def issuperset(self, other: Range[_T]) -> bool:
        """Return True if every point of *other* is also in this range.

        :param other: The range to compare with.
        """
        return other.issubset(self)

    def __bool__(self) -> bool:
        return not self._empty

    def _key(self) -> tuple[Any, ...]:
        return (self._lower, self._upper, self._lower_inc, self._upper_inc, self._empty)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self._empty:
            return "<Range empty>"
        left = "[" if self._lower_inc else "("
        if self._lower is not None:
            left += repr(self._lower)
        right = repr(self._upper) if self._upper is not None else ""
        right += "]" if self._upper_inc else ")"
        return f"<Range {left}, {right}>"

    __str__ = __repr__


# -- bit strings ---------------------------------------------------------------


class BitString:
    """An immutable PostgreSQL ``bit`` / ``bit varying`` value.

    :param bitstring: The bits as a string of ``0`` and ``1`` characters;
        spaces are ignored, so ``"1010 1"`` is five bits.
    """

    __slots__ = ("_bitlength", "_bytes")

    _bytes: bytes
    _bitlength: int

    def __init__(self, bitstring: str | None = None) -> None:
        if not bitstring:
            self._bytes = b""
            self._bitlength = 0
            return
        bits = []
        for pos, ch in enumerate(bitstring):
            if ch == " ":
                continue
            if ch != "0" and ch != "1":
                raise ValueError(f"invalid bit value at position {pos}")
            bits.append(ch)
        n = len(bits)
        if n == 0:
            self._bytes = b""
            self._bitlength = 0
            return
        nbytes = (n + 7) // 8
        # Left-align the bits in the bytes: the last byte is padded with zeros.
        value = int("".join(bits), 2) << (nbytes * 8 - n)
        self._bytes = value.to_bytes(nbytes, "big")
        self._bitlength = n

    @classmethod
    def frombytes(cls, bytes_: builtins.bytes | None = None, bitlength: int | None = None) -> Self:
        """Make a BitString from packed bytes.

        :param bytes_: The bits, most significant bit of the first byte
            first, the last byte padded with zero bits.
        :param bitlength: How many bits of *bytes_* are used; by default all
            of them. Must need exactly ``len(bytes_)`` bytes.
        :raises ValueError: *bitlength* does not fit *bytes_*.
        """
        if bitlength is None:
            if bytes_ is None:
                bytes_ = b""
            bitlength = len(bytes_) * 8
        elif bytes_ is None:
            bytes_ = bytes(bitlength // 8 + 1)
        else:
            nbits = len(bytes_) * 8
            if (
                (nbits == 0) != (bitlength == 0)
                or bitlength < nbits - 8
                or bitlength > nbits
            ):
                raise ValueError("invalid bit length specified")
        return cls._make(bytes_, bitlength)

    @classmethod
    def _make(cls, bytes_: builtins.bytes, bitlength: int) -> Self:
        # Internal constructor for already-validated parts (the decoder).
        self = object.__new__(cls)
        self._bytes = bytes_
        self._bitlength = bitlength
        return self

    @property
    def bytes(self) -> builtins.bytes:
        """The bits packed into bytes, the last byte padded with zero bits."""
        return self._bytes

    def as_string(self) -> str:
        """Return the bits as ``0``/``1`` characters in groups of four."""
        n = self._bitlength
        if n == 0:
            return ""
        digits = bin(int.from_bytes(self._bytes, "big"))[2:].zfill(len(self._bytes) * 8)[:n]
        return " ".join(digits[i:i + 4] for i in range(0, n, 4))

    def to_int(
        self, bitorder: typing.Literal["big", "little"] = "big", *, signed: bool = False
    ) -> int:
        """Return the bits read as an integer, like :meth:`int.from_bytes`.

        :param bitorder: ``"big"`` (the default, PostgreSQL's ``bit::int``
            convention) reads the first bit as the most significant one;
            ``"little"`` reads it as the least significant.
        :param signed: Read the bits as a two's complement number.
        :return: The integer; the bit string's length is not kept.
        """
        n = self._bitlength
        value = int.from_bytes(self._bytes, "big") >> (-n % 8)
        if bitorder == "little":
            value = _reverse_bits(value, n)
        elif bitorder != "big":
            raise ValueError("bitorder must be either 'big' or 'little'")
        if signed and n > 0 and value >> (n - 1):
            value -= 1 << n
        return value

    @classmethod
    def from_int(
        cls,
        x: int,
        length: int,
        bitorder: typing.Literal["big", "little"] = "big",
        *,
        signed: bool = False,
    ) -> Self:
        """Make a BitString of *length* bits from an integer, like :meth:`int.to_bytes`.

        :param x: The integer. A negative one needs ``signed=True`` and is
            written in two's complement.
        :param length: The number of bits.
        :param bitorder: ``"big"`` puts the most significant bit first (the
            default, PostgreSQL's ``int::bit`` convention); ``"little"`` last.
        :param signed: Allow negative *x*.
        :raises OverflowError: *x* does not fit in *length* bits, or is
            negative and *signed* is false.
        """
        if length < 0:
            raise ValueError("length argument must be non-negative")
        if length < x.bit_length():
            raise OverflowError("int too big to convert")
        if x < 0:
            if not signed:
                raise OverflowError("can't convert negative int to unsigned")
            x &= (1 << length) - 1
        if bitorder == "little":
            x = _reverse_bits(x, length)
        elif bitorder != "big":
            raise ValueError("bitorder must be either 'big' or 'little'")
        nbytes = (length + 7) // 8
        return cls.frombytes((x << (-length % 8)).to_bytes(nbytes, "big"), length)

    def __repr__(self) -> str:
        return f"<BitString {self.as_string()}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitString):
            return NotImplemented
        return self._bitlength == other._bitlength and self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash((self._bytes, self._bitlength))

    def __getitem__(self, i: int) -> int:
        if isinstance(i, slice):
            raise NotImplementedError("BitString does not support slices")
        if i >= self._bitlength:
            raise IndexError("index out of range")
        # Negative indexes count from the end of the bytes (asyncpg's behaviour).
        return (self._bytes[i // 8] >> (7 - i % 8)) & 1

    def __len__(self) -> int:
        return self._bitlength


def _reverse_bits(value: int, width: int) -> int:
    # The lowest `width` bits of value, in reverse order.
    if width == 0:
        return 0
    return int(format(value, f"0{width}b")[::-1], 2)


# -- geometry ------------------------------------------------------------------

_Coord = SupportsFloat | SupportsIndex | str | bytes | bytearray


def _tuple_repr(obj: tuple[Any, ...]) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__name__}({tuple.__repr__(obj)})"


class Point(tuple[float, float]):
    """A PostgreSQL ``point``: a tuple ``(x, y)`` of floats.

    :param x: The x coordinate (anything :class:`float` accepts).
    :param y: The y coordinate.
    """

    __slots__ = ()

    def __new__(cls, x: _Coord, y: _Coord) -> Self:
        return tuple.__new__(cls, (float(x), float(y)))  # type: ignore[arg-type]

    def __getnewargs__(self) -> tuple[float, float]:
        return tuple(self)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return _tuple_repr(self)

    @property
    def x(self) -> float:
        """The x coordinate."""
        return self[0]

    @property
    def y(self) -> float:
        """The y coordinate."""
        return self[1]


class Box(tuple[Point, Point]):
    """A PostgreSQL ``box``: a tuple of two corner points ``(high, low)``.

    :param high: The upper right corner, as any ``(x, y)`` sequence.
    :param low: The lower left corner.
    """

    __slots__ = ()

    def __new__(cls, high: Sequence[float], low: Sequence[float]) -> Self:
        return tuple.__new__(cls, (Point(*high), Point(*low)))  # type: ignore[arg-type]

    def __getnewargs__(self) -> tuple[Point, Point]:
        return tuple(self)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return _tuple_repr(self)

    @property
    def high(self) -> Point:
        """The upper right corner."""
        return self[0]

    @property
    def low(self) -> Point:
        """The lower left corner."""
        return self[1]


class Line(tuple[float, float, float]):
    """A PostgreSQL ``line`` ``Ax + By + C = 0``: a tuple ``(A, B, C)``.

    :param A: Coefficient of x.
    :param B: Coefficient of y.
    :param C: Constant term.
    """

    __slots__ = ()

    def __new__(cls, A: float, B: float, C: float) -> Self:
        return tuple.__new__(cls, (A, B, C))  # type: ignore[arg-type]

    def __getnewargs__(self) -> tuple[float, float, float]:
        return tuple(self)  # type: ignore[return-value]

    @property
    def A(self) -> float:
        """Coefficient of x."""
        return self[0]

    @property
    def B(self) -> float:
        """Coefficient of y."""
        return self[1]

    @property
    def C(self) -> float:
        """Constant term."""
        return self[2]


class LineSegment(tuple[Point, Point]):
    """A PostgreSQL ``lseg``: a tuple of its two end points ``(p1, p2)``.

    :param p1: First end point, as any ``(x, y)`` sequence.
    :param p2: Second end point.
    """

    __slots__ = ()

    def __new__(cls, p1: Sequence[float], p2: Sequence[float]) -> Self:
        return tuple.__new__(cls, (Point(*p1), Point(*p2)))  # type: ignore[arg-type]

    def __getnewargs__(self) -> tuple[Point, Point]:
        return tuple(self)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return _tuple_repr(self)

    @property
    def p1(self) -> Point:
        """First end point."""
        return self[0]

    @property
    def p2(self) -> Point:
        """Second end point."""
        return self[1]


class Path:
    """A PostgreSQL ``path``: a sequence of points, open or closed.

    :param points: The points, each any ``(x, y)`` sequence.
    :param is_closed: Whether the last point connects back to the first.
    """

    __slots__ = ("_is_closed", "points")

    points: tuple[Point, ...]

    def __init__(self, *points: Sequence[float], is_closed: bool = False) -> None:
        self.points = tuple(Point(*p) for p in points)
        self._is_closed = is_closed

    @classmethod
    def _make(cls, points: tuple[Point, ...], is_closed: bool) -> Self:
        # Internal constructor for a tuple of Point objects (the decoder).
        self = object.__new__(cls)
        self.points = points
        self._is_closed = is_closed
        return self

    @property
    def is_closed(self) -> bool:
        """Whether the path is closed."""
        return self._is_closed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Path):
            return NotImplemented
        return self.points == other.points and self._is_closed == other._is_closed

    def __hash__(self) -> int:
        return hash((self.points, self._is_closed))

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    @typing.overload
    def __getitem__(self, i: int) -> Point: ...

    @typing.overload
    def __getitem__(self, i: slice) -> tuple[Point, ...]: ...

    def __getitem__(self, i: int | slice) -> Point | tuple[Point, ...]:
        return self.points[i]

    def __contains__(self, point: object) -> bool:
        return point in self.points

    def __repr__(self) -> str:
        points = ", ".join(repr(tuple(p)) for p in self.points)
        return f"<{type(self).__name__} [{points}]{' closed' if self._is_closed else ''}>"


class Polygon(Path):
    """A PostgreSQL ``polygon``: a closed path.

    :param points: The vertices, each any ``(x, y)`` sequence.
    """

    __slots__ = ()

    def __init__(self, *points: Sequence[float]) -> None:
        super().__init__(*points, is_closed=True)

    @classmethod
    def _make(cls, points: tuple[Point, ...], is_closed: bool = True) -> Self:
        return super()._make(points, True)

    def __repr__(self) -> str:
        points = ", ".join(repr(tuple(p)) for p in self.points)
        return f"<Polygon [{points}]>"


class Circle(tuple[Point, float]):
    """A PostgreSQL ``circle``: a tuple ``(center, radius)``.

    :param center: The centre, as any ``(x, y)`` sequence (stored as a
        :class:`Point`).
    :param radius: The radius.
    """

    __slots__ = ()

    def __new__(cls, center: Sequence[float], radius: float) -> Self:
        if not isinstance(center, Point):
            center = Point(*center)
        return tuple.__new__(cls, (center, radius))  # type: ignore[arg-type]

    def __getnewargs__(self) -> tuple[Point, float]:
        return tuple(self)  # type: ignore[return-value]

    @property
    def center(self) -> Point:
        """The centre point."""
        return self[0]

    @property
    def radius(self) -> float:
        """The radius."""
        return self[1]
