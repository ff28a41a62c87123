# cython: language_level=3, freethreading_compatible=True
"""Record: the read-only row object of query results.

Behaves like asyncpg's Record: indexing by position, negative position, slice
(which gives a tuple) or column name; ``get``, ``keys``, ``values``,
``items``; ``in`` looks at the column names; equality, ordering and hash are
those of the tuple of its values (so a Record equals a plain tuple); it cannot
be created from Python (only a subclass can, empty) and cannot be pickled.

Knows nothing about wire formats or codecs.

How it works
------------

Record is a Cython class turned into a variable-sized type when this module
is imported (``tp_itemsize`` is set to one pointer), so that a record is a
single allocation: the struct declared in _record.pxd, then the values. The
first field of that struct lies where CPython keeps ``ob_size``, so
``Py_SIZE(record)`` is the number of values; ``_check_layout()`` verifies
that at import. ``tp_dealloc`` and ``tp_traverse`` are replaced by functions
that know about the values.

A RecordDescriptor (the column names and a name -> position dict) is built
once per result set and shared by all its records.

A record whose values are all atomic (ints, strings, ...) cannot be part of
a reference cycle, so ``record_done`` leaves it untracked by the garbage
collector, as CPython does for such tuples. That keeps large results from
slowing down every collection.
"""

cimport cython
from cpython.number cimport PyIndex_Check, PyNumber_AsSsize_t
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE, PyObject_Hash
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.slice cimport PySlice_Check, PySlice_GetIndicesEx
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM, PyTuple_CheckExact
from libc.string cimport memset


cdef extern from *:
    """
    /* A GC-capable object of a variable-sized type, not yet tracked, with
       ob_size set and the rest of its memory uninitialised. */
    #define __pgrec_gc_new_var(tp, n) \\
        ((PyObject *)PyObject_GC_NewVar(PyVarObject, (tp), (n)))
    """
    PyObject* __pgrec_gc_new_var(PyTypeObject* tp, Py_ssize_t n) except NULL

    ctypedef int (*visitproc)(PyObject*, void*)
    ctypedef int (*traverseproc)(PyObject*, visitproc, void*)
    ctypedef void (*destructor)(PyObject*)
    ctypedef void (*freefunc)(void*)
    ctypedef PyObject* (*allocfunc)(PyTypeObject*, Py_ssize_t) except NULL

    ctypedef struct _PgTypeSlots "PyTypeObject":
        Py_ssize_t tp_basicsize
        Py_ssize_t tp_itemsize
        Py_ssize_t tp_dictoffset
        destructor tp_dealloc
        traverseproc tp_traverse
        freefunc tp_free
        allocfunc tp_alloc

    bint PyObject_IS_GC(object o)
    bint PyObject_GC_IsTracked(object o)
    void PyObject_GC_Track(void* o)
    void PyObject_GC_UnTrack(void* o)
    Py_ssize_t Py_SIZE(object o)
    int Py_ReprEnter(object o) except -1
    void Py_ReprLeave(object o)
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL


# Set by _make_var_sized(); None until then.
cdef RecordDescriptor _EMPTY_DESC


@cython.final
@cython.auto_pickle(False)
cdef class RecordDescriptor:
    """The column names of a result set, shared by all its records.

    :param names: Column names in order. Any strings are allowed, including
        empty and duplicated ones (a name then refers to its last column).
    """

    def __cinit__(self, names=()):
        cdef Py_ssize_t i
        cdef tuple t = tuple(names)
        cdef dict index = {}
        for i in range(len(t)):
            name = t[i]
            if type(name) is not str:
                if not isinstance(name, str):
                    raise TypeError(f"column names must be str, got {type(name).__name__}")
            index[name] = i
        self.names = t
        self.index = index

    def __len__(self):
        return len(self.names)

    def __repr__(self):
        return f"RecordDescriptor({self.names!r})"

    def position(self, str name):
        """Return the position of column *name* (its last one if duplicated).

        :raises KeyError: If there is no such column.
        """
        return self.index[name]

    def make_record(self, values, record_class=None):
        """Build a record from *values* (for tests and Python callers).

        :param values: One value per column.
        :param record_class: Record (the default) or a subclass of it.
        :raises ValueError: If the number of values is not the number of
            columns.
        """
        cdef tuple vals = tuple(values)
        cdef Py_ssize_t i, n = len(vals)
        if record_class is None:
            record_class = Record
        check_record_class(record_class)
        if n != len(self.names):
            raise ValueError(f"expected {len(self.names)} values, got {n}")
        rec = record_new(<type>record_class, self, n)
        for i in range(n):
            record_set_item(rec, i, vals[i])
        record_done(rec)
        return rec


