"""Helpers for COPY: SQL for the COPY statement, sources and sinks of data.

Builds ``COPY`` statements from asyncpg's keyword options, quoting every
identifier and literal (NUL and unencodable text refused, embedded quotes
doubled); turns the ``source``/``output`` arguments asyncpg accepts (a path,
a file-like object, an async iterable, a buffer, a coroutine function) into
async iterators and async callables; and writes binary COPY streams for
``copy_records_to_table``.

``interpolate_args`` serves ``copy_from_query(query, *args)``: COPY cannot
take bind parameters, so the arguments are turned into SQL literals by the
server (``quote_literal``) and put in place of ``$n`` by a small SQL lexer
that never touches text inside string literals, quoted identifiers, dollar
quotes or comments.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pg_codecs import ParameterCountError, ParameterEncodeError, WriteBuffer

from . import _wire
from ._codecs import param_error

_CHUNK = 512 * 1024
# Binary COPY of records: small enough that the server starts on the first
# chunk while the rest is encoded, large enough to keep per-chunk work rare.
# A chunk (plus its last record, header and CopyData framing) fits the 64 KiB
# a WriteBuffer keeps when it is emptied, so it is not regrown every time.
# The first chunk is smaller: the server is idle until it arrives.
_RECORD_CHUNK = 60 * 1024
_FIRST_RECORD_CHUNK = 8 * 1024
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_BINARY_TRAILER = b"\xff\xff"


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{what} cannot contain NUL bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid text: {exc}") from None
    return value


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + _check_text(name, "identifier").replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as an SQL string literal (standard_conforming_strings form)."""
    text = _check_text(value, "literal")
    if "\\" in text:
        return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + text.replace("'", "''") + "'"


def table_ref(table_name: str, schema_name: str | None) -> str:
    ref = quote_ident(table_name)
    if schema_name:
        ref = quote_ident(schema_name) + "." + ref
    return ref


def column_list(columns: Any) -> str:
    if not columns:
        return ""
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of column names, not a str")
    return "(" + ", ".join(quote_ident(c) for c in columns) + ")"


def format_options(**options: Any) -> str:
    """asyncpg's COPY keyword options as a ``(FORMAT 'csv', ...)`` clause."""
    parts = []
    force_quote = options.get("force_quote")
    if isinstance(force_quote, bool):
        options.pop("force_quote")
        if force_quote:
            parts.append("FORCE_QUOTE *")
    for key, value in options.items():
        if value is None:
            continue
        if key in ("force_not_null", "force_null", "force_quote"):
            if isinstance(value, str):
                raise TypeError(f"{key} must be a sequence of column names")
            text = "(" + ", ".join(quote_ident(c) for c in value) + ")"
        elif key in ("oids", "freeze", "header"):
            text = str(bool(value)).upper() if isinstance(value, bool) else quote_literal(
                str(value))
        else:
            text = quote_literal(str(value))
        parts.append(f"{key.upper()} {text}")
    return "(" + ", ".join(parts) + ")" if parts else ""


async def with_deadline(aw: Awaitable[Any], con: Any, deadline: float | None,
                        op: Any = None) -> Any:
    """Await *aw* within the operation's deadline."""
    if deadline is None:
        return await aw
    left = deadline - con._loop.time()
    if left <= 0:
        if inspect.iscoroutine(aw):
            aw.close()
        raise asyncio.TimeoutError()
    return await asyncio.wait_for(aw, left)


# -- sources (COPY FROM STDIN) --------------------------------------------------------


async def _file_chunks(f: Any) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    read = f.read
    if inspect.iscoroutinefunction(read):
        while chunk := await read(_CHUNK):
            yield _as_bytes(chunk)
    else:
        while chunk := await loop.run_in_executor(None, read, _CHUNK):
            yield _as_bytes(chunk)


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    return bytes(chunk)


async def _aiter_chunks(source: Any) -> AsyncIterator[bytes]:
    async for chunk in source:
        yield _as_bytes(chunk)


async def _buffer_chunks(view: memoryview) -> AsyncIterator[memoryview]:
    # Slices, not copies: each one is copied into a CopyData at once.
    for start in range(0, len(view), _CHUNK):
        yield view[start:start + _CHUNK]


