# cython: language_level=3
"""C-level contract of Record, the row type, for the row decoder.

A Record is one variable-sized object: a small header (the shared
RecordDescriptor) followed directly by its values, like a tuple. Creating one
is a single allocation; filling it is plain pointer stores.

How the row decoder uses it::

    rec = record_new(cls, desc, n)        # values all empty (NULL)
    record_set_item(rec, i, value)        # for i in 0..n-1, each exactly once
    rec = record_done(rec)                # may return another object!

record_done() may move the values into a new object (one with a garbage
collector header) and return that; the old one is then empty and is freed
when the caller drops it. So the caller must hold the only reference to
``rec`` and use the returned object from then on. Until record_done() the
record must not be shown to Python code. If decoding fails half-way, simply
drop the reference: empty slots are allowed then.
"""

cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF


@cython.final
cdef class RecordDescriptor:
    # Column names in order, duplicates kept (what repr() and keys() show).
    cdef readonly tuple names
    # name -> position. A duplicated name maps to its LAST position, like
    # asyncpg (whose mapping is built by assigning names in order).
    cdef dict index
    # Set only on a twin (see _record.pyx, "How it works"): the records that
    # point at it were allocated without a garbage collector header.
    cdef bint _headerless
    # Set on a main descriptor once one of its records needed tracking by
    # the garbage collector: its later records get a header straight away.
    cdef bint _rows_need_gc
    # On a main descriptor: its twin, owned, created on first use (or NULL).
    # On a twin: its main descriptor, borrowed (NULL once that one is gone).
    cdef PyObject* _twin


cdef class Record:
    # Overlays PyVarObject.ob_size: the number of values. Never write it.
    cdef Py_ssize_t _ob_size
    cdef RecordDescriptor _desc
    # The values follow this struct in memory (see record_items()).


# A new record of type cls (Record or a record_class from
# check_record_class()) with n empty values. desc is the descriptor the caller
# holds (never a twin; twins do not leave _record.pyx).
cdef object record_new(type cls, RecordDescriptor desc, Py_ssize_t n)

# Finish a record: let the cyclic garbage collector see it when one of its
# values could be part of a reference cycle (a record of ints and strings
# never can). Returns the record to use from now on: a record allocated
# without a GC header is moved into one with a header when its values need
# it. The caller must hold the only reference to rec (SystemError otherwise).
cdef object record_done(object rec)

# True if a container holding these values must be tracked by the garbage
# collector (some value is, or could become, part of a reference cycle).
cdef bint values_need_gc(PyObject** items, Py_ssize_t n) noexcept

# Raise TypeError unless cls is Record or a Python subclass of it that adds no
# C-level fields (its values would overlap them).
cdef int check_record_class(object cls) except -1


cdef inline PyObject** record_items(object rec) noexcept:
    return <PyObject**>(<char*><PyObject*>rec + sizeof(Record))


cdef inline void record_set_item(object rec, Py_ssize_t i, object value) noexcept:
    # Stores a new reference to value at slot i (which may hold a placeholder).
    cdef PyObject** items = record_items(rec)
    cdef PyObject* old = items[i]
    Py_INCREF(value)
    items[i] = <PyObject*>value
    Py_XDECREF(old)
