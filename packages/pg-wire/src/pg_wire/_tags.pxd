# cython: language_level=3
"""Message tags and codes of the v3 protocol as C constants, for Cython code.

The same values as pg_wire/tags.py, as ``char`` (tags) and ``int32_t``
(codes) constants that compile to literals in the caller. Knows nothing
else. Shared tag bytes get one name per message, as in the docs.
"""

from libc.stdint cimport int32_t


cdef extern from *:
    """
    #ifndef PG_WIRE_TAGS_DEFINED
    #define PG_WIRE_TAGS_DEFINED
    /* backend */
    #define PGW_AUTHENTICATION 'R'
    #define PGW_BACKEND_KEY_DATA 'K'
    #define PGW_BIND_COMPLETE '2'
    #define PGW_CLOSE_COMPLETE '3'
    #define PGW_COMMAND_COMPLETE 'C'
    #define PGW_COPY_BOTH_RESPONSE 'W'
    #define PGW_COPY_IN_RESPONSE 'G'
    #define PGW_COPY_OUT_RESPONSE 'H'
    #define PGW_DATA_ROW 'D'
    #define PGW_EMPTY_QUERY_RESPONSE 'I'
    #define PGW_ERROR_RESPONSE 'E'
    #define PGW_FUNCTION_CALL_RESPONSE 'V'
    #define PGW_NEGOTIATE_PROTOCOL_VERSION 'v'
    #define PGW_NO_DATA 'n'
    #define PGW_NOTICE_RESPONSE 'N'
    #define PGW_NOTIFICATION_RESPONSE 'A'
    #define PGW_PARAMETER_DESCRIPTION 't'
    #define PGW_PARAMETER_STATUS 'S'
    #define PGW_PARSE_COMPLETE '1'
    #define PGW_PORTAL_SUSPENDED 's'
    #define PGW_READY_FOR_QUERY 'Z'
    #define PGW_ROW_DESCRIPTION 'T'
    /* both directions */
    #define PGW_COPY_DATA 'd'
    #define PGW_COPY_DONE 'c'
    /* frontend */
    #define PGW_BIND 'B'
    #define PGW_CLOSE 'C'
    #define PGW_COPY_FAIL 'f'
    #define PGW_DESCRIBE 'D'
    #define PGW_EXECUTE 'E'
    #define PGW_FLUSH 'H'
    #define PGW_FUNCTION_CALL 'F'
    #define PGW_PARSE 'P'
    #define PGW_PASSWORD_MESSAGE 'p'
    #define PGW_QUERY 'Q'
    #define PGW_SYNC 'S'
    #define PGW_TERMINATE 'X'
    /* startup packet codes and protocol versions */
    #define PGW_PROTOCOL_3_0 196608
    #define PGW_PROTOCOL_3_2 196610
    #define PGW_CANCEL_REQUEST_CODE 80877102
    #define PGW_SSL_REQUEST_CODE 80877103
    #define PGW_GSSENC_REQUEST_CODE 80877104
    #endif
    """
    const char AUTHENTICATION_TAG "PGW_AUTHENTICATION"
    const char BACKEND_KEY_DATA_TAG "PGW_BACKEND_KEY_DATA"
    const char BIND_COMPLETE_TAG "PGW_BIND_COMPLETE"
    const char CLOSE_COMPLETE_TAG "PGW_CLOSE_COMPLETE"
    const char COMMAND_COMPLETE_TAG "PGW_COMMAND_COMPLETE"
    const char COPY_BOTH_RESPONSE_TAG "PGW_COPY_BOTH_RESPONSE"
    const char COPY_IN_RESPONSE_TAG "PGW_COPY_IN_RESPONSE"
    const char COPY_OUT_RESPONSE_TAG "PGW_COPY_OUT_RESPONSE"
    const char DATA_ROW_TAG "PGW_DATA_ROW"
    const char EMPTY_QUERY_RESPONSE_TAG "PGW_EMPTY_QUERY_RESPONSE"
    const char ERROR_RESPONSE_TAG "PGW_ERROR_RESPONSE"
    const char FUNCTION_CALL_RESPONSE_TAG "PGW_FUNCTION_CALL_RESPONSE"
    const char NEGOTIATE_PROTOCOL_VERSION_TAG "PGW_NEGOTIATE_PROTOCOL_VERSION"
    const char NO_DATA_TAG "PGW_NO_DATA"
    const char NOTICE_RESPONSE_TAG "PGW_NOTICE_RESPONSE"
    const char NOTIFICATION_RESPONSE_TAG "PGW_NOTIFICATION_RESPONSE"
    const char PARAMETER_DESCRIPTION_TAG "PGW_PARAMETER_DESCRIPTION"
    const char PARAMETER_STATUS_TAG "PGW_PARAMETER_STATUS"
    const char PARSE_COMPLETE_TAG "PGW_PARSE_COMPLETE"
    const char PORTAL_SUSPENDED_TAG "PGW_PORTAL_SUSPENDED"
    const char READY_FOR_QUERY_TAG "PGW_READY_FOR_QUERY"
    const char ROW_DESCRIPTION_TAG "PGW_ROW_DESCRIPTION"

    const char COPY_DATA_TAG "PGW_COPY_DATA"
    const char COPY_DONE_TAG "PGW_COPY_DONE"

    const char BIND_TAG "PGW_BIND"
    const char CLOSE_TAG "PGW_CLOSE"
    const char COPY_FAIL_TAG "PGW_COPY_FAIL"
    const char DESCRIBE_TAG "PGW_DESCRIBE"
    const char EXECUTE_TAG "PGW_EXECUTE"
    const char FLUSH_TAG "PGW_FLUSH"
    const char FUNCTION_CALL_TAG "PGW_FUNCTION_CALL"
    const char PARSE_TAG "PGW_PARSE"
    const char PASSWORD_MESSAGE_TAG "PGW_PASSWORD_MESSAGE"
    const char QUERY_TAG "PGW_QUERY"
    const char SYNC_TAG "PGW_SYNC"
    const char TERMINATE_TAG "PGW_TERMINATE"

    const int32_t PROTOCOL_3_0 "PGW_PROTOCOL_3_0"
    const int32_t PROTOCOL_3_2 "PGW_PROTOCOL_3_2"
    const int32_t CANCEL_REQUEST_CODE "PGW_CANCEL_REQUEST_CODE"
    const int32_t SSL_REQUEST_CODE "PGW_SSL_REQUEST_CODE"
    const int32_t GSSENC_REQUEST_CODE "PGW_GSSENC_REQUEST_CODE"


cdef enum:
    # Limits (see pg_wire/tags.py for where they come from).
    SMALL_MESSAGE_LIMIT = 30000
    SMALL_FRONTEND_MESSAGE_LIMIT = 10000
    AUTH_MESSAGE_LIMIT = 65535
    MAX_STARTUP_PACKET_SIZE = 10000
    MIN_CANCEL_KEY_LENGTH = 4
    MAX_CANCEL_KEY_LENGTH = 256
    MAX_PARAMETERS = 65535