cdef inline _type_short_name(object obj):
    cdef str name = type(obj).__name__
    return name


@cython.no_gc_clear
@cython.auto_pickle(False)
cdef class Record:
    """A row of a query result: values addressable by position or column name.

    Compares and hashes like the tuple of its values. Records are created by
    the row decoder; they cannot be created directly, and cannot be pickled.
    """

    def __cinit__(self, *args, **kwargs):
        if type(self) is Record:
            raise TypeError("cannot create 'pg_codecs._record.Record' instances")
        # A subclass instantiated directly is an empty record.
        self._desc = _EMPTY_DESC

    def __len__(self):
        return Py_SIZE(self)

    def __getitem__(self, key):
        cdef Py_ssize_t n = Py_SIZE(self)
        cdef Py_ssize_t i, start, stop, step, length, cur
        cdef PyObject** items = record_items(self)
        cdef tuple result
        if PyIndex_Check(key):
            i = PyNumber_AsSsize_t(key, IndexError)
            if i < 0:
                i += n
            if i < 0 or i >= n:
                raise IndexError("record index out of range")
            return <object>items[i]
        if PySlice_Check(key):
            PySlice_GetIndicesEx(key, n, &start, &stop, &step, &length)
            result = PyTuple_New(length)
            cur = start
            for i in range(length):
                value = <object>items[cur]
                Py_INCREF(value)
                PyTuple_SET_ITEM(result, i, value)
                cur += step
            return result
        i = _position(self, key)
        if i < 0:
            raise KeyError(key)
        return <object>items[i]

    def get(self, key, default=None, /):
        """Return the value of column *key*, or *default* if there is none.

        Only names are looked up (``get(0)`` is *default* unless a column is
        named 0), as in asyncpg.
        """
        cdef Py_ssize_t i = _position(self, key)
        if i < 0:
            return default
        return <object>record_items(self)[i]

    def keys(self):
        """Return an iterator over the column names."""
        return iter(self._desc.names)

    def values(self):
        """Return an iterator over the values."""
        return RecordIterator.__new__(RecordIterator, self)

    def items(self):
        """Return an iterator over ``(name, value)`` pairs."""
        return RecordItemsIterator.__new__(RecordItemsIterator, self)

    def __iter__(self):
        return RecordIterator.__new__(RecordIterator, self)

    def __contains__(self, key):
        # asyncpg looks at the column names, not at the values.
        return key in self._desc.names

    def __hash__(self):
        return PyObject_Hash(_as_tuple(self))

    def __richcmp__(self, other, int op):
        cdef tuple mine
        if isinstance(other, Record):
            theirs = _as_tuple(<Record>other)
        elif isinstance(other, tuple):
            theirs = other
        else:
            return NotImplemented
        mine = _as_tuple(self)
        if op == 0:
            return mine < theirs
        if op == 1:
            return mine <= theirs
        if op == 2:
            return mine == theirs
        if op == 3:
            return mine != theirs
        if op == 4:
            return mine > theirs
        return mine >= theirs

    def __repr__(self):
        cdef Py_ssize_t i, n = Py_SIZE(self)
        cdef PyObject** items = record_items(self)
        cdef list parts
        cdef tuple names = self._desc.names
        cdef str tname = _type_short_name(self)
        if n == 0:
            return f"<{tname}>"
        if Py_ReprEnter(self) != 0:
            return f"<{tname} ...>"
        try:
            parts = [f"<{tname}"]
            for i in range(n):
                name = names[i] if i < len(names) else "?"
                parts.append(f"{name}={<object>items[i]!r}")
            return " ".join(parts) + ">"
        finally:
            Py_ReprLeave(self)


