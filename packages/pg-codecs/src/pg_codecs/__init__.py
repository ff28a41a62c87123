"""Binary and text codecs for PostgreSQL data types, and the Record row type.

pg-codecs turns PostgreSQL values into Python objects and back. It knows
nothing about protocol messages, sockets or asyncio.

The parts a client uses:

* :class:`CodecRegistry`: the codecs of one connection (built-in ones, types
  described from the server's catalog, ``set_type_codec()`` overrides);
* :class:`RowDecoder` (planned by ``CodecRegistry.plan_row_decoder()``):
  DataRow payloads to :class:`Record` objects;
* :class:`ParamEncoder` (``CodecRegistry.plan_param_encoder()``): query
  arguments into the parameter section of a Bind message;
* :class:`WriteBuffer`: the buffer everything is written into;
* :mod:`pg_codecs.oids`: the OIDs of the built-in types.

Importing the package registers every built-in codec.
"""

from __future__ import annotations

# The codec modules register their codecs in the core table when imported;
# every one of them must be listed here, or its types fall back to text.
from pg_codecs import (
    _basic,  # noqa: F401  (bool, integers, floats, text, bytea, ...)
    _datetime,  # noqa: F401
    _geometry,  # noqa: F401
    _misc,  # noqa: F401
    _network,  # noqa: F401
    _numeric,  # noqa: F401
    oids,
)
from pg_codecs._buffer import WriteBuffer
from pg_codecs._codecs import (
    Codec,
    CodecContext,
    CodecRegistry,
    CompositeSizeError,
    ParamEncoder,
    ParameterCountError,
    ParameterEncodeError,
    RowDecoder,
    SchemaMismatchError,
    UnsupportedCodecError,
)
from pg_codecs._record import Record, RecordDescriptor
from pg_codecs.errors import DecodeError, RowFormatError

# -- value types (pg_codecs.types) ----------------------------------------------------
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

__version__ = "0.1.0"

__all__ = [
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
    "Codec",
    "CodecContext",
    "CodecRegistry",
    "CompositeSizeError",
    "DecodeError",
    "ParamEncoder",
    "ParameterCountError",
    "ParameterEncodeError",
    "Record",
    "RecordDescriptor",
    "RowDecoder",
    "RowFormatError",
    "SchemaMismatchError",
    "UnsupportedCodecError",
    "WriteBuffer",
    "__version__",
    "oids",
]
