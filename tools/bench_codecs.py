"""Micro benchmark of pg-codecs' row decoding, with asyncpg's figures beside it.

Decodes, in this process and without any I/O:

* 1,000,000 int4 values as 1,000,000 one-column rows (Records, and tuples);
* 1,000,000 int4 values as one int4[] value;
* 100,000 rows of 10 mixed columns (int4, int8, text, bool, float8, bytea,
  NULL, int2, text, float4), and the same plus numeric, timestamptz and uuid.

Rows are fed the way pg-wire feeds them: DataRow payloads, one C-level
``decode_row()`` call each (``RowDecoder.decode_many``). Times are the best
of several runs, garbage collection left on (as in an application).

With ``--asyncpg`` the same result sets are also fetched by asyncpg from a
fake server (a subprocess on 127.0.0.1 that answers every query with the
prepared bytes), so asyncpg's figure includes its protocol parsing: an upper
bound of its decoding cost, to compare with ours plus pg-wire's framing.

Usage::

    PYTHONPATH=packages/pg-codecs/src python tools/bench_codecs.py [--asyncpg] [--runs 5]
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import gc
import multiprocessing
import socket
import struct
import time
import uuid

import pg_codecs
from pg_codecs import oids as o

N_SCALAR = 1_000_000
N_MIXED = 100_000

MIXED_OIDS = [
    o.INT4OID,
    o.INT8OID,
    o.TEXTOID,
    o.BOOLOID,
    o.FLOAT8OID,
    o.BYTEAOID,
    o.INT4OID,
    o.INT2OID,
    o.TEXTOID,
    o.FLOAT4OID,
]
EXTRA_OIDS = [o.NUMERICOID, o.TIMESTAMPTZOID, o.UUIDOID]


def _mixed_values(i, extra):
    row = [
        i,
        i * 1000003,
        f"name-{i}",
        i % 2 == 0,
        i / 7,
        b"\x00\x01\x02\x03" * 4,
        None,
        i % 30000,
        "some longer text value " * 2,
        1.5,
    ]
    if extra:
        row += [
            decimal.Decimal(i) / 100,
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(seconds=i),
            uuid.UUID(int=i),
        ]
    return row


def _payload(reg, oids, values):
    out = [struct.pack("!h", len(oids))]
    for oid, v in zip(oids, values, strict=True):
        data = reg.encode(oid, v)
        out.append(struct.pack("!i", -1) if data is None else struct.pack("!i", len(data)) + data)
    return b"".join(out)


def _framed(payloads):
    return b"".join(struct.pack("!i", len(p)) + p for p in payloads)


def _best(fn, runs):
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        del result
    return best


def _report(name, seconds, rows, values):
    print(
        f"{name:<44} {seconds * 1e9 / values:8.1f} ns/value {rows / seconds / 1e6:8.3f} M rows/s"
        f"  ({seconds * 1000:.1f} ms)"
    )


def build_cases(reg):
    cases = []
    one = _framed([struct.pack("!hii", 1, 4, i) for i in range(N_SCALAR)])
    cases.append(
        ("int4 x 1M rows -> Record", [o.INT4OID], ["n"], pg_codecs.Record, one, N_SCALAR, N_SCALAR)
    )
    cases.append(("int4 x 1M rows -> tuple", [o.INT4OID], ["n"], None, one, N_SCALAR, N_SCALAR))
    arr = reg.encode(o.INT4ARRAYOID, list(range(N_SCALAR)))
    cases.append(
        (
            "int4[1M] x 1 row",
            [o.INT4ARRAYOID],
            ["a"],
            pg_codecs.Record,
            _framed([struct.pack("!hi", 1, len(arr)) + arr]),
            1,
            N_SCALAR,
        )
    )
    mixed = _framed([_payload(reg, MIXED_OIDS, _mixed_values(i, False)) for i in range(N_MIXED)])
    cases.append(
        (
            "10 mixed cols x 100k rows",
            MIXED_OIDS,
            [f"c{i}" for i in range(10)],
            pg_codecs.Record,
            mixed,
            N_MIXED,
            N_MIXED * 10,
        )
    )
    oids13 = MIXED_OIDS + EXTRA_OIDS
    mixed13 = _framed([_payload(reg, oids13, _mixed_values(i, True)) for i in range(N_MIXED)])
    cases.append(
        (
            "13 cols (+numeric,tstz,uuid) x 100k rows",
            oids13,
            [f"c{i}" for i in range(13)],
            pg_codecs.Record,
            mixed13,
            N_MIXED,
            N_MIXED * 13,
        )
    )
    return cases


# -- asyncpg against a fake server ------------------------------------------------------------


def _msg(tag, body=b""):
    return tag + struct.pack("!i", len(body) + 4) + body


def _row_description(oids, names):
    body = struct.pack("!h", len(oids))
    for oid, name in zip(oids, names, strict=True):
        body += name.encode() + b"\0" + struct.pack("!ihihih", 0, 0, oid, -1, -1, 1)
    return _msg(b"T", body)


def _fake_server(sock, oids, names, framed, nrows):
    """Answer a startup and any number of prepare/execute rounds, forever."""
    rows = bytearray()
    view = memoryview(framed)
    pos = 0
    while pos < len(view):
        (n,) = struct.unpack_from("!i", view, pos)
        rows += _msg(b"D", bytes(view[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    rows = bytes(rows)
    conn, _ = sock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""

    def need(k):
        nonlocal buf
        while len(buf) < k:
            chunk = conn.recv(65536)
            if not chunk:
                raise SystemExit(0)
            buf += chunk

    need(4)
    (n,) = struct.unpack("!i", buf[:4])
    need(n)
    buf = buf[n:]
    params = b"".join(
        _msg(b"S", k + b"\0" + v + b"\0")
        for k, v in [
            (b"server_version", b"18.0"),
            (b"client_encoding", b"UTF8"),
            (b"DateStyle", b"ISO, MDY"),
            (b"integer_datetimes", b"on"),
            (b"standard_conforming_strings", b"on"),
            (b"TimeZone", b"UTC"),
        ]
    )
    conn.sendall(
        _msg(b"R", struct.pack("!i", 0))
        + params
        + _msg(b"K", struct.pack("!ii", 1, 2))
        + _msg(b"Z", b"I")
    )
    while True:
        need(5)
        tag = buf[:1]
        (n,) = struct.unpack("!i", buf[1:5])
        need(1 + n)
        buf = buf[1 + n :]
        if tag == b"P":
            conn.sendall(_msg(b"1"))
        elif tag == b"D":
            conn.sendall(_msg(b"t", struct.pack("!h", 0)) + _row_description(oids, names))
        elif tag == b"B":
            conn.sendall(_msg(b"2"))
        elif tag == b"E":
            conn.sendall(rows + _msg(b"C", f"SELECT {nrows}\0".encode()))
        elif tag == b"C":
            conn.sendall(_msg(b"3"))
        elif tag == b"S":
            conn.sendall(_msg(b"Z", b"I"))
        elif tag == b"X":
            return


def _serve(port_queue, oids, names, framed, nrows):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port_queue.put(sock.getsockname()[1])
    _fake_server(sock, oids, names, framed, nrows)


def bench_asyncpg(case, runs, gc_enabled=True):
    import asyncio

    import asyncpg

    _name, oids, names, _cls, framed, nrows, _nvalues = case
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    proc = multiprocessing.Process(
        target=_serve, args=(queue, oids, names, framed, nrows), daemon=True
    )
    proc.start()
    port = queue.get(timeout=60)

    async def run():
        con = await asyncpg.connect(host="127.0.0.1", port=port, user="bench", ssl=False)
        try:
            await con.fetch("SELECT bench")  # prepare once (and warm up)
            best = float("inf")
            for _ in range(runs):
                gc.collect()
                if not gc_enabled:
                    gc.disable()
                try:
                    start = time.perf_counter()
                    rows = await con.fetch("SELECT bench")
                    best = min(best, time.perf_counter() - start)
                finally:
                    gc.enable()
                assert len(rows) == nrows
                del rows
            return best
        finally:
            await con.close()

    try:
        return asyncio.run(run())
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--asyncpg", action="store_true", help="also time asyncpg (fake server)")
    args = parser.parse_args(argv)
    reg = pg_codecs.CodecRegistry()
    cases = build_cases(reg)
    print("pg-codecs, RowDecoder.decode_many (decode only, no framing):")
    for name, oids, names, cls, framed, nrows, nvalues in cases:
        decoder = reg.plan_row_decoder(oids, names, cls)
        run = decoder.decode_many
        _report(name, _best(lambda run=run, framed=framed: run(framed), args.runs), nrows, nvalues)
    if args.asyncpg:
        print("asyncpg 'fetch' from a fake server (framing + decoding + Records):")
        for case in cases:
            if case[3] is None:
                continue
            if any(oid in o.ARRAY_ELEMENT_TYPES for oid in case[1]):
                # asyncpg would look int4[] up in the catalog first, which
                # the fake server cannot answer.
                continue
            _report(case[0], bench_asyncpg(case, args.runs), case[5], case[6])
            _report(case[0] + " (gc off)", bench_asyncpg(case, args.runs, False), case[5], case[6])


if __name__ == "__main__":
    main()
