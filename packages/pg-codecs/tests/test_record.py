"""Record and RecordDescriptor: behaviour matches asyncpg's Record."""

from __future__ import annotations

import copy
import gc
import pickle
import sys
import weakref

import pytest

from pg_codecs import Record, RecordDescriptor


def rec(names, values, cls=None):
    return RecordDescriptor(names).make_record(values, cls)


# -- access ------------------------------------------------------------------------------


def test_index_and_name_access():
    r = rec(["id", "name"], [1, "x"])
    assert r[0] == 1 and r[1] == "x"
    assert r[-1] == "x" and r[-2] == 1
    assert r["id"] == 1 and r["name"] == "x"
    assert r[True] == "x"  # bool is an index, as for tuples
    assert len(r) == 2
    assert list(r) == [1, "x"]


@pytest.mark.parametrize("index", [2, -3, 100, -(2**62)])
def test_index_out_of_range(index):
    r = rec(["a", "b"], [1, 2])
    with pytest.raises(IndexError, match="record index out of range"):
        r[index]


def test_huge_index_is_index_error():
    with pytest.raises(IndexError):
        rec(["a"], [1])[2**100]


@pytest.mark.parametrize(
    "sl",
    [
        slice(1, 3),
        slice(None),
        slice(None, None, -1),
        slice(5, 10),
        slice(0, 4, 2),
        slice(-2, None),
    ],
)
def test_slices_are_tuples(sl):
    values = [1, "a", None, 2.5]
    r = rec(["a", "b", "c", "d"], values)
    assert r[sl] == tuple(values)[sl]
    assert type(r[sl]) is tuple


def test_missing_name_is_key_error():
    r = rec(["a"], [1])
    with pytest.raises(KeyError) as info:
        r["b"]
    assert info.value.args == ("b",)
    with pytest.raises(KeyError):
        r[[1]]  # unhashable: not a column name, as in asyncpg
    with pytest.raises(KeyError):
        r[1.0]


def test_get():
    r = rec(["a", "b"], [1, None])
    assert r.get("a") == 1
    assert r.get("b", 5) is None
    assert r.get("zz") is None
    assert r.get("zz", 7) == 7
    assert r.get(0) is None  # names only
    assert r.get([1], "d") == "d"
    with pytest.raises(TypeError):
        r.get()
    with pytest.raises(TypeError):
        r.get("a", default=1)  # positional only, as in asyncpg


def test_keys_values_items_are_iterators():
    r = rec(["a", "b"], [1, 2])
    keys, values, items = r.keys(), r.values(), r.items()
    for it in (keys, values, items):
        assert iter(it) is it
    assert list(keys) == ["a", "b"]
    assert values.__length_hint__() == 2
    assert list(values) == [1, 2]
    assert values.__length_hint__() == 0
    assert list(items) == [("a", 1), ("b", 2)]
    assert list(items) == []
    assert dict(r.items()) == {"a": 1, "b": 2}
    it = iter(r)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(StopIteration):
        next(it)


def test_contains_looks_at_names():
    r = rec(["a", "b"], [1, 2])
    assert "a" in r
    assert 1 not in r
    assert "c" not in r


def test_duplicate_names_last_wins():
    r = rec(["x", "x", "y"], [1, 2, 3])
    assert r["x"] == 2
    assert list(r.keys()) == ["x", "x", "y"]
    assert list(r.items()) == [("x", 1), ("x", 2), ("y", 3)]
    assert repr(r) == "<Record x=1 x=2 y=3>"


@pytest.mark.parametrize(
    "name",
    ["", "__class__", "keys", "get", "a b", "x); DROP TABLE t; --", "é", "__init__", "0", "self"],
)
def test_arbitrary_names(name):
    r = rec([name, "other"], ["v", 2])
    assert r[name] == "v"
    assert r.get(name) == "v"
    assert name in r
    assert repr(r) == f"<Record {name}='v' other=2>"
    assert type(r) is Record  # no per-name classes


def test_column_names_must_be_str():
    with pytest.raises(TypeError):
        RecordDescriptor([b"a"])


# -- comparisons ---------------------------------------------------------------------------


def test_equality_with_tuples_and_records():
    a = rec(["a", "b"], [1, "x"])
    assert a == (1, "x") and (1, "x") == a
    assert a == rec(["p", "q"], [1, "x"])  # names do not matter
    assert a != (1, "y") and a != (1,) and a != [1, "x"]
    assert not (a == [1, "x"])
    assert a != rec(["a"], [1])


def test_ordering_like_tuples():
    a, b = rec(["a"], [1]), rec(["a"], [2])
    assert a < b and a <= b and b > a and b >= a
    assert a < (1, 0) and (0,) < a
    assert sorted([b, a]) == [a, b]
    with pytest.raises(TypeError):
        assert a < [1]


def test_hash_is_tuple_hash():
    r = rec(["a", "b"], [1, "x"])
    assert hash(r) == hash((1, "x"))
    assert {r: 1}[(1, "x")] == 1
    with pytest.raises(TypeError):
        hash(rec(["a"], [[1]]))


# -- repr ---------------------------------------------------------------------------------


def test_repr():
    assert repr(rec(["id", "name"], [1, "x"])) == "<Record id=1 name='x'>"
    assert repr(rec([], [])) == "<Record>"
    assert str(rec(["a"], [None])) == "<Record a=None>"


def test_repr_recursive():
    inner = [1]
    r = rec(["a"], [inner])
    inner.append(r)
    assert repr(r) == "<Record a=[1, <Record ...>]>"
    inner.clear()


