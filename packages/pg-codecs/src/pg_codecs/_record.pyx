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

Such a record does not need the garbage collector's header either (16 bytes
in front of every GC-capable object), so most records of the exact type
Record are allocated without one (``PyObject_Malloc``, not
``PyObject_GC_NewVar``). The type keeps ``Py_TPFLAGS_HAVE_GC`` and gets a
``tp_is_gc`` slot, which CPython consults per object (``PyObject_IS_GC``)
before it touches a header, in the collector as in ``gc.is_tracked`` and
``sys.getsizeof``; for a record without a header it says no, so the
collector never looks at it. It works like this:

* Which records have no header is recorded in their descriptor. Every main
  RecordDescriptor (one per result set) may get a *twin*: a descriptor with
  the same names and index whose ``_headerless`` flag is set. A record
  without a header points at the twin, every other record at the main
  descriptor. ``tp_is_gc`` is true unless the object is an exact Record
  pointing at a twin. Subclass instances (``record_class``) always have a
  header: CPython's ``subtype_dealloc`` reads it.

* ``record_new(Record, desc, n)`` allocates without a header, pointing at
  the twin (created on first use, owned by the main descriptor, which it
  points back to with a borrowed pointer), unless ``desc._rows_need_gc``
  says that the records of this result set have needed the collector
  before.

* ``record_done()`` returns the record to use from then on. When the values
  of a record without a header need the collector (a list from an array
  column, an object from a custom codec), it allocates a record with a
  header, moves the value pointers there (the old record is left empty, and
  freed when the decoder drops it), points it at the main descriptor,
  tracks it and sets ``_rows_need_gc``, so the next rows get a header
  straight away. The move requires the decoder's reference to be the only
  one, which holds because no record is shown to Python before
  ``record_done()``.

* ``tp_dealloc`` reads ``tp_is_gc`` before it releases the descriptor, and
  frees with ``PyObject_GC_Del`` (via ``tp_free``) or ``PyObject_Free``.

* On free-threaded builds the collector's state lives inside the object, so
  there is nothing to save: every record gets the usual allocation and no
  ``tp_is_gc`` slot is installed.

Freelists
---------

