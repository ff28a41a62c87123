# cython: language_level=3
"""Big-endian (network order) packing and unpacking of fixed-size numbers.

Everything here is ``cdef inline`` so that it compiles into the caller, also
across packages (pg-wire and pg-client ``cimport`` this file). The callers
have already checked that enough bytes are present: these functions never
check bounds.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline uint16_t unpack_uint16(const char* p) noexcept nogil:
    cdef const uint8_t* b = <const uint8_t*>p
    return <uint16_t>((<uint16_t>b[0] << 8) | b[1])


cdef inline int16_t unpack_int16(const char* p) noexcept nogil:
    return <int16_t>unpack_uint16(p)


cdef inline uint32_t unpack_uint32(const char* p) noexcept nogil:
    cdef const uint8_t* b = <const uint8_t*>p
    return ((<uint32_t>b[0] << 24) | (<uint32_t>b[1] << 16)
            | (<uint32_t>b[2] << 8) | <uint32_t>b[3])


cdef inline int32_t unpack_int32(const char* p) noexcept nogil:
    return <int32_t>unpack_uint32(p)


cdef inline uint64_t unpack_uint64(const char* p) noexcept nogil:
    return (<uint64_t>unpack_uint32(p) << 32) | unpack_uint32(p + 4)


cdef inline int64_t unpack_int64(const char* p) noexcept nogil:
    return <int64_t>unpack_uint64(p)


cdef inline float unpack_float(const char* p) noexcept nogil:
    cdef uint32_t bits = unpack_uint32(p)
    cdef float f
    memcpy(&f, &bits, 4)
    return f


cdef inline double unpack_double(const char* p) noexcept nogil:
    cdef uint64_t bits = unpack_uint64(p)
    cdef double d
    memcpy(&d, &bits, 8)
    return d


cdef inline void pack_uint16(char* p, uint16_t v) noexcept nogil:
    cdef uint8_t* b = <uint8_t*>p
    b[0] = <uint8_t>(v >> 8)
    b[1] = <uint8_t>v


cdef inline void pack_int16(char* p, int16_t v) noexcept nogil:
    pack_uint16(p, <uint16_t>v)


cdef inline void pack_uint32(char* p, uint32_t v) noexcept nogil:
    cdef uint8_t* b = <uint8_t*>p
    b[0] = <uint8_t>(v >> 24)
    b[1] = <uint8_t>(v >> 16)
    b[2] = <uint8_t>(v >> 8)
    b[3] = <uint8_t>v


cdef inline void pack_int32(char* p, int32_t v) noexcept nogil:
    pack_uint32(p, <uint32_t>v)


cdef inline void pack_uint64(char* p, uint64_t v) noexcept nogil:
    pack_uint32(p, <uint32_t>(v >> 32))
    pack_uint32(p + 4, <uint32_t>v)


cdef inline void pack_int64(char* p, int64_t v) noexcept nogil:
    pack_uint64(p, <uint64_t>v)


cdef inline void pack_float(char* p, float f) noexcept nogil:
    cdef uint32_t bits
    memcpy(&bits, &f, 4)
    pack_uint32(p, bits)


cdef inline void pack_double(char* p, double d) noexcept nogil:
    cdef uint64_t bits
    memcpy(&bits, &d, 8)
    pack_uint64(p, bits)
