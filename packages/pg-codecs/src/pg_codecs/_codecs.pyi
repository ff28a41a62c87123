from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pg_codecs._buffer import WriteBuffer
from pg_codecs._record import Record, RecordDescriptor
from pg_codecs.errors import DecodeError

_Format = Literal["binary", "text"] | int | None

class UnsupportedCodecError(ValueError):
    """A codec cannot be set up or used the way it was asked for."""

class SchemaMismatchError(DecodeError):
    """A composite value does not match the type description its codec was built from."""

    schema: str | None
    data_type: str | None
    position: int | None
    def __init__(
        self,
        message: str,
        *,
        schema: str | None = None,
        data_type: str | None = None,
        position: int | None = None,
    ) -> None: ...

class CompositeSizeError(ValueError):
    """A composite value has more or fewer items than the type has attributes."""
    expected: int
    got: int
    def __init__(self, message: str, *, expected: int, got: int) -> None: ...
class ParameterCountError(ValueError):
    """The number of arguments is not the number of parameters of the statement."""

    expected: int
    passed: int
    def __init__(self, expected: int, passed: int) -> None: ...

class ParameterEncodeError(ValueError):
    """A query argument cannot be encoded for its parameter's type (cause kept)."""

    position: int
    type_name: str
    value: object
    reason: str
    def __init__(self, position: int, type_name: str, value: object, reason: str) -> None: ...

class CodecContext:
    """State a codec may consult while encoding or decoding."""

    registry: Any
    def __init__(self, registry: Any = None) -> None: ...

class Codec:
    """How values of one PostgreSQL type travel in one wire format."""

    @property
    def oid(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def schema(self) -> str | None: ...
    @property
    def kind(self) -> str:
        """``scalar``, ``array``, ``composite``, ``range`` or ``multirange``."""
    @property
    def format(self) -> int:
        """0 text, 1 binary: the wire format (the Bind format code)."""
    @property
    def xformat(self) -> int:
        """0: Python objects; 1: the tuple form (set_type_codec format='tuple')."""
    @property
    def element_codec(self) -> Codec | None: ...
    @property
    def format_name(self) -> Literal["binary", "text"]: ...
    def has_encoder(self) -> bool: ...
    def has_decoder(self) -> bool: ...

class CodecRegistry(CodecContext):
    """The codecs of one connection.

    Lookup order (asyncpg's): the user's codecs for the OID, the built-in
    core codecs, then codecs derived from type descriptions (``add_types``)
    and from the built-in array and range tables.
    """

    def __init__(self) -> None: ...
    def get_codec(
        self, oid: int, format: _Format = None, *, ignore_custom_codec: bool = False
    ) -> Codec | None:
        """The codec of *oid* in *format*; with None the binary one if any, else the text one."""
    def unknown_oids(self, oids: Iterable[int]) -> list[int]:
        """The OIDs without a codec yet: introspect these, then ``add_types()``."""
    def type_info(self, oid: int) -> dict[str, Any] | None: ...
    def add_types(self, types: Iterable[Mapping[str, Any]]) -> None:
        """Describe server types. Keys (asyncpg's introspection row): oid, ns (or schema),
        name, kind (typtype, str or bytes), elemtype, elemdelim, basetype,
        range_subtype, attrtypoids, attrnames; optional elemtype_name,
        basetype_name, range_subtype_name."""
    def declare_fallback_codec(self, oid: int, name: str, schema: str) -> Codec: ...
    def clear_type_cache(self) -> None: ...
    def set_type_codec(
        self,
        oid: int,
        name: str,
        schema: str,
        kind: Literal["scalar", "composite"],
        encoder: Callable[[Any], Any],
        decoder: Callable[[Any], Any],
        format: Literal["text", "binary", "tuple"] = "text",
        typeinfos: Iterable[Mapping[str, Any]] = (),
    ) -> None: ...
    def set_builtin_type_codec(
        self,
        oid: int,
        name: str,
        schema: str,
        codec_name: str | int,
        format: Literal["text", "binary"] | None = None,
    ) -> None: ...
    def reset_type_codec(self, oid: int) -> None: ...
    def plan_row_decoder(
        self,
        oids: Sequence[int],
        names: Sequence[str] | RecordDescriptor,
        record_class: type[Record] | None = ...,
        *,
        ignore_custom_codec: bool = False,
    ) -> RowDecoder: ...
    def plan_param_encoder(
        self, oids: Sequence[int], *, ignore_custom_codec: bool = False
    ) -> ParamEncoder: ...
    def encode(self, oid: int, value: Any, format: _Format = None) -> bytes | None:
        """One value's bytes (no length prefix); for tests and Python callers."""
    def decode(
        self, oid: int, data: bytes | bytearray | memoryview | None, format: _Format = None
    ) -> Any:
        """One value from its bytes (no length prefix); for tests and Python callers."""

class RowDecoder:
    """Decodes DataRow payloads of one result shape into Records (or tuples).

    pg-wire calls the C-level ``decode_row(data, length)``; ``decode()`` is
    the Python entry.
    """

    def __init__(
        self,
        codecs: Sequence[Codec],
        names: Sequence[str] | RecordDescriptor,
        record_class: type[Record] | None = ...,
        context: CodecContext | None = None,
    ) -> None: ...
    @property
    def codecs(self) -> tuple[Codec, ...]: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def descriptor(self) -> RecordDescriptor: ...
    @property
    def record_class(self) -> type[Record] | None: ...
    @property
    def result_formats(self) -> tuple[int, ...]: ...
    def write_result_formats_to(self, buf: WriteBuffer) -> None: ...
    def decode(self, data: bytes | bytearray | memoryview) -> Record | tuple[Any, ...]: ...
    def decode_many(self, data: bytes | bytearray | memoryview) -> list[Record | tuple[Any, ...]]:
        """Payloads each preceded by an int32 length; for benchmarks and tools."""

class ParamEncoder:
    """Writes query arguments into a Bind message, planned from parameter types."""

    def __init__(self, codecs: Sequence[Codec], context: CodecContext | None = None) -> None: ...
    @property
    def codecs(self) -> tuple[Codec, ...]: ...
    @property
    def formats(self) -> tuple[int, ...]: ...
    def encode(self, args: Sequence[Any]) -> bytes: ...
    def write_params(self, buf: WriteBuffer, args: Sequence[Any]) -> None: ...
    def write_copy_records(self, buf: WriteBuffer, records: Iterator[Sequence[Any]],
                           max_bytes: int) -> bool: ...
    def write_copy_record(self, buf: WriteBuffer, record: Sequence[Any]) -> None: ...

def core_codec_oids() -> list[int]:
    """The OIDs that have a codec in the core table (for tests and tools)."""