async def open_source(source: Any) -> tuple[AsyncIterator[bytes | memoryview],
                                            Callable[[], Awaitable[None]], bool]:
    """Chunks of bytes from any source asyncpg's copy_to_table accepts.

    :return: The chunks; an async ``close()`` that releases what reading
        them holds (the file of a path, a view of a buffer), to be awaited
        whatever happens; and whether the source is *private*: reading it
        ahead has no effect the caller can see (a path, which we open, and a
        bytes-like object, unlike a caller's file object or async iterable,
        whose position or state reading changes). Only a private source is
        read before the server has accepted the COPY (Connection._copy_in).
    """
    loop = asyncio.get_running_loop()
    chunks: Any
    if isinstance(source, (str, os.PathLike)):
        f = await loop.run_in_executor(None, open, source, "rb")
        chunks = _file_chunks(f)

        async def close_file() -> None:
            await chunks.aclose()
            await loop.run_in_executor(None, f.close)

        return chunks, close_file, True
    if hasattr(source, "read"):
        chunks = _file_chunks(source)
        private = False
    elif hasattr(source, "__aiter__"):
        chunks = _aiter_chunks(source)
        private = False
    else:
        try:
            view = memoryview(source)
        except TypeError:
            raise TypeError(
                "source must be a path, a file-like object, an asynchronous iterable of bytes "
                f"or a bytes-like object, got {type(source).__name__}") from None
        chunks = _buffer_chunks(view.cast("B"))
        private = True

    async def close() -> None:
        # Now, not when the generator is collected: a view of the caller's
        # bytearray would keep it from being resized until then.
        await chunks.aclose()

    return chunks, close, private


async def binary_record_chunks(encoder: Any, records: Any) -> AsyncIterator[bytes]:
    """A binary COPY stream of *records*, an async iterable, in chunks of bytes.

    *encoder* is the target columns' pg-codecs ParamEncoder. (Plain iterables
    take the faster :class:`RecordStream`.)
    """
    yield _BINARY_HEADER
    buf = WriteBuffer()
    try:
        async for record in records:
            encoder.write_copy_record(buf, record)
            if len(buf) >= _RECORD_CHUNK:
                yield buf.take()
    except (ParameterEncodeError, ParameterCountError) as exc:
        raise param_error(exc) from exc.__cause__
    if len(buf):
        yield buf.take()
    yield _BINARY_TRAILER


class RecordStream:
    """The binary COPY stream of an iterable of records, encoded in place.

    ``write(out)`` appends the next CopyData message to the connection's
    outgoing buffer: pg-wire opens the message and the target columns'
    pg-codecs ParamEncoder encodes a chunk of tuples inside it, so the data
    is not copied on its way to the socket (the chunk stays under 64 KiB,
    so the buffer keeps its memory between chunks).
    """

    __slots__ = ("_encoder", "_iterator", "_started")

    def __init__(self, encoder: Any, records: Any) -> None:
        self._encoder = encoder
        self._iterator = iter(records)
        self._started = False

    def write(self, out: Any) -> bool:
        """Write the next part of the stream into *out*; True once all of it is."""
        size = _RECORD_CHUNK
        if not self._started:
            self._started = True
            _wire.write_copy_data(out, _BINARY_HEADER)
            size = _FIRST_RECORD_CHUNK
        try:
            if not _wire.write_copy_records(out, self._encoder, self._iterator, size):
                return False
        except (ParameterEncodeError, ParameterCountError) as exc:
            raise param_error(exc) from exc.__cause__
        _wire.write_copy_data(out, _BINARY_TRAILER)
        return True


# -- sinks (COPY TO STDOUT) -----------------------------------------------------------