cdef Py_ssize_t _position(Record rec, object key) except -2:
    # Position of column `key`, or -1 when there is none. Like asyncpg, an
    # unhashable key is simply not a column name.
    cdef PyObject* found
    try:
        found = PyDict_GetItemWithError(rec._desc.index, key)
    except TypeError:
        return -1
    if found is NULL:
        return -1
    cdef Py_ssize_t i = <Py_ssize_t><object>found
    if i >= Py_SIZE(rec):
        return -1
    return i


cdef tuple _as_tuple(Record rec):
    cdef Py_ssize_t i, n = Py_SIZE(rec)
    cdef PyObject** items = record_items(rec)
    cdef tuple result = PyTuple_New(n)
    for i in range(n):
        value = <object>items[i]
        Py_INCREF(value)
        PyTuple_SET_ITEM(result, i, value)
    return result


@cython.final
@cython.auto_pickle(False)
cdef class RecordIterator:
    """Iterator over the values of a Record."""

    cdef Record _rec
    cdef Py_ssize_t _pos

    def __cinit__(self, Record rec):
        self._rec = rec
        self._pos = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef Record rec = self._rec
        if rec is None:
            raise StopIteration
        if self._pos < Py_SIZE(rec):
            value = <object>record_items(rec)[self._pos]
            self._pos += 1
            return value
        self._rec = None
        raise StopIteration

    def __length_hint__(self):
        if self._rec is None:
            return 0
        return Py_SIZE(self._rec) - self._pos


@cython.final
@cython.auto_pickle(False)
cdef class RecordItemsIterator:
    """Iterator over the ``(name, value)`` pairs of a Record."""

    cdef Record _rec
    cdef Py_ssize_t _pos

    def __cinit__(self, Record rec):
        self._rec = rec
        self._pos = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef Record rec = self._rec
        cdef tuple names
        if rec is None:
            raise StopIteration
        names = rec._desc.names
        if self._pos < Py_SIZE(rec) and self._pos < len(names):
            value = <object>record_items(rec)[self._pos]
            name = names[self._pos]
            self._pos += 1
            return (name, value)
        self._rec = None
        raise StopIteration

    def __length_hint__(self):
        if self._rec is None:
            return 0
        return Py_SIZE(self._rec) - self._pos


# -- C-level construction (see _record.pxd) --------------------------------------

cdef inline PyObject** _desc_slot(PyObject* o) noexcept:
    # Where the _desc field lives: right after _ob_size (both pointer-sized;
    # _check_layout() verifies it). Written through this pointer wherever the
    # slot may hold garbage or NULL, which Cython's attribute assignment would
    # try to release.
    return <PyObject**>(<char*>&(<Record>o)._ob_size + sizeof(Py_ssize_t))

cdef object record_new(type cls, RecordDescriptor desc, Py_ssize_t n):
    cdef PyObject* o
    cdef PyObject** items
    cdef Py_ssize_t i
    if (<PyObject*>cls is <PyObject*>Record
            or (<_PgTypeSlots*>cls).tp_dictoffset == 0):
        # Record, or a subclass without __dict__ (``__slots__ = ()``): no
        # memory to clear but ours. Untracked until record_done(); its empty
        # slots are never seen.
        o = __pgrec_gc_new_var(<PyTypeObject*>cls, n)
        Py_INCREF(desc)
        _desc_slot(o)[0] = <PyObject*>desc
        memset(record_items(<object>o), 0, <size_t>n * sizeof(PyObject*))
    else:
        # A subclass: tp_alloc zeroes the object (and its __dict__ slot) and
        # tracks it, so the values start as None in case a garbage collection
        # looks at it before it is filled.
        o = (<_PgTypeSlots*>cls).tp_alloc(<PyTypeObject*>cls, n)
        Py_INCREF(desc)
        _desc_slot(o)[0] = <PyObject*>desc
        items = record_items(<object>o)
        for i in range(n):
            Py_INCREF(None)
            items[i] = <PyObject*>None
    rec = <object>o
    Py_DECREF(rec)   # <object>o took a second reference
    return rec


