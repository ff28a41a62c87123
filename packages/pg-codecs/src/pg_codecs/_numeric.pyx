# cython: language_level=3, freethreading_compatible=True
"""Binary codec for PostgreSQL ``numeric`` <-> :class:`decimal.Decimal`.

Knows the ``numeric_send``/``numeric_recv`` format and nothing else: no
protocol, no connection state. ``money`` is not here: like asyncpg we exchange
it as text (a ``str``), see ``_misc``.

How it works
------------

The wire value is a header of four int16s -- ``ndigits``, ``weight``,
``sign``, ``dscale`` -- followed by ``ndigits`` base-10000 digits, most
significant first. The value is ``sum(digit[i] * 10000 ** (weight - i))``;
``dscale`` is the number of decimal digits after the point the value is
displayed with (``12.340`` has dscale 3). ``sign`` is 0x0000 (+), 0x4000 (-),
0xC000 (NaN), 0xD000 (+Infinity), 0xF000 (-Infinity; PostgreSQL 14+).

Decoding renders the digits as ASCII with an exponent and lets
``decimal.Decimal`` parse it (its C parser is faster than building digit
tuples). The result has exactly the digits and exponent asyncpg's binary
decoder gives: when ``dscale`` is non-zero the exponent is ``-dscale`` (so
trailing zeros are kept: ``12.340``); when it is zero, the exponent is that of
the last base-10000 digit the server sent, so ``10000`` (sent as one digit,
weight 1) decodes to ``Decimal('1E+4')``. Both compare equal to the text form.

Encoding reads ``str()`` of the Decimal (again the fastest way to get at its
digits) and writes the canonical form the server itself sends: no leading or
trailing zero base-10000 digits, dscale from the Decimal's exponent.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t

from pg_codecs cimport _hton as hton
from pg_codecs._oids cimport NUMERICOID
from pg_codecs._buffer cimport FRBuffer, WriteBuffer, frb_init, frb_read
from pg_codecs._codecs cimport (
    PG_FORMAT_BINARY,
    PG_XFORMAT_OBJECT,
    PG_XFORMAT_TUPLE,
    CodecContext,
    decode_func,
    encode_func,
    register_core_codec,
)

import decimal as _decimal

from pg_codecs.errors import DecodeError as _DecodeError

include "_hooks.pxi"


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


cdef enum:
    NUMERIC_POS = 0x0000
    NUMERIC_NEG = 0x4000
    NUMERIC_NAN = 0xC000
    NUMERIC_PINF = 0xD000
    NUMERIC_NINF = 0xF000
    NUMERIC_MAX_DSCALE = 0x3FFF     # the server's NUMERIC_DSCALE_MASK
    NUMERIC_MAX_WEIGHT = 0x7FFF     # weight is an int16 on the wire
    STACK_CHARS = 128


cdef object _Decimal = _decimal.Decimal
cdef object _Decimal_str = _decimal.Decimal.__str__
cdef object _InvalidOperation = _decimal.InvalidOperation

cdef object _NAN = _Decimal("NaN")
cdef object _PINF = _Decimal("Infinity")
cdef object _NINF = _Decimal("-Infinity")
cdef object _ZERO = _Decimal("0")


# -- decode --------------------------------------------------------------------

@cython.cdivision(True)
cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    # Floor division for b > 0, spelled out so it does not depend on the
    # cdivision directive.
    cdef int64_t q = a // b
    if a % b < 0:
        q -= 1
    return q


cdef char* _write_int(char* p, int64_t v) noexcept nogil:
    # Decimal digits of v (with a leading '-' when negative) at p; returns the end.
    cdef char tmp[24]
    cdef int n = 0
    cdef uint64_t u
    if v < 0:
        p[0] = c'-'
        p += 1
        u = <uint64_t>(-(v + 1)) + 1
    else:
        u = <uint64_t>v
    while True:
        tmp[n] = <char>(c'0' + <int>(u % 10))
        n += 1
        u //= 10
        if u == 0:
            break
    while n > 0:
        n -= 1
        p[0] = tmp[n]
        p += 1
    return p


cdef object numeric_decode(CodecContext ctx, FRBuffer* buf):
    cdef:
        const char* header
        const char* digits
        uint16_t ndigits, sign, dscale
        int16_t weight
        uint16_t group
        int64_t exponent, pad = 0, cut = 0, size, i, ndec
        char stack[STACK_CHARS]
        char* out
        char* p
        object text

    if buf.len < 8:
        raise _DecodeError(f"numeric value needs at least 8 bytes, got {buf.len}")
    header = frb_read(buf, 8)
    ndigits = hton.unpack_uint16(header)
    weight = hton.unpack_int16(header + 2)
    sign = hton.unpack_uint16(header + 4)
    dscale = hton.unpack_uint16(header + 6)
    # Checked before anything is allocated: the digit count must match the
    # bytes that are actually there.
    if buf.len != 2 * <Py_ssize_t>ndigits:
        raise _DecodeError(
            f"numeric value declares {ndigits} digits but has {buf.len} bytes of digits")
    digits = frb_read(buf, buf.len)

    if sign == NUMERIC_NAN:
        return _NAN
    if sign == NUMERIC_PINF:
        return _PINF
    if sign == NUMERIC_NINF:
        return _NINF
    if sign != NUMERIC_POS and sign != NUMERIC_NEG:
        raise _DecodeError(f"numeric value has an invalid sign field 0x{sign:04x}")
    if dscale > NUMERIC_MAX_DSCALE:
        raise _DecodeError(f"numeric value has an invalid display scale {dscale}")

    if ndigits == 0:
        # Zero; the server never sends a negative zero, and asyncpg ignores
        # the sign here too.
        if dscale == 0:
            return _ZERO
        return _Decimal(f"0E-{dscale}")

    # Exponent of the last digit sent, then rescaled to -dscale (see above).
    ndec = 4 * <int64_t>ndigits
    exponent = (<int64_t>weight + 1 - ndigits) * 4
    if dscale != 0:
        if exponent > -<int64_t>dscale:
            pad = exponent + dscale
        else:
            cut = -<int64_t>dscale - exponent
            if cut > ndec:
                raise _DecodeError("numeric value has a display scale inconsistent with its digits")
        exponent = -<int64_t>dscale

    # sign + digits + padding + 'E' + exponent (at most 20 characters).
    size = 1 + ndec + pad + 1 + 21
    if size <= STACK_CHARS:
        out = stack
    else:
        out = <char*>PyMem_Malloc(<size_t>size)
        if out is NULL:
            raise MemoryError()
    try:
        p = out
        if sign == NUMERIC_NEG:
            p[0] = c'-'
            p += 1
        for i in range(ndigits):
            group = hton.unpack_uint16(digits + 2 * i)
            if group > 9999:
                raise _DecodeError(f"numeric value has an invalid base-10000 digit {group}")
            p[0] = <char>(c'0' + group // 1000)
            p[1] = <char>(c'0' + group // 100 % 10)
            p[2] = <char>(c'0' + group // 10 % 10)
            p[3] = <char>(c'0' + group % 10)
            p += 4
        if pad:
            for i in range(pad):
                p[i] = c'0'
            p += pad
        elif cut:
            p -= cut
            if cut == ndec:
                p[0] = c'0'    # every digit was below the display scale
                p += 1
        if exponent != 0:
            p[0] = c'E'
            p = _write_int(p + 1, exponent)
        text = PyUnicode_DecodeASCII(out, p - out, NULL)
    finally:
        if out is not stack:
            PyMem_Free(out)
    return _Decimal(text)


# -- encode --------------------------------------------------------------------

cdef inline object _as_decimal(object obj):
    if isinstance(obj, _Decimal):
        return obj
    try:
        return _Decimal(obj)
    except TypeError:
        raise TypeError(
            f"expected decimal.Decimal, int, float or str for numeric, "
            f"got {type(obj).__name__}") from None
    except _InvalidOperation:
        raise ValueError(f"invalid numeric value {obj!r}") from None


cdef int numeric_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef:
        object dec = _as_decimal(obj)
        object text
        const char* s
        Py_ssize_t n, i
        char* coef = NULL
        Py_ssize_t ncoef = 0, nfrac = 0, first, last
        bint negative = False, seen_point = False, exp_negative = False
        int64_t exp_value = 0, exponent, dscale, dweight, weight, lowgroup, ndigits, g, q, idx
        int16_t group
        uint16_t sign
        char c

    text = str(dec) if type(dec) is _Decimal else _Decimal_str(dec)
    s = PyUnicode_AsUTF8AndSize(text, &n)
    i = 0
    if n > 0 and s[0] == c'-':
        negative = True
        i = 1
    if i < n and (s[i] == c'N' or s[i] == c's'):        # NaN, sNaN
        buf.write_int32(8)
        buf.write_int64(<int64_t>NUMERIC_NAN << 16)       # ndigits 0, weight 0, sign, dscale 0
        return 0
    if i < n and s[i] == c'I':                         # Infinity
        buf.write_int32(8)
        buf.write_int64(<int64_t>(NUMERIC_NINF if negative else NUMERIC_PINF) << 16)
        return 0

    # Finite: [-]digits[.digits][E[+-]digits]. Copy the coefficient's digits.
    coef = <char*>PyMem_Malloc(<size_t>(n + 1))
    if coef is NULL:
        raise MemoryError()
    try:
        while i < n:
            c = s[i]
            if c'0' <= c <= c'9':
                coef[ncoef] = c
                ncoef += 1
                if seen_point:
                    nfrac += 1
            elif c == c'.':
                seen_point = True
            elif c == c'E' or c == c'e':
                break
            else:
                raise ValueError(f"cannot encode {text!r} as numeric")
            i += 1
        if i < n:
            i += 1
            if i < n and (s[i] == c'+' or s[i] == c'-'):
                exp_negative = s[i] == c'-'
                i += 1
            while i < n:
                c = s[i]
                if not (c'0' <= c <= c'9'):
                    raise ValueError(f"cannot encode {text!r} as numeric")
                # Saturate: anything this large is out of range anyway.
                if exp_value < 1000000000000:
                    exp_value = exp_value * 10 + (c - c'0')
                i += 1
        if ncoef == 0:
            raise ValueError(f"cannot encode {text!r} as numeric")

        exponent = (-exp_value if exp_negative else exp_value) - nfrac
        dscale = -exponent if exponent < 0 else 0
        if dscale > NUMERIC_MAX_DSCALE:
            raise ValueError(
                f"cannot encode {text!r} as numeric: more than {NUMERIC_MAX_DSCALE} "
                f"digits after the decimal point")

        first = 0
        while first < ncoef and coef[first] == c'0':
            first += 1
        if first == ncoef:
            # Zero (the server has no negative zero).
            buf.write_int32(8)
            buf.write_int64(<int64_t>dscale)
            return 0
        last = ncoef
        while coef[last - 1] == c'0':
            last -= 1
        exponent += ncoef - last                 # value = coef[first:last] * 10**exponent
        dweight = (last - first - 1) + exponent  # power of ten of the leading digit
        weight = _floordiv(dweight, 4)
        if weight > NUMERIC_MAX_WEIGHT:
            raise ValueError(f"cannot encode {text!r} as numeric: the value is too large")
        lowgroup = _floordiv(exponent, 4)
        ndigits = weight - lowgroup + 1

        sign = NUMERIC_NEG if negative else NUMERIC_POS
        buf.ensure(12 + 2 * ndigits)     # nothing below can fail half-way
        buf.write_int32(<int32_t>(8 + 2 * ndigits))
        buf.write_int16(<int16_t>ndigits)
        buf.write_int16(<int16_t>weight)
        buf.write_uint16(sign)
        buf.write_int16(<int16_t>dscale)
        for g in range(ndigits):
            group = 0
            for q in range(4 * (weight - g) + 3, 4 * (weight - g) - 1, -1):
                idx = first + (dweight - q)
                group = group * 10
                if first <= idx < last:
                    group += coef[idx] - c'0'
            buf.write_int16(group)
    finally:
        PyMem_Free(coef)
    return 0


# -- registration --------------------------------------------------------------

_register(NUMERICOID, "numeric", numeric_encode, numeric_decode, PG_FORMAT_BINARY)
