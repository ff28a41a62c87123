"""Micro benchmark of pg_wire's message reader.

Builds a stream of query results (RowDescription, 1,000 DataRows of three
columns, CommandComplete, ReadyForQuery), feeds it in chunks the way an
asyncio protocol would, and reports:

* messages per second through ``MessageReader.read_message()`` (the
  generic path: one Python call and one ``bytes`` payload per message);
* rows per second through ``MessageReader.read_rows()`` with a RowDecoder
  that does nothing (``NullRowDecoder``, compiled here on the fly, since a
  Cython ``cdef`` method cannot be overridden from Python): the cost of the
  framing loop itself;
* rows per second with pg_wire's ``RawRowDecoder`` (a tuple of ``bytes``
  per row), a realistic lower bound for a decoder that builds objects.

Run::

    cd /work/main && PYTHONPATH=packages/pg-codecs/src:packages/pg-wire/src \\
        python tools/bench_wire.py [--results 50] [--repeat 5]

Needs Cython and a C compiler (for NullRowDecoder); skips that line
without them.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from pg_wire._reader import MessageReader, RawRowDecoder

REPO = Path(__file__).resolve().parent.parent
CODECS_SRC = REPO / "packages" / "pg-codecs" / "src"

NULL_DECODER_PYX = '''
# cython: language_level=3
from pg_codecs._codecs cimport RowDecoder

cdef class NullRowDecoder(RowDecoder):
    """Returns None for every row: measures the reader, not the decoding."""

    def __init__(self):
        pass

    cdef object decode_row(self, const char* data, Py_ssize_t length):
        return None
'''


def _msg(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("!i", len(payload) + 4) + payload


def build_stream(results: int, rows: int) -> tuple[bytes, int, int]:
    """The wire bytes, the number of messages and the number of rows."""
    fields = b"".join(
        name + b"\x00" + struct.pack("!IhIhih", 0, 0, oid, size, -1, fmt)
        for name, oid, size, fmt in ((b"id", 23, 4, 1), (b"name", 25, -1, 0), (b"note", 25, -1, 0))
    )
    parts = [_msg(b"T", struct.pack("!H", 3) + fields)]
    for i in range(rows):
        name = b"user-%06d" % i
        body = struct.pack("!Hi", 3, 4) + struct.pack("!i", i)
        body += struct.pack("!i", len(name)) + name + b"\xff\xff\xff\xff"
        parts.append(_msg(b"D", body))
    parts.append(_msg(b"C", b"SELECT %d\x00" % rows))
    parts.append(_msg(b"Z", b"I"))
    one = b"".join(parts)
    return one * results, (rows + 3) * results, rows * results


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def bench_read_message(chunks: list[bytes]) -> int:
    reader = MessageReader()
    read = reader.read_message
    n = 0
    for chunk in chunks:
        reader.feed(chunk)
        while read() is not None:
            n += 1
    return n


def bench_read_rows(chunks: list[bytes], decoder: object) -> int:
    reader = MessageReader()
    rows: list[object] = []
    n = 0
    for chunk in chunks:
        reader.feed(chunk)
        while True:
            n += reader.read_rows(decoder, rows)  # type: ignore[arg-type]
            rows.clear()
            if reader.read_message() is None:
                break
    return n


def load_null_decoder() -> object | None:
    """Compile NullRowDecoder against pg_codecs' .pxd files (cached by hash)."""
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext
    except ImportError:
        return None
    pxd = (CODECS_SRC / "pg_codecs" / "_codecs.pxd").read_bytes()
    digest = hashlib.sha256(NULL_DECODER_PYX.encode() + pxd).hexdigest()[:12]
    workdir = Path(tempfile.gettempdir()) / f"pg_wire_bench_{digest}"
    workdir.mkdir(exist_ok=True)
    name = "_bench_null_decoder"
    pyx = workdir / f"{name}.pyx"
    pyx.write_text(NULL_DECODER_PYX)
    built = list(workdir.glob(f"{name}.*.so"))
    if not built:
        ext = Extension(name, [str(pyx)], include_dirs=[str(CODECS_SRC)])
        modules = cythonize(  # type: ignore[no-untyped-call]
            [ext], include_path=[str(CODECS_SRC)], quiet=True
        )
        dist = Distribution({"name": name, "ext_modules": modules})
        cmd = build_ext(dist)
        cmd.inplace = True
        cmd.build_temp = str(workdir / "build")
        cmd.ensure_finalized()
        cwd = os.getcwd()
        os.chdir(workdir)
        try:
            cmd.run()
        finally:
            os.chdir(cwd)
        built = list(workdir.glob(f"{name}.*.so"))
    spec = importlib.util.spec_from_file_location(name, built[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    decoder: object = module.NullRowDecoder()
    return decoder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=int, default=50, help="query results in the stream")
    parser.add_argument("--rows", type=int, default=1000, help="rows per result")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best is kept)")
    args = parser.parse_args()

    data, n_messages, n_rows = build_stream(args.results, args.rows)
    print(
        f"stream: {args.results} results x {args.rows} rows x 3 columns; "
        f"{n_messages:,} messages, {len(data) / 1e6:.2f} MB"
    )
    print(f"python {sys.version.split()[0]}; best of {args.repeat} runs\n")

    null_decoder = load_null_decoder()
    raw_decoder = RawRowDecoder()
    for label, size in (("one chunk", len(data)), ("64 KiB chunks", 65536),
                        ("1460-byte chunks", 1460)):  # fmt: skip
        chunks = chunks_of(data, size)
        print(f"fed as {label} ({len(chunks):,} feeds):")
        elapsed, count = best_of(args.repeat, partial(bench_read_message, chunks))
        assert count == n_messages
        print(
            f"  read_message()              {count / elapsed / 1e6:7.2f} M messages/s"
            f"  ({elapsed / count * 1e9:6.1f} ns/message)"
        )
        if null_decoder is not None:
            elapsed, count = best_of(args.repeat, partial(bench_read_rows, chunks, null_decoder))
            assert count == n_rows
            print(
                f"  read_rows(NullRowDecoder)   {count / elapsed / 1e6:7.2f} M rows/s"
                f"      ({elapsed / count * 1e9:6.1f} ns/row)"
            )
        elapsed, count = best_of(args.repeat, partial(bench_read_rows, chunks, raw_decoder))
        assert count == n_rows
        print(
            f"  read_rows(RawRowDecoder)    {count / elapsed / 1e6:7.2f} M rows/s"
            f"      ({elapsed / count * 1e9:6.1f} ns/row)"
        )
    if null_decoder is None:
        print("\n(NullRowDecoder skipped: Cython or a C compiler is missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
