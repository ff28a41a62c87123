# cython: language_level=3, freethreading_compatible=True
"""Binary codecs for PostgreSQL ``inet`` and ``cidr`` <-> :mod:`ipaddress`.

Knows the wire format only. What we return follows asyncpg:

* ``cidr`` -> ``IPv4Network`` / ``IPv6Network``;
* ``inet`` -> ``IPv4Address`` / ``IPv6Address`` when the netmask covers the
  whole address (``/32``, ``/128``), otherwise ``IPv4Interface`` /
  ``IPv6Interface`` (address plus netmask).

Encoders take those objects, their ``str`` form, an ``int`` or packed
``bytes`` (whatever :func:`ipaddress.ip_address` and friends take).
``macaddr``/``macaddr8`` are exchanged as text (``str``) like asyncpg does,
see ``_misc``.

Wire format (``inet_send``): family byte (2 = IPv4, 3 = IPv6), netmask bits,
an is-cidr flag, address length, then the address bytes.
"""

from libc.stdint cimport int32_t, uint8_t, uint32_t

from pg_codecs cimport _hton as hton
from pg_codecs._oids cimport CIDROID, INETOID
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

import ipaddress as _ipaddress

from pg_codecs.errors import DecodeError as _DecodeError

include "_hooks.pxi"


cdef enum:
    PGSQL_AF_INET = 2      # the server's own numbering, not the OS's AF_*
    PGSQL_AF_INET6 = 3


cdef object _IPv4Address = _ipaddress.IPv4Address
cdef object _IPv6Address = _ipaddress.IPv6Address
cdef object _IPv4Interface = _ipaddress.IPv4Interface
cdef object _IPv6Interface = _ipaddress.IPv6Interface
cdef object _IPv4Network = _ipaddress.IPv4Network
cdef object _IPv6Network = _ipaddress.IPv6Network
cdef object _ip_address = _ipaddress.ip_address
cdef object _ip_interface = _ipaddress.ip_interface
cdef object _ip_network = _ipaddress.ip_network
cdef tuple _ACCEPTED = (str, int, bytes, _IPv4Address, _IPv6Address, _IPv4Network, _IPv6Network)


# -- decode --------------------------------------------------------------------

cdef object _net_decode(FRBuffer* buf, bint is_cidr):
    cdef:
        const char* p
        uint8_t family, bits, flag, addrlen, maxbits
        str typename = "cidr" if is_cidr else "inet"
        object addr

    if buf.len < 4:
        raise _DecodeError(f"{typename} value needs at least 4 bytes, got {buf.len}")
    p = frb_read(buf, 4)
    family = <uint8_t>p[0]
    bits = <uint8_t>p[1]
    flag = <uint8_t>p[2]
    addrlen = <uint8_t>p[3]
    if family == PGSQL_AF_INET:
        maxbits = 32
    elif family == PGSQL_AF_INET6:
        maxbits = 128
    else:
        raise _DecodeError(f"{typename} value has an unknown address family {family}")
    if addrlen != maxbits // 8 or buf.len != addrlen:
        raise _DecodeError(
            f"{typename} value has a {addrlen}-byte address and {buf.len} bytes left; "
            f"expected {maxbits // 8} of each")
    if bits > maxbits:
        raise _DecodeError(f"{typename} value has an invalid netmask length {bits}")
    if flag != is_cidr:
        raise _DecodeError(f"{typename} value has is_cidr flag {flag}")
    p = frb_read(buf, addrlen)

    if family == PGSQL_AF_INET:
        addr = hton.unpack_uint32(p)      # ipaddress takes ints without a bytes detour
    else:
        addr = p[:16]
    if is_cidr:
        try:
            if family == PGSQL_AF_INET:
                return _IPv4Network((addr, bits))
            return _IPv6Network((addr, bits))
        except ValueError as exc:
            raise _DecodeError(f"invalid cidr value: {exc}") from None
    if bits == maxbits:
        if family == PGSQL_AF_INET:
            return _IPv4Address(addr)
        return _IPv6Address(addr)
    if family == PGSQL_AF_INET:
        return _IPv4Interface((addr, bits))
    return _IPv6Interface((addr, bits))


cdef object inet_decode(CodecContext ctx, FRBuffer* buf):
    return _net_decode(buf, False)


cdef object cidr_decode(CodecContext ctx, FRBuffer* buf):
    return _net_decode(buf, True)


# -- encode --------------------------------------------------------------------

cdef int _net_write(WriteBuffer buf, int version, int bits, bint is_cidr, bytes packed) except -1:
    cdef Py_ssize_t n = len(packed)
    buf.ensure(8 + n)
    buf.write_int32(<int32_t>(4 + n))
    buf.write_byte(PGSQL_AF_INET if version == 4 else PGSQL_AF_INET6)
    buf.write_byte(<char>bits)
    buf.write_byte(is_cidr)
    buf.write_byte(<char>n)
    buf.write_bytes(packed)
    return 0


cdef int inet_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef object value
    cdef type t = type(obj)
    if t is _IPv4Address or t is _IPv6Address:
        return _net_write(buf, obj.version, obj.max_prefixlen, False, obj.packed)
    if t is _IPv4Interface or t is _IPv6Interface:
        return _net_write(buf, obj.version, obj.network.prefixlen, False, obj.packed)
    if not isinstance(obj, _ACCEPTED) or isinstance(obj, bool):
        raise TypeError(
            f"expected an ipaddress address, interface or network, or str, for inet, "
            f"got {type(obj).__name__}")
    # Like the server, inet takes a plain address or an address with a netmask.
    try:
        value = _ip_address(obj)
    except ValueError:
        value = _ip_interface(obj)
        return _net_write(buf, value.version, value.network.prefixlen, False, value.packed)
    return _net_write(buf, value.version, value.max_prefixlen, False, value.packed)


cdef int cidr_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef object net
    if isinstance(obj, (_IPv4Network, _IPv6Network)):
        net = obj
    elif isinstance(obj, _ACCEPTED + (tuple,)) and not isinstance(obj, bool):
        # Strict: host bits set beyond the netmask are an error, as on the server.
        net = _ip_network(obj)
    else:
        raise TypeError(
            f"expected an ipaddress network, or str, for cidr, got {type(obj).__name__}")
    return _net_write(buf, net.version, net.prefixlen, True, net.network_address.packed)


# -- registration --------------------------------------------------------------

_register(INETOID, "inet", inet_encode, inet_decode, PG_FORMAT_BINARY)
_register(CIDROID, "cidr", cidr_encode, cidr_decode, PG_FORMAT_BINARY)
