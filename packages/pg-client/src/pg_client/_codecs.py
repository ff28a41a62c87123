"""pg-client's use of pg-codecs: one CodecRegistry per connection.

Plans the parameter encoder and row decoder of each prepared statement,
feeds the registry what introspection learned about server types, and maps
asyncpg's ``set_type_codec`` family onto the registry. Turns codec errors
into asyncpg's exceptions (DataError for a bad argument, naming the
parameter; InterfaceError for a wrong argument count).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pg_codecs import (
    CodecRegistry,
    CompositeSizeError,
    ParameterCountError,
    ParameterEncodeError,
    Record,
    UnsupportedCodecError,
    oids,
)

from . import exceptions
from .types import Type

__all__ = ("ConnectionCodecs", "ParameterCountError", "ParameterEncodeError", "Record",
           "check_record_class", "param_error")

_KINDS = {"b": "scalar", "c": "composite", "d": "scalar", "e": "scalar", "r": "range",
          "m": "multirange", "p": "scalar"}
_BUILTIN_NAMES: dict[int, str] = {}


def _builtin_name(oid: int) -> str | None:
    """asyncpg's name of a built-in type: ``int4``, ``text[]`` for arrays."""
    if not _BUILTIN_NAMES:
        for attr, value in vars(oids).items():
            if attr.endswith("OID") and isinstance(value, int):
                base = attr[:-3]
                if base.endswith("ARRAY"):
                    _BUILTIN_NAMES.setdefault(value, base[:-5].lower() + "[]")
                else:
                    _BUILTIN_NAMES.setdefault(value, base.lower())
    return _BUILTIN_NAMES.get(oid)


def check_record_class(record_class: Any) -> None:
    """asyncpg's rules for ``record_class``."""
    if record_class is Record:
        return
    if not (isinstance(record_class, type) and issubclass(record_class, Record)):
        raise exceptions.InterfaceError(
            "record_class is expected to be a subclass of pg_client.Record, "
            f"got {record_class!r}")
    if record_class.__new__ is not Record.__new__ or record_class.__init__ is not Record.__init__:
        raise exceptions.InterfaceError(
            "record_class must not redefine __new__ or __init__")


def arg_count_error(expected: int, passed: int) -> exceptions.InterfaceError:
    """asyncpg's error (and hint) for a wrong number of query arguments."""
    hint = "Check the query against the passed list of arguments."
    if expected == 0:
        hint += ("  Note that parameters are supported only in SELECT, INSERT, UPDATE, "
                 "DELETE, MERGE and VALUES statements, and will *not* work in statements  "
                 "like CREATE VIEW or DECLARE CURSOR.")
    return exceptions.InterfaceError(
        f"the server expects {expected} argument{'s' if expected != 1 else ''} "
        f"for this query, {passed} {'were' if passed != 1 else 'was'} passed", hint=hint)


def param_error(exc: BaseException, element: int | None = None) -> BaseException:
    """The asyncpg exception for an argument the codecs refused.

    :param element: Index of the argument tuple in an executemany() batch.
    """
    if isinstance(exc, ParameterCountError):
        return arg_count_error(exc.expected, exc.passed)
    if isinstance(exc, ParameterEncodeError):
        cause = exc.__cause__
        if isinstance(cause, CompositeSizeError):
            # What the server would say; asyncpg raises this class too.
            err: BaseException = exceptions.DatatypeMismatchError(
                f"wrong number of columns: {cause.got}, expected {cause.expected}")
            err.__cause__ = cause
            return err
        value = repr(exc.value)
        if len(value) > 60:
            value = value[:57] + "..."
        where = f"${exc.position + 1}"
        if element is not None:
            where += f" in element #{element} of executemany() sequence"
        err = exceptions.DataError(f"invalid input for query argument {where}: {value} "
                                   f"({exc.reason})")
        err.__cause__ = cause if cause is not None else exc
        return err
    return exc


def _unsupported(exc: UnsupportedCodecError) -> exceptions.UnsupportedClientFeatureError:
    hint = None
    if "tuple" in str(exc) and "composite" in str(exc):
        hint = ("Composite types take set_type_codec(..., format='tuple'): the encoder "
                "returns and the decoder receives a tuple of the attribute values.")
    message, detail = str(exc), None
    head, sep, tail = message.rpartition(" (")
    if sep and tail.endswith(")") and tail.startswith(("attribute type", "subtype")):
        # asyncpg's message, with which element is to blame as the detail.
        message, detail = head, tail[:-1]
    return exceptions.UnsupportedClientFeatureError(message, hint=hint, detail=detail)


