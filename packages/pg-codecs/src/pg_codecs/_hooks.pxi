# Included by the scalar codec modules (_numeric, _datetime, _network,
# _geometry, _misc). Registers a module's codecs in the core table and keeps
# a by-name table of them for the module's test hooks, `_encode`/`_decode`,
# which run a codec without the registry (internal; for unit tests only).
#
# The including module must cimport WriteBuffer, FRBuffer, frb_init,
# CodecContext, encode_func, decode_func, register_core_codec and the
# PG_XFORMAT_* constants (and register_extra_codec if it calls
# _register_extra).

cimport cython


@cython.final
@cython.no_gc
cdef class _CodecFuncs:
    cdef encode_func encoder
    cdef decode_func decoder


cdef dict _test_codecs = {}


cdef int _add_test_codec(str name, encode_func encoder, decode_func decoder,
                         int xformat) except -1:
    cdef _CodecFuncs funcs = _CodecFuncs.__new__(_CodecFuncs)
    funcs.encoder = encoder
    funcs.decoder = decoder
    _test_codecs[(name, "tuple" if xformat == PG_XFORMAT_TUPLE else "object")] = funcs
    return 0


cdef int _register(uint32_t oid, str name, encode_func encoder, decode_func decoder,
                   int fmt, int xformat=PG_XFORMAT_OBJECT) except -1:
    _add_test_codec(name, encoder, decoder, xformat)
    register_core_codec(oid, name, encoder, decoder, fmt, xformat)
    return 0


cdef _CodecFuncs _lookup_test_codec(str typename, str xformat):
    try:
        return _test_codecs[(typename, xformat)]
    except KeyError:
        raise LookupError(f"this module has no {xformat!r} codec named {typename!r}") from None


def _encode(str typename, object value, str xformat="object"):
    """Encode *value* with this module's codec for *typename*; for tests.

    Returns the bytes the encoder wrote, int32 length prefix included. Also
    checks the encoder's promise that a failed encode leaves nothing behind.
    """
    cdef _CodecFuncs funcs = _lookup_test_codec(typename, xformat)
    cdef WriteBuffer buf = WriteBuffer.new()
    if funcs.encoder is NULL:
        raise NotImplementedError(f"{typename} has no encoder")
    buf.write_byte(0x55)   # a sentinel the encoder must not disturb
    try:
        funcs.encoder(None, buf, value)
    except BaseException:
        if buf.length() != 1:
            raise AssertionError(
                f"{typename} encoder left {buf.length() - 1} bytes behind after an error")
        raise
    return buf.to_bytes()[1:]


def _decode(str typename, bytes data, str xformat="object"):
    """Decode *data* (one value's bytes, no length prefix) with this module's
    codec for *typename*; for tests."""
    cdef _CodecFuncs funcs = _lookup_test_codec(typename, xformat)
    cdef FRBuffer frb
    if funcs.decoder is NULL:
        raise NotImplementedError(f"{typename} has no decoder")
    frb_init(&frb, data, len(data))
    result = funcs.decoder(None, &frb)
    if frb.len != 0:
        raise AssertionError(f"{typename} decoder left {frb.len} bytes unread without raising")
    return result