def test_repr_of_subclass_uses_its_name():
    class MyRow(Record):
        pass

    assert repr(rec(["a"], [1], MyRow)) == "<MyRow a=1>"
    assert repr(rec([], [], MyRow)) == "<MyRow>"


# -- construction, subclasses, pickling ----------------------------------------------------


def test_cannot_instantiate_record():
    with pytest.raises(TypeError, match=r"cannot create 'pg_codecs\._record\.Record' instances"):
        Record()


def test_subclass():
    class MyRow(Record):
        def total(self):
            return sum(self)

    r = rec(["a", "b"], [1, 2], MyRow)
    assert type(r) is MyRow and isinstance(r, Record)
    assert r.total() == 3 and r["b"] == 2
    r.extra = "ok"  # a plain Python subclass has a __dict__
    assert r.extra == "ok"
    empty = MyRow()  # instantiated directly: an empty record, as in asyncpg
    assert len(empty) == 0 and list(empty.keys()) == [] and repr(empty) == "<MyRow>"


def test_subclass_without_dict():
    class Slim(Record):
        __slots__ = ()

    r = rec(["a"], [1], Slim)
    assert type(r) is Slim and r["a"] == 1
    with pytest.raises(AttributeError):
        r.extra = 1


def test_subclass_cannot_add_slots():
    with pytest.raises(TypeError):

        class Bad(Record):
            __slots__ = ("x",)


def test_record_class_checks():
    d = RecordDescriptor(["a"])
    with pytest.raises(TypeError):
        d.make_record([1], tuple)
    with pytest.raises(TypeError):
        d.make_record([1], object)
    with pytest.raises(ValueError):
        d.make_record([1, 2])


def test_not_picklable_or_copyable():
    r = rec(["a"], [1])
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(r, proto)
    with pytest.raises(TypeError):
        copy.copy(r)
    with pytest.raises(TypeError):
        copy.deepcopy(r)


def test_not_a_tuple_or_sequence_type():
    r = rec(["a"], [1])
    assert not isinstance(r, tuple)
    with pytest.raises(TypeError):
        r + r


def test_descriptor():
    d = RecordDescriptor(["a", "b", "a"])
    assert d.names == ("a", "b", "a") and len(d) == 3
    assert d.position("a") == 2
    with pytest.raises(KeyError):
        d.position("c")
    assert "RecordDescriptor" in repr(d)


# -- memory ----------------------------------------------------------------------------------


def test_atomic_records_are_not_gc_tracked():
    assert not gc.is_tracked(rec(["a", "b"], [1, "x"]))
    assert not gc.is_tracked(rec(["a"], [rec(["b"], [1])]))
    assert gc.is_tracked(rec(["a"], [[1]]))
    assert gc.is_tracked(rec(["a"], [{}]))


def test_cycles_are_collected():
    class Marker:
        pass

    m = Marker()
    ref = weakref.ref(m)
    holder = [m]
    r = rec(["a"], [holder])
    holder.append(r)  # holder -> r -> holder
    del m, holder, r
    gc.collect()
    assert ref() is None


def test_subclass_instance_cycles_are_collected():
    class MyRow(Record):
        pass

    class Marker:
        pass

    m = Marker()
    ref = weakref.ref(m)
    r = rec(["a"], [m], MyRow)
    r.me = r
    del m, r
    gc.collect()
    assert ref() is None


def test_values_are_released():
    value = object()
    before = sys.getrefcount(value)
    records = [rec(["a", "b"], [value, value]) for _ in range(100)]
    assert sys.getrefcount(value) == before + 200
    del records
    assert sys.getrefcount(value) == before


def test_sizeof_counts_values():
    assert sys.getsizeof(rec(["a", "b"], [1, 2])) - sys.getsizeof(rec(["a"], [1])) == 8


# -- asyncpg as the oracle -------------------------------------------------------------------


def _asyncpg_record(names, values):
    # asyncpg's test helper; its mapping cannot express duplicate names.
    protocol = pytest.importorskip("asyncpg.protocol.protocol")
    return protocol._create_record(
        {n: i for i, n in enumerate(names)} if names else None, tuple(values)
    )


@pytest.mark.parametrize(
    ("names", "values"),
    [
        (["id", "name"], [1, "x"]),
        (["", "x y"], [None, 2.5]),
        (["a"], [[1, 2]]),
    ],
)
def test_same_as_asyncpg(names, values):
    ours = rec(names, values)
    theirs = _asyncpg_record(names, values)
    assert repr(ours) == repr(theirs)
    assert tuple(ours) == tuple(theirs)
    assert list(ours.keys()) == list(theirs.keys())
    assert list(ours.items()) == list(theirs.items())
    for key in [*names, "nope", 0, -1, 5, slice(None, None, -1), slice(1, None)]:
        try:
            expected = ("ok", theirs[key])
        except Exception as e:
            expected = ("err", type(e))
        try:
            got = ("ok", ours[key])
        except Exception as e:
            got = ("err", type(e))
        assert got == expected, key
        if not isinstance(key, slice):
            assert ours.get(key, "dflt") == theirs.get(key, "dflt")
            assert (key in ours) == (key in theirs)
    assert (ours == tuple(values)) == (theirs == tuple(values))
    try:
        expected_hash = hash(theirs)
    except TypeError:
        with pytest.raises(TypeError):
            hash(ours)
    else:
        assert hash(ours) == expected_hash