async def open_sink(output: Any) -> tuple[Callable[[bytes | bytearray], Awaitable[Any]],
                                          Callable[[], Awaitable[None]]]:
    """An async ``write(chunk)`` for *output*, and an async ``close()``."""
    loop = asyncio.get_running_loop()

    async def nothing() -> None:
        return None

    if isinstance(output, (str, os.PathLike)):
        f = await loop.run_in_executor(None, open, output, "wb")

        async def write_file(chunk: bytes | bytearray) -> None:
            await loop.run_in_executor(None, f.write, chunk)

        async def close_file() -> None:
            await loop.run_in_executor(None, f.close)

        return write_file, close_file
    if hasattr(output, "write"):
        write = output.write
        if inspect.iscoroutinefunction(write):
            return write, nothing

        async def write_sync(chunk: bytes | bytearray) -> None:
            await loop.run_in_executor(None, write, chunk)

        return write_sync, nothing
    if callable(output):
        async def call(chunk: bytes | bytearray) -> None:
            result = output(chunk)
            if inspect.isawaitable(result):
                await result

        return call, nothing
    raise TypeError(
        "output must be a path, a file-like object or a coroutine function, "
        f"got {type(output).__name__}")


# -- copy_from_query arguments --------------------------------------------------------

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*)?\$")


def placeholder_spans(query: str) -> list[tuple[int, int, int]]:
    """Positions of ``$n`` placeholders outside literals, identifiers, comments.

    :return: ``(start, end, n)`` for each placeholder, in order.
    """
    spans = []
    i = 0
    n = len(query)
    while i < n:
        c = query[i]
        if c == "'" or c == '"':
            # '...' and "..." with doubled quotes; E'...' escapes handled by
            # skipping backslash-escaped characters inside E-strings.
            escaped = c == "'" and i > 0 and query[i - 1] in "eE" and (
                i < 2 or not (query[i - 2].isalnum() or query[i - 2] == "_"))
            j = i + 1
            while j < n:
                if escaped and query[j] == "\\":
                    j += 2
                    continue
                if query[j] == c:
                    if j + 1 < n and query[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif c == "-" and query.startswith("--", i):
            j = query.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and query.startswith("/*", i):
            depth = 1
            j = i + 2
            while j < n and depth:
                if query.startswith("/*", j):
                    depth += 1
                    j += 2
                elif query.startswith("*/", j):
                    depth -= 1
                    j += 2
                else:
                    j += 1
            i = j
        elif c == "$":
            m = re.match(r"\$(\d+)", query[i:])
            prev_ident = i > 0 and (query[i - 1].isalnum() or query[i - 1] in "_$")
            if m and not prev_ident:
                spans.append((i, i + len(m.group(0)), int(m.group(1))))
                i += len(m.group(0))
                continue
            tag = _DOLLAR_TAG.match(query, i)
            if tag and not prev_ident:
                end = query.find(tag.group(0), tag.end())
                i = n if end < 0 else end + len(tag.group(0))
            else:
                i += 1
        else:
            i += 1
    return spans


async def interpolate_args(con: Any, query: str, args: tuple[Any, ...]) -> str:
    """Replace the ``$n`` of *query* with literals the server quoted."""
    stmt = await con.prepare(query)
    types = stmt.get_parameters()
    if len(types) != len(args):
        from .exceptions import InterfaceError

        raise InterfaceError(
            f"the server expects {len(types)} arguments for this query, {len(args)} were passed")
    cols = ", ".join(
        f"quote_literal(${i + 1}::{_type_sql(t)}::text) || '::' || {quote_literal(_type_sql(t))}"
        for i, t in enumerate(types))
    literals = await con.fetchrow(f"SELECT {cols}", *args) if types else ()
    pieces = []
    last = 0
    for start, end, num in placeholder_spans(query):
        if not 1 <= num <= len(args):
            raise ValueError(f"placeholder ${num} has no argument")
        value = literals[num - 1]
        pieces.append(query[last:start])
        null = f"NULL::{_type_sql(types[num - 1])}"
        pieces.append(null if value is None else f"({value})")
        last = end
    pieces.append(query[last:])
    return "".join(pieces)


def _type_sql(t: Any) -> str:
    # Type names of arrays read "int4[]"; the catalog name is "_int4".
    name = t.name
    if name.endswith("[]"):
        name = "_" + name[:-2]
    quoted = quote_ident(name)
    return f"{quote_ident(t.schema)}.{quoted}" if t.schema else quoted