A freed exact Record of up to 16 values keeps its memory on a freelist (one
per number of values, with and without a GC header; at most 2,000 records
each), and the next record of that size and kind takes it from there, as
CPython does for tuples and lists. Besides the allocator's work this saves
the collector's attention: CPython starts a collection after every 700 new
objects with a GC header, and each collection walks all the young objects,
so a result of rows holding lists (array columns) would otherwise pay for
a collection every few hundred rows. The next pointer of a list lives in
the ``_desc`` slot. None on free-threaded builds.
"""

cimport cython
from cpython.dict cimport PyDict_Check
from cpython.number cimport PyIndex_Check, PyNumber_AsSsize_t
from cpython.object cimport (
    Py_EQ, Py_GT, Py_LE, Py_LT, Py_NE, PyObject, PyObject_Hash, PyObject_RichCompare,
    PyObject_RichCompareBool, PyTypeObject, Py_TYPE,
)
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_REFCNT, Py_XDECREF
from cpython.sequence cimport PySequence_Fast_ITEMS
from cpython.slice cimport PySlice_Check, PySlice_GetIndicesEx
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.string cimport memcpy, memset


cdef extern from *:
    """
    /* A GC-capable object of a variable-sized type, not yet tracked, with
       ob_size set and the rest of its memory uninitialised. */
    #define __pgrec_gc_new_var(tp, n) \\
        ((PyObject *)PyObject_GC_NewVar(PyVarObject, (tp), (n)))

    /* The same without the garbage collector's header: only for a type whose
       tp_is_gc says so for this object (see "How it works"). */
    static PyObject *__pgrec_plain_new_var(PyTypeObject *tp, Py_ssize_t n) {
        PyObject *op = (PyObject *)PyObject_Malloc(
            (size_t)tp->tp_basicsize + (size_t)n * (size_t)tp->tp_itemsize);
        if (op == NULL)
            return PyErr_NoMemory();
        return (PyObject *)PyObject_InitVar((PyVarObject *)op, tp, n);
    }

    /* Records without a header exist only where the collector keeps its
       state in front of the object: not on free-threaded builds. */
    #ifdef Py_GIL_DISABLED
    #define __PGREC_HEADERLESS 0
    #else
    #define __PGREC_HEADERLESS 1
    #endif

    /* Since 3.11 sys.getsizeof() adds the header by the type
       (_PyType_PreHeaderSize), without asking tp_is_gc. PyGC_Head is not
       public; it has been two words since 3.8. */
    #define __PGREC_SIZEOF_ADDS_HEADER_BY_TYPE (PY_VERSION_HEX >= 0x030B0000)
    #define __PGREC_GC_HEAD_SIZE ((Py_ssize_t)(2 * sizeof(uintptr_t)))

    /* Freelists of exact Records (see "Freelists"): none on free-threaded
       builds, where a global list would need a lock. */
    #ifdef Py_GIL_DISABLED
    #define __PGREC_FREE_MAXSIZE 0
    #else
    #define __PGREC_FREE_MAXSIZE 16
    #endif

    /* The hash of a tuple of these n values, as CPython computes it since
       3.8 (an xxHash-style mix of the values' hashes): a Record hashes like
       the tuple it equals, without building that tuple. _check_hash()
       compares it with tuple hashes at import; if they ever differ, the
       record builds the tuple instead. */
    static Py_hash_t __pgrec_hash_items(PyObject **items, Py_ssize_t n) {
    #if SIZEOF_PY_UHASH_T > 4
        const Py_uhash_t m1 = 11400714785074694791ULL;
        const Py_uhash_t m2 = 14029467366897019727ULL;
        const Py_uhash_t m5 = 2870177450012600261ULL;
        #define __PGREC_ROTATE(x) (((x) << 31) | ((x) >> 33))
    #else
        const Py_uhash_t m1 = 2654435761UL;
        const Py_uhash_t m2 = 2246822519UL;
        const Py_uhash_t m5 = 374761393UL;
        #define __PGREC_ROTATE(x) (((x) << 13) | ((x) >> 19))
    #endif
        Py_uhash_t acc = m5;
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            Py_hash_t h = PyObject_Hash(items[i]);
            if (h == -1)
                return -1;
            acc += (Py_uhash_t)h * m2;
            acc = __PGREC_ROTATE(acc);
            acc *= m1;
        }
        acc += (Py_uhash_t)n ^ (m5 ^ 3527539UL);
        if (acc == (Py_uhash_t)-1)
            return 1546275796;
        return (Py_hash_t)acc;
    }

    #define __pgrec_type(o) ((PyObject *)Py_TYPE(o))
    #define __pgrec_set_size(o, n) Py_SET_SIZE((PyVarObject *)(o), (n))
    """
    PyObject* __pgrec_gc_new_var(PyTypeObject* tp, Py_ssize_t n) except NULL
    PyObject* __pgrec_plain_new_var(PyTypeObject* tp, Py_ssize_t n) except NULL
    bint __PGREC_HEADERLESS
    const Py_ssize_t __PGREC_FREE_MAXSIZE
    void _Py_NewReference(PyObject* o)
    bint __PGREC_SIZEOF_ADDS_HEADER_BY_TYPE
    Py_ssize_t __PGREC_GC_HEAD_SIZE
    PyObject* __pgrec_type(PyObject* o)
    Py_hash_t __pgrec_hash_items(PyObject** items, Py_ssize_t n) except -1
    void __pgrec_set_size(PyObject* o, Py_ssize_t n)
    void __pgrec_incref "Py_INCREF"(PyObject* o)
    void __pgrec_decref "Py_DECREF"(PyObject* o)
    void PyObject_Free(void* p)
    void PyObject_GC_Del(void* p)

    ctypedef int (*visitproc)(PyObject*, void*)
    ctypedef int (*traverseproc)(PyObject*, visitproc, void*)
    ctypedef void (*destructor)(PyObject*)
    ctypedef int (*inquiry)(PyObject*)
    ctypedef void (*freefunc)(void*)
    ctypedef PyObject* (*allocfunc)(PyTypeObject*, Py_ssize_t) except NULL
    ctypedef PyObject* (*iternextfunc)(PyObject*)

    ctypedef struct _PgTypeSlots "PyTypeObject":
        Py_ssize_t tp_basicsize
        Py_ssize_t tp_itemsize
        Py_ssize_t tp_dictoffset
        destructor tp_dealloc
        traverseproc tp_traverse
        freefunc tp_free
        allocfunc tp_alloc
        inquiry tp_is_gc
        iternextfunc tp_iternext

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

    def __dealloc__(self):
        cdef PyObject* twin = self._twin
        self._twin = NULL
        if twin is not NULL and not self._headerless:
            # The twin may outlive us (records point at it): forget us.
            (<RecordDescriptor>twin)._twin = NULL
            __pgrec_decref(twin)

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
        return record_done(rec)


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
        return _values_iter(self)

    def items(self):
        """Return an iterator over ``(name, value)`` pairs."""
        return _items_iter(self)

    def __iter__(self):
        return _values_iter(self)

    def __contains__(self, key):
        # asyncpg looks at the column names, not at the values.
        return key in self._desc.names

    def __hash__(self):
        if _hash_like_tuples:
            return __pgrec_hash_items(record_items(self), Py_SIZE(self))
        return PyObject_Hash(_as_tuple(self))

    def __richcmp__(self, other, int op):
        # As tuples compare: the first pair of values that differ decides,
        # else the lengths do.
        cdef PyObject** theirs
        cdef Py_ssize_t their_len
        if isinstance(other, Record):
            theirs = record_items(other)
            their_len = Py_SIZE(other)
        elif isinstance(other, tuple):
            theirs = PySequence_Fast_ITEMS(other)
            their_len = len(<tuple>other)
        else:
            return NotImplemented
        return _compare_values(record_items(self), Py_SIZE(self), theirs, their_len, op)

    def __sizeof__(self):
        cdef Py_ssize_t size = ((<_PgTypeSlots*>Py_TYPE(self)).tp_basicsize
                                + Py_SIZE(self) * <Py_ssize_t>sizeof(PyObject*))
        if __PGREC_SIZEOF_ADDS_HEADER_BY_TYPE and not _record_is_gc(<PyObject*>self):
            # sys.getsizeof() will add a header this record does not have.
            size -= __PGREC_GC_HEAD_SIZE
        return size

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


cdef object _compare_values(PyObject** mine, Py_ssize_t n, PyObject** theirs,
                            Py_ssize_t m, int op):
    cdef Py_ssize_t i = 0
    while i < n and i < m:
        if mine[i] is not theirs[i] and not PyObject_RichCompareBool(
                <object>mine[i], <object>theirs[i], Py_EQ):
            break
        i += 1
    if i < n and i < m:
        if op == Py_EQ:
            return False
        if op == Py_NE:
            return True
        return PyObject_RichCompare(<object>mine[i], <object>theirs[i], op)
    if op == Py_LT:
        return n < m
    if op == Py_LE:
        return n <= m
    if op == Py_EQ:
        return n == m
    if op == Py_NE:
        return n != m
    if op == Py_GT:
        return n > m
    return n >= m


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

    def __iter__(self):
        return self

    def __next__(self):
        return _stop_at_null(_values_next(<PyObject*>self))

    def __length_hint__(self):
        if self._rec is None:
            return 0
        return Py_SIZE(self._rec) - self._pos


cdef object _stop_at_null(PyObject* next_value):
    # __next__ of the two iterators, for Python callers: their C-level
    # tp_iternext's new reference, or StopIteration at its NULL.
    if next_value is NULL:
        raise StopIteration
    result = <object>next_value
    Py_DECREF(result)   # <object>next_value took a second reference
    return result


cdef RecordIterator _values_iter(Record rec):
    cdef RecordIterator it = RecordIterator.__new__(RecordIterator)
    it._rec = rec
    return it


cdef PyObject* _values_next(PyObject* o) noexcept:
    # RecordIterator's tp_iternext: the end is NULL without an exception,
    # as CPython's own iterators say it (raising StopIteration costs more
    # than the rest of a step). __next__ stays for Python callers.
    cdef RecordIterator it = <RecordIterator>o
    cdef Record rec = it._rec
    cdef PyObject* value
    if rec is None:
        return NULL
    if it._pos < Py_SIZE(rec):
        value = record_items(rec)[it._pos]
        it._pos += 1
        Py_INCREF(<object>value)
        return value
    it._rec = None
    return NULL


@cython.final
@cython.auto_pickle(False)
cdef class RecordItemsIterator:
    """Iterator over the ``(name, value)`` pairs of a Record."""

    cdef Record _rec
    cdef Py_ssize_t _pos

    def __iter__(self):
        return self

    def __next__(self):
        return _stop_at_null(_items_next(<PyObject*>self))

    def __length_hint__(self):
        if self._rec is None:
            return 0
        return Py_SIZE(self._rec) - self._pos


cdef RecordItemsIterator _items_iter(Record rec):
    cdef RecordItemsIterator it = RecordItemsIterator.__new__(RecordItemsIterator)
    it._rec = rec
    return it


cdef PyObject* _items_next(PyObject* o) noexcept:
    # RecordItemsIterator's tp_iternext (see _values_next); a new
    # reference to the next (name, value) pair, or NULL at the end.
    cdef RecordItemsIterator it = <RecordItemsIterator>o
    cdef Record rec = it._rec
    cdef tuple names
    cdef tuple pair
    if rec is None:
        return NULL
    names = rec._desc.names
    if it._pos < Py_SIZE(rec) and it._pos < len(names):
        pair = (names[it._pos], <object>record_items(rec)[it._pos])
        it._pos += 1
        Py_INCREF(pair)
        return <PyObject*>pair
    it._rec = None
    return NULL


# -- C-level construction (see _record.pxd) --------------------------------------

cdef inline PyObject** _desc_slot(PyObject* o) noexcept:
    # Where the _desc field lives: right after _ob_size (both pointer-sized;
    # _check_layout() verifies it). Written through this pointer wherever the
    # slot may hold garbage or NULL, which Cython's attribute assignment would
    # try to release.
    return <PyObject**>(<char*>&(<Record>o)._ob_size + sizeof(Py_ssize_t))

cdef enum:
    _FREE_SLOTS = 17        # at least __PGREC_FREE_MAXSIZE + 1, per kind
    _FREE_MAXLEN = 2000

# Index: (1 if the records have a GC header else 0) * _FREE_SLOTS + size.
cdef PyObject* _free_heads[2 * _FREE_SLOTS]
cdef int _free_lens[2 * _FREE_SLOTS]


cdef inline PyObject* _free_pop(int gc_head, Py_ssize_t n) noexcept:
    # A record of the exact type Record with room for n values (and a GC
    # header if gc_head), size n, one reference, its other fields garbage;
    # or NULL if the freelist is empty.
    cdef Py_ssize_t k
    cdef PyObject* o
    if n > __PGREC_FREE_MAXSIZE:
        return NULL
    k = gc_head * _FREE_SLOTS + n
    o = _free_heads[k]
    if o is not NULL:
        _free_heads[k] = _desc_slot(o)[0]
        _free_lens[k] -= 1
        _Py_NewReference(o)
    return o


cdef inline bint _free_push(PyObject* o, int gc_head, Py_ssize_t n) noexcept:
    # Keep the memory of o (an exact Record, values and descriptor released,
    # untracked) for reuse; False if its freelist is full.
    cdef Py_ssize_t k
    if n > __PGREC_FREE_MAXSIZE:
        return False
    k = gc_head * _FREE_SLOTS + n
    if _free_lens[k] >= _FREE_MAXLEN:
        return False
    _desc_slot(o)[0] = _free_heads[k]
    _free_heads[k] = o
    _free_lens[k] += 1
    return True


def _clear_freelists():
    """Free the memory kept on the freelists of records.

    For tests that measure memory: it is bounded (2,000 records per size and
    kind), but taken from and returned to the lists as rows come and go.
    """
    cdef Py_ssize_t k
    cdef PyObject* o
    for k in range(2 * _FREE_SLOTS):
        while _free_heads[k] is not NULL:
            o = _free_heads[k]
            _free_heads[k] = _desc_slot(o)[0]
            if k >= _FREE_SLOTS:
                PyObject_GC_Del(o)
            else:
                PyObject_Free(o)
        _free_lens[k] = 0


cdef object record_new(type cls, RecordDescriptor desc, Py_ssize_t n):
    cdef PyObject* o
    cdef PyObject* d = <PyObject*>desc
    cdef PyObject** items
    cdef Py_ssize_t i
    if <PyObject*>cls is <PyObject*>Record:
        if __PGREC_HEADERLESS and not desc._rows_need_gc:
            # No GC header until this result's records have shown that they
            # need one: record_done() moves the values if they do.
            d = desc._twin if desc._twin is not NULL else _make_twin(desc)
            o = _free_pop(0, n)
            if o is NULL:
                o = __pgrec_plain_new_var(<PyTypeObject*>cls, n)
        else:
            # Untracked until record_done(); its empty slots are never seen.
            o = _free_pop(1, n)
            if o is NULL:
                o = __pgrec_gc_new_var(<PyTypeObject*>cls, n)
        __pgrec_incref(d)
        _desc_slot(o)[0] = d
        memset(record_items(<object>o), 0, <size_t>n * sizeof(PyObject*))
    elif (<_PgTypeSlots*>cls).tp_dictoffset == 0:
        # A subclass without __dict__ (``__slots__ = ()``): no memory to clear
        # but ours. Always with a header (CPython's subtype_dealloc reads it).
        o = __pgrec_gc_new_var(<PyTypeObject*>cls, n)
        __pgrec_incref(d)
        _desc_slot(o)[0] = d
        memset(record_items(<object>o), 0, <size_t>n * sizeof(PyObject*))
    else:
        # A subclass: tp_alloc zeroes the object (and its __dict__ slot) and
        # tracks it, so the values start as None in case a garbage collection
        # looks at it before it is filled.
        o = (<_PgTypeSlots*>cls).tp_alloc(<PyTypeObject*>cls, n)
        __pgrec_incref(d)
        _desc_slot(o)[0] = d
        items = record_items(<object>o)
        for i in range(n):
            Py_INCREF(None)
            items[i] = <PyObject*>None
    rec = <object>o
    Py_DECREF(rec)   # <object>o took a second reference
    return rec


cdef PyObject* _make_twin(RecordDescriptor desc) except NULL:
    # The twin that desc's records without a GC header point at; owned by desc.
    cdef RecordDescriptor twin = RecordDescriptor.__new__(RecordDescriptor)
    # Re-checked: creating the twin may have run other code (a collection).
    if desc._twin is NULL:
        twin.names = desc.names
        twin.index = desc.index
        twin._headerless = True
        twin._twin = <PyObject*>desc
        __pgrec_incref(<PyObject*>twin)
        desc._twin = <PyObject*>twin
    return desc._twin


cdef object record_done(object rec):
    cdef PyObject** items = record_items(rec)
    cdef Py_ssize_t n = Py_SIZE(rec)
    if not _record_is_gc(<PyObject*>rec):
        if values_need_gc(items, n):
            return _move_to_gc_record(rec)
    elif not PyObject_GC_IsTracked(rec) and values_need_gc(items, n):
        PyObject_GC_Track(<PyObject*>rec)
    return rec


cdef object _move_to_gc_record(object rec):
    # rec has no GC header but its values need the collector: move them into
    # a new record with a header, tracked, and leave rec empty (freed when
    # the caller drops it). Later records of the result get a header at once.
    cdef PyObject* old = <PyObject*>rec
    cdef PyObject* main = (<RecordDescriptor>_desc_slot(old)[0])._twin
    cdef Py_ssize_t n = Py_SIZE(rec)
    cdef PyObject* o
    if main is NULL or Py_REFCNT(rec) != 1:
        # Never happens when the contract in _record.pxd is followed.
        raise SystemError("record_done(): the record is shared or its descriptor is gone")
    o = _free_pop(1, n)
    if o is NULL:
        o = __pgrec_gc_new_var(<PyTypeObject*>Record, n)
    __pgrec_incref(main)
    _desc_slot(o)[0] = main
    memcpy(record_items(<object>o), record_items(rec), <size_t>n * sizeof(PyObject*))
    __pgrec_set_size(old, 0)
    (<RecordDescriptor>main)._rows_need_gc = True
    PyObject_GC_Track(o)
    moved = <object>o
    Py_DECREF(moved)   # <object>o took a second reference
    return moved


cdef bint values_need_gc(PyObject** items, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    cdef PyObject* v
    for i in range(n):
        v = items[i]
        if v is not NULL and PyObject_IS_GC(<object>v):
            # An untracked object is one its type (or CPython, for a tuple
            # of atomic values) knows can never be part of a cycle: an
            # immutable record or tuple of such values, a decoded uuid.UUID.
            # Except a dict: CPython starts tracking one once it holds a
            # container. Anything else GC-capable might be in a cycle.
            if not PyObject_GC_IsTracked(<object>v) and not PyDict_Check(<object>v):
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

# Called by the collector in the middle of a collection: no tracing hooks
# (PG_CYTHON_DEBUG builds), which could run Python code there.
@cython.linetrace(False)
@cython.profile(False)
cdef int _record_is_gc(PyObject* o) noexcept:
    # tp_is_gc: whether o has a garbage collector header. Only an exact Record
    # pointing at a twin descriptor has none. (An exact Record whose _desc is
    # None exists only while Record() is refused in __cinit__.)
    cdef PyObject* d
    if __pgrec_type(o) is not <PyObject*>Record:
        return 1
    d = _desc_slot(o)[0]
    if d is NULL or __pgrec_type(d) is not <PyObject*>RecordDescriptor:
        return 1
    return not (<RecordDescriptor>d)._headerless


cdef void _record_dealloc(PyObject* o) noexcept:
    cdef Py_ssize_t n = Py_SIZE(<object>o)
    cdef Py_ssize_t i = n
    cdef PyObject** items = record_items(<object>o)
    # Asked before the descriptor, which tells, is released.
    cdef bint has_gc_head = _record_is_gc(o)
    if has_gc_head:
        PyObject_GC_UnTrack(o)
    while i > 0:
        i -= 1
        Py_XDECREF(items[i])
        items[i] = NULL
    Py_XDECREF(_desc_slot(o)[0])
    _desc_slot(o)[0] = NULL
    if __pgrec_type(o) is <PyObject*>Record and _free_push(o, has_gc_head, n):
        return
    if has_gc_head:
        (<_PgTypeSlots*>Py_TYPE(<object>o)).tp_free(o)
    else:
        # Only exact Records lack a header, and Record is a static type: no
        # reference to the type to release.
        PyObject_Free(o)


@cython.linetrace(False)
@cython.profile(False)
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
        if __PGREC_HEADERLESS:
            # Set before any subclass exists; subclasses inherit it.
            tp.tp_is_gc = <inquiry>_record_is_gc
    _EMPTY_DESC = RecordDescriptor(())
    return 0


cdef int _check_layout() except -1:
    # The struct's first field must be where CPython keeps ob_size, or
    # Py_SIZE() would not be the number of values. Checked on a record
    # without a GC header and on one moved into a record with a header.
    cdef RecordDescriptor desc = RecordDescriptor(("a", "b", "c"))
    cdef tuple values
    for values in ((0, 1, 2), (0, 1, [2])):
        rec = record_new(Record, desc, 3)
        for i in range(3):
            record_set_item(rec, i, values[i])
        rec = record_done(rec)
        if (Py_SIZE(rec) != 3 or (<Record>rec)._ob_size != 3 or rec[2] != values[2]
                or _desc_slot(<PyObject*>rec)[0] is not <PyObject*>(<Record>rec)._desc
                or PyObject_IS_GC(rec) != (not __PGREC_HEADERLESS or type(values[2]) is list)
                or PyObject_GC_IsTracked(rec) != (type(values[2]) is list)
                or (<Record>rec)._desc.names is not desc.names):
            raise ImportError("pg_codecs._record: unexpected object layout of Record")
    return 0


cdef bint _hash_like_tuples = False


cdef int _check_hash() except -1:
    # Whether __pgrec_hash_items() gives what hash(tuple) gives here.
    global _hash_like_tuples
    samples = [(), (0,), (-1,), (-2, -1), (1, "x", None, 2.5, (3, "y")), ("a",) * 17,
               (2**64, -(2**63), True, b"z", frozenset([1]))]
    for values in samples:
        rec = RecordDescriptor([str(i) for i in range(len(values))]).make_record(values)
        if __pgrec_hash_items(record_items(rec), Py_SIZE(rec)) != hash(values):
            return 0    # _hash_like_tuples stays False
    _hash_like_tuples = True
    return 0


_make_var_sized()
_check_layout()
_check_hash()
(<_PgTypeSlots*>RecordIterator).tp_iternext = _values_next
(<_PgTypeSlots*>RecordItemsIterator).tp_iternext = _items_next