class ConnectionCodecs:
    """The codec state of one connection."""

    __slots__ = ("registry", "_described")

    def __init__(self) -> None:
        self.registry = CodecRegistry()
        self._described: dict[int, Any] = {}

    def missing(self, type_oids: Iterable[int]) -> set[int]:
        try:
            return set(self.registry.unknown_oids(type_oids))
        except UnsupportedCodecError as exc:
            raise _unsupported(exc) from None

    def add_types(self, infos: Iterable[Any]) -> None:
        rows = []
        for info in infos:
            self._described[info.oid] = info
            rows.append({
                "oid": info.oid, "ns": info.schema, "name": info.name, "kind": info.kind,
                "elemtype": info.elemtype or None, "elemdelim": info.elemdelim,
                "basetype": info.basetype or None,
                "range_subtype": info.range_subtype or None,
                "attrtypoids": info.attrtypoids, "attrnames": info.attrnames,
            })
        if rows:
            self.registry.add_types(rows)

    def plan(self, stmt: Any, record_class: type, ignore_custom_codec: bool) -> None:
        registry = self.registry
        try:
            stmt.encoder = registry.plan_param_encoder(
                stmt.param_oids, ignore_custom_codec=ignore_custom_codec)
        except UnsupportedCodecError as exc:
            raise _unsupported(exc) from None
        except ValueError as exc:  # more parameters than Bind can carry
            raise exceptions.InterfaceError(str(exc)) from None
        if stmt.fields is not None:
            # Also for zero columns: "SELECT" returns rows without fields.
            try:
                decoder = registry.plan_row_decoder(
                    [f[3] for f in stmt.fields], [f[0] for f in stmt.fields], record_class,
                    ignore_custom_codec=ignore_custom_codec)
            except UnsupportedCodecError as exc:
                raise _unsupported(exc) from None
            stmt.decoder = decoder
            stmt.result_formats = decoder
        else:
            stmt.decoder = None
            stmt.result_formats = ()

    def describe_types(self, type_oids: Sequence[int]) -> tuple[Type, ...]:
        result = []
        for oid in type_oids:
            info = self._described.get(oid)
            if info is not None:
                kind = "array" if info.elemtype else _KINDS.get(info.kind, "scalar")
                result.append(Type(oid, info.name, kind, info.schema))
                continue
            name = _builtin_name(oid) or str(oid)
            kind = "array" if name.endswith("[]") else "scalar"
            if name.endswith("range"):
                kind = "multirange" if name.endswith("multirange") else "range"
            result.append(Type(oid, name, kind, "pg_catalog"))
        return tuple(result)

    def set_type_codec(self, info: Any, *, encoder: Callable[[Any], Any],
                       decoder: Callable[[Any], Any], format: str) -> None:
        if info.kind == "d":
            raise exceptions.UnsupportedClientFeatureError(
                "custom codecs on domain types are not supported",
                hint="Set the codec on the base type.",
                detail="PostgreSQL does not distinguish domains from their base types "
                       "in query results at the protocol level.")
        if format not in ("text", "binary", "tuple"):
            raise exceptions.InterfaceError(
                f"invalid `format` argument, expected 'text', 'binary' or 'tuple', "
                f"got {format!r}")
        if info.elemtype:
            raise exceptions.UnsupportedClientFeatureError(
                f"cannot use custom codec on array type {info.schema}.{info.name}")
        # The registry refuses kinds other than scalar and composite (ranges,
        # multiranges, pseudo-types), with asyncpg's message.
        kind: Any = {"c": "composite", "b": "scalar", "e": "scalar"}.get(
            info.kind, _KINDS.get(info.kind, info.kind))
        try:
            self.registry.set_type_codec(
                info.oid, info.name, info.schema, kind, encoder, decoder,
                format,  # type: ignore[arg-type]  # validated by the registry
                typeinfos=())
        except UnsupportedCodecError as exc:
            if "neither a scalar type nor a composite" in str(exc):
                raise exceptions.InterfaceError(str(exc)) from None
            raise _unsupported(exc) from None
        except ValueError as exc:
            raise exceptions.InterfaceError(str(exc)) from None

    def reset_type_codec(self, info: Any) -> None:
        self.registry.reset_type_codec(info.oid)

    def set_builtin_type_codec(self, info: Any, *, codec_name: str,
                               format: str | None) -> None:
        try:
            self.registry.set_builtin_type_codec(
                info.oid, info.name, info.schema, codec_name,
                format)  # type: ignore[arg-type]  # validated by the registry
        except UnsupportedCodecError as exc:
            raise exceptions.UnsupportedClientFeatureError(str(exc)) from None
        except ValueError as exc:
            raise exceptions.InterfaceError(str(exc)) from None

    def reset_introspected(self) -> None:
        self._described.clear()
        self.registry.clear_type_cache()

    def copy_encoder(self, stmt: Any) -> Any:
        """The ParamEncoder that writes binary COPY tuples for *stmt*'s columns."""
        if not stmt.fields:
            raise exceptions.InterfaceError("the table has no columns to copy into")
        type_oids = [f[3] for f in stmt.fields]
        encoder = self.registry.plan_param_encoder(type_oids)
        if any(fmt != 1 for fmt in encoder.formats):
            names = [f[0] for f in stmt.fields]
            raise exceptions.InternalClientError(
                "no binary codec for some columns of the target table; "
                f"binary COPY needs one for every column ({', '.join(names)})")
        return encoder