cdef int record_done(object rec) except -1:
    if not PyObject_GC_IsTracked(rec) and values_need_gc(record_items(rec), Py_SIZE(rec)):
        PyObject_GC_Track(<PyObject*>rec)
    return 0


cdef bint values_need_gc(PyObject** items, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    cdef PyObject* v
    for i in range(n):
        v = items[i]
        if v is not NULL and PyObject_IS_GC(<object>v):
            # Same rule as CPython's tuples: an untracked tuple or record can
            # never become part of a cycle (they are immutable and hold only
            # such values); anything else GC-capable might.
            if ((PyTuple_CheckExact(<object>v) or isinstance(<object>v, Record))
                    and not PyObject_GC_IsTracked(<object>v)):
                continue
            return True
    return False


cdef int check_record_class(object cls) except -1:
    if cls is Record:
        return 0
    if not isinstance(cls, type) or not issubclass(cls, Record):
        raise TypeError(
            f"record_class is expected to be a subclass of pg_codecs.Record, got {cls!r}")
    cdef _PgTypeSlots* tp = <_PgTypeSlots*>cls
    cdef Py_ssize_t extra = tp.tp_basicsize - (<_PgTypeSlots*>Record).tp_basicsize
    # A Python subclass may only add a __dict__, which CPython keeps after the
    # values (negative tp_dictoffset) and counts in tp_basicsize.
    if not (extra == 0 or (extra == sizeof(PyObject*) and tp.tp_dictoffset < 0)):
        raise TypeError(
            f"record_class {cls.__qualname__} adds C-level fields to Record, "
            f"which is not supported")
    return 0


# -- turning Record into a variable-sized type ---------------------------------------

cdef void _record_dealloc(PyObject* o) noexcept:
    cdef Py_ssize_t i = Py_SIZE(<object>o)
    cdef PyObject** items = record_items(<object>o)
    PyObject_GC_UnTrack(o)
    while i > 0:
        i -= 1
        Py_XDECREF(items[i])
        items[i] = NULL
    Py_XDECREF(_desc_slot(o)[0])
    _desc_slot(o)[0] = NULL
    (<_PgTypeSlots*>Py_TYPE(<object>o)).tp_free(o)


cdef int _record_traverse(PyObject* o, visitproc visit, void* arg) noexcept:
    cdef Py_ssize_t i
    cdef PyObject** items = record_items(<object>o)
    cdef PyObject* desc = _desc_slot(o)[0]
    cdef int ret
    if desc is not NULL:
        ret = visit(desc, arg)
        if ret:
            return ret
    for i in range(Py_SIZE(<object>o)):
        if items[i] is not NULL:
            ret = visit(items[i], arg)
            if ret:
                return ret
    return 0


cdef int _make_var_sized() except -1:
    global _EMPTY_DESC
    cdef _PgTypeSlots* tp = <_PgTypeSlots*>Record
    if tp.tp_itemsize == 0:
        tp.tp_itemsize = sizeof(PyObject*)
        tp.tp_dealloc = <destructor>_record_dealloc
        tp.tp_traverse = <traverseproc>_record_traverse
    _EMPTY_DESC = RecordDescriptor(())
    return 0


cdef int _check_layout() except -1:
    # The struct's first field must be where CPython keeps ob_size, or
    # Py_SIZE() would not be the number of values.
    rec = record_new(Record, _EMPTY_DESC, 3)
    for i in range(3):
        record_set_item(rec, i, i)
    if (Py_SIZE(rec) != 3 or (<Record>rec)._ob_size != 3 or rec[2] != 2
            or _desc_slot(<PyObject*>rec)[0] is not <PyObject*>(<Record>rec)._desc):
        raise ImportError("pg_codecs._record: unexpected object layout of Record")
    return 0


_make_var_sized()
_check_layout()
