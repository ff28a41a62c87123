"""Learning about data types the client has no built-in codec for.

When a statement's parameters or result columns have types the codec
registry does not know (enums, composites, domains, ranges, multiranges,
arrays of them, extension types), one catalog query fetches each of them and,
recursively, every type they are made of. The answers are cached per
connection (``Connection.reload_schema_state()`` forgets them).

The query takes the OIDs as one ``oid[]`` parameter (never interpolated)
and uses only built-in types in its own parameters and results, so running
it never needs introspection itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .exceptions import InterfaceError

__all__ = ("TypeInfo", "fetch_types", "type_by_name")


class TypeInfo(NamedTuple):
    """What pg_catalog says about one type (one row of the query below)."""

    oid: int
    schema: str
    name: str
    kind: str            # pg_type.typtype: b, c, d, e, r, m, p
    category: str        # pg_type.typcategory (A for arrays)
    elemtype: int        # array element type, or 0
    elemdelim: str       # text array delimiter
    basetype: int        # domain base type, or 0
    range_subtype: int   # range (or multirange) element type, or 0
    multirange_range: int  # the range type of a multirange, or 0
    attrtypoids: list[int] | None   # composite attribute types
    attrnames: list[str] | None     # composite attribute names
    has_binary: bool     # typsend and typreceive exist


def _types_query(with_multirange: bool) -> str:
    multirange_deps = (
        "UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngmultitypid = w.oid"
        if with_multirange else "")
    multirange_col = "COALESCE(mr.rngtypid, 0::oid)" if with_multirange else "0::oid"
    subtype_col = ("COALESCE(r.rngsubtype, mr.rngsubtype, 0::oid)" if with_multirange
                   else "COALESCE(r.rngsubtype, 0::oid)")
    multirange_join = (
        "LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid = t.oid"
        if with_multirange else "")
    return f"""
WITH RECURSIVE wanted(oid) AS (
    SELECT unnest($1::oid[])
  UNION
    SELECT d.dep FROM wanted w, LATERAL (
        SELECT t.typelem AS dep FROM pg_catalog.pg_type t
            WHERE t.oid = w.oid AND t.typelem <> 0 AND t.typcategory = 'A'
        UNION ALL SELECT t.typbasetype FROM pg_catalog.pg_type t
            WHERE t.oid = w.oid AND t.typbasetype <> 0
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = w.oid
        {multirange_deps}
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_type t
            JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid
            WHERE t.oid = w.oid AND t.typrelid <> 0 AND a.attnum > 0 AND NOT a.attisdropped
    ) d
)
SELECT
    t.oid,
    n.nspname::text,
    t.typname::text,
    t.typtype::text,
    t.typcategory::text,
    CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0::oid END,
    COALESCE((SELECT e.typdelim FROM pg_catalog.pg_type e WHERE e.oid = t.typelem),
             t.typdelim)::text,
    t.typbasetype,
    {subtype_col},
    {multirange_col},
    CASE WHEN t.typrelid <> 0 THEN ARRAY(
        SELECT a.atttypid FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum) END,
    CASE WHEN t.typrelid <> 0 THEN ARRAY(
        SELECT a.attname::text FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum) END,
    (t.typsend <> 0 AND t.typreceive <> 0)
FROM wanted w
JOIN pg_catalog.pg_type t ON t.oid = w.oid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
{multirange_join}
"""


async def _run(con: Any, query: str, args: tuple[Any, ...], deadline: float | None) -> list[Any]:
    # Runs inside the caller's operation (the connection is already ours).
    stmt = await con._get_statement(query, deadline, ignore_custom_codec=True)
    op = await con._bind_execute(stmt, args, 0, deadline)
    return op.rows


async def fetch_types(con: Any, oids: set[int], deadline: float | None) -> list[TypeInfo]:
    """TypeInfo for *oids* and every type they depend on."""
    with_multirange = con.get_server_version() >= (14, 0)
    rows = await _run(con, _types_query(with_multirange), (sorted(oids),), deadline)
    return [TypeInfo(*row) for row in rows]


async def type_by_name(con: Any, typename: str, schema: str) -> TypeInfo:
    """TypeInfo of the type *schema.typename* (for set_type_codec and friends)."""
    if not isinstance(typename, str) or not isinstance(schema, str):
        raise InterfaceError("typename and schema must be str")
    async with con._operation(None) as deadline:
        rows = await _run(
            con,
            "SELECT t.oid FROM pg_catalog.pg_type t "
            "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
            "WHERE t.typname = $1 AND n.nspname = $2",
            (typename, schema), deadline)
        if not rows:
            raise ValueError(f"unknown type: {schema}.{typename}")
        oid = rows[0][0]
        infos = await fetch_types(con, {oid}, deadline)
    con._codecs.add_types(infos)
    return next(i for i in infos if i.oid == oid)
