"""Values in PostgreSQL's text format, both ways, for every built-in type.

The client speaks binary wherever a type has a binary codec. The text format
is used for types without one (money, macaddr, tsvector, ... and arrays of
them) and whenever a program installs a ``format='text'`` codec, which then
sees the server's text output and sends text input. For each type, values
made by hypothesis go out as text through such a codec and come back as
text, and must equal what asyncpg returns for the same query with the same
codec.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg_client

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# type name -> strategy of Python values whose str() is valid input text.
TYPES: dict[str, Any] = {
    "int2": st.integers(-32768, 32767),
    "int4": st.integers(-2**31, 2**31 - 1),
    "int8": st.integers(-2**63, 2**63 - 1),
    "float8": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "numeric": st.decimals(allow_nan=False, allow_infinity=False, places=4,
                           min_value=decimal.Decimal("-1e20"), max_value=decimal.Decimal("1e20")),
    "bool": st.booleans(),
    "text": st.text(st.characters(blacklist_characters="\x00",
                                  blacklist_categories=("Cs",)), max_size=40),
    "date": st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    "timestamp": st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1)),
    "uuid": st.uuids(),
    "inet": st.ip_addresses(),
    "jsonb": st.integers().map(lambda i: f'{{"k": {i}}}'),
    "money": st.integers(-10**8, 10**8).map(lambda c: f"{c / 100:.2f}"),
    "macaddr": st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b)),
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.date, uuid.UUID)):
        return str(value)
    return str(value)


@pytest.fixture(scope="module")
async def clients(cluster: Any) -> Any:
    """A pg_client and an asyncpg connection with text codecs on every type above."""
    con = await pg_client.connect(cluster.dsn())
    acon = await asyncpg.connect(cluster.dsn())
    try:
        for typ in TYPES:
            for c in (con, acon):
                await c.set_type_codec(typ, schema="pg_catalog", encoder=str, decoder=str,
                                       format="text")
        yield con, acon
    finally:
        await con.close()
        await acon.close()


@pytest.mark.parametrize("typ", sorted(TYPES))
@SETTINGS
@given(data=st.data())
async def test_text_codec_round_trip(clients: Any, typ: str, data: st.DataObject) -> None:
    con, acon = clients
    text = _text(data.draw(TYPES[typ]))
    query = f"SELECT $1::{typ}, ARRAY[$1::{typ}, NULL]"
    ours = await con.fetchrow(query, text)
    theirs = await acon.fetchrow(query, text)
    assert tuple(ours) == tuple(theirs)
    assert isinstance(ours[0], str)


@pytest.mark.parametrize("typ", ["money", "macaddr", "tsvector"])
async def test_arrays_of_text_only_types(clients: Any, typ: str) -> None:
    """Types without binary I/O travel as text, arrays of them too."""
    con, acon = clients
    values = {"money": ["1.50", "-2.25"], "macaddr": ["08:00:2b:01:02:03"],
              "tsvector": ["fat cat", "a:1 b:2"]}[typ]
    query = f"SELECT $1::{typ}[], ARRAY[NULL::{typ}]"
    ours = await con.fetchrow(query, values)
    theirs = await acon.fetchrow(query, values)
    assert tuple(ours) == tuple(theirs)
