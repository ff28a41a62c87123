"""Constants of the v3 protocol: message tags, request codes, versions, limits.

Tags are one-byte ``bytes`` objects named after the message in the
PostgreSQL docs ("Message Formats"), so they compare equal to the tag
:meth:`pg_wire.MessageReader.read_message` returns. Cython code uses the
``char`` constants of ``pg_wire/_tags.pxd`` instead; both spell the same
bytes. Knows nothing else.

Some tags are shared: ``b"D"`` is DataRow from a server but Describe from a
client, ``b"C"`` CommandComplete or Close, ``b"S"`` ParameterStatus or Sync,
``b"E"`` ErrorResponse or Execute, ``b"H"`` CopyOutResponse or Flush, and
``b"p"`` carries PasswordMessage, SASLInitialResponse, SASLResponse and
GSSResponse alike (the server knows which one it asked for).
"""

from __future__ import annotations

from typing import Final

# -- Backend (server to client) message tags -----------------------------------

AUTHENTICATION_TAG: Final = b"R"
BACKEND_KEY_DATA_TAG: Final = b"K"
BIND_COMPLETE_TAG: Final = b"2"
CLOSE_COMPLETE_TAG: Final = b"3"
COMMAND_COMPLETE_TAG: Final = b"C"
COPY_BOTH_RESPONSE_TAG: Final = b"W"
COPY_IN_RESPONSE_TAG: Final = b"G"
COPY_OUT_RESPONSE_TAG: Final = b"H"
DATA_ROW_TAG: Final = b"D"
EMPTY_QUERY_RESPONSE_TAG: Final = b"I"
ERROR_RESPONSE_TAG: Final = b"E"
FUNCTION_CALL_RESPONSE_TAG: Final = b"V"
NEGOTIATE_PROTOCOL_VERSION_TAG: Final = b"v"
NO_DATA_TAG: Final = b"n"
NOTICE_RESPONSE_TAG: Final = b"N"
NOTIFICATION_RESPONSE_TAG: Final = b"A"
PARAMETER_DESCRIPTION_TAG: Final = b"t"
PARAMETER_STATUS_TAG: Final = b"S"
PARSE_COMPLETE_TAG: Final = b"1"
PORTAL_SUSPENDED_TAG: Final = b"s"
READY_FOR_QUERY_TAG: Final = b"Z"
ROW_DESCRIPTION_TAG: Final = b"T"

# -- Sent by both sides --------------------------------------------------------

COPY_DATA_TAG: Final = b"d"
COPY_DONE_TAG: Final = b"c"

# -- Frontend (client to server) message tags ----------------------------------

BIND_TAG: Final = b"B"
CLOSE_TAG: Final = b"C"
COPY_FAIL_TAG: Final = b"f"
DESCRIBE_TAG: Final = b"D"
EXECUTE_TAG: Final = b"E"
FLUSH_TAG: Final = b"H"
FUNCTION_CALL_TAG: Final = b"F"
GSS_RESPONSE_TAG: Final = b"p"
PARSE_TAG: Final = b"P"
PASSWORD_MESSAGE_TAG: Final = b"p"
QUERY_TAG: Final = b"Q"
SASL_INITIAL_RESPONSE_TAG: Final = b"p"
SASL_RESPONSE_TAG: Final = b"p"
SYNC_TAG: Final = b"S"
TERMINATE_TAG: Final = b"X"

#: What MessageReader reports as the tag of an untagged startup packet
#: (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
STARTUP_PACKET_TAG: Final = b""

BACKEND_TAGS: Final = frozenset(
    {
        AUTHENTICATION_TAG, BACKEND_KEY_DATA_TAG, BIND_COMPLETE_TAG, CLOSE_COMPLETE_TAG,
        COMMAND_COMPLETE_TAG, COPY_BOTH_RESPONSE_TAG, COPY_DATA_TAG, COPY_DONE_TAG,
        COPY_IN_RESPONSE_TAG, COPY_OUT_RESPONSE_TAG, DATA_ROW_TAG, EMPTY_QUERY_RESPONSE_TAG,
        ERROR_RESPONSE_TAG, FUNCTION_CALL_RESPONSE_TAG, NEGOTIATE_PROTOCOL_VERSION_TAG,
        NO_DATA_TAG, NOTICE_RESPONSE_TAG, NOTIFICATION_RESPONSE_TAG, PARAMETER_DESCRIPTION_TAG,
        PARAMETER_STATUS_TAG, PARSE_COMPLETE_TAG, PORTAL_SUSPENDED_TAG, READY_FOR_QUERY_TAG,
        ROW_DESCRIPTION_TAG,
    }
)  # fmt: skip

FRONTEND_TAGS: Final = frozenset(
    {
        BIND_TAG, CLOSE_TAG, COPY_DATA_TAG, COPY_DONE_TAG, COPY_FAIL_TAG, DESCRIBE_TAG,
        EXECUTE_TAG, FLUSH_TAG, FUNCTION_CALL_TAG, PARSE_TAG, PASSWORD_MESSAGE_TAG, QUERY_TAG,
        SYNC_TAG, TERMINATE_TAG,
    }
)  # fmt: skip

#: Backend messages that may be longer than SMALL_MESSAGE_LIMIT. libpq's list
#: ("T", "D", "d", "V", "E", "N", "A") plus ParameterDescription ("t"): a
#: statement with more than 7,499 parameters (the protocol allows 65,535)
#: describes them in more than 30,000 bytes.
LONG_BACKEND_TAGS: Final = frozenset(
    {
        ROW_DESCRIPTION_TAG, DATA_ROW_TAG, COPY_DATA_TAG, FUNCTION_CALL_RESPONSE_TAG,
        ERROR_RESPONSE_TAG, NOTICE_RESPONSE_TAG, NOTIFICATION_RESPONSE_TAG,
        PARAMETER_DESCRIPTION_TAG,
    }
)  # fmt: skip

# -- Authentication request codes (Message Formats: Authentication*) -----------

AUTHENTICATION_OK: Final = 0
AUTHENTICATION_KERBEROS_V5: Final = 2
AUTHENTICATION_CLEARTEXT_PASSWORD: Final = 3
AUTHENTICATION_MD5_PASSWORD: Final = 5
AUTHENTICATION_GSS: Final = 7
AUTHENTICATION_GSS_CONTINUE: Final = 8
AUTHENTICATION_SSPI: Final = 9
AUTHENTICATION_SASL: Final = 10
AUTHENTICATION_SASL_CONTINUE: Final = 11
AUTHENTICATION_SASL_FINAL: Final = 12

# -- Startup packet codes and protocol versions --------------------------------

#: Version numbers: major version in the high 16 bits, minor in the low 16.
PROTOCOL_3_0: Final = 196608  # 3 << 16
PROTOCOL_3_2: Final = 196610  # (3 << 16) | 2; PostgreSQL 18 and later
#: Never used by any server (skipped because old PgBouncer releases claimed it).
PROTOCOL_3_1_RESERVED: Final = 196609

CANCEL_REQUEST_CODE: Final = 80877102  # (1234 << 16) | 5678
SSL_REQUEST_CODE: Final = 80877103  # (1234 << 16) | 5679
GSSENC_REQUEST_CODE: Final = 80877104  # (1234 << 16) | 5680

# -- Field values --------------------------------------------------------------

#: ReadyForQuery transaction status indicators.
TRANSACTION_IDLE: Final = "I"
TRANSACTION_IN_BLOCK: Final = "T"
TRANSACTION_FAILED: Final = "E"

#: Format codes (Formats and Format Codes).
FORMAT_TEXT: Final = 0
FORMAT_BINARY: Final = 1

#: Describe / Close targets.
STATEMENT: Final = "S"
PORTAL: Final = "P"

# -- Limits --------------------------------------------------------------------

#: Largest message (value of its length field) anyone may send: the server's
#: MaxAllocSize - 1, the same as pg_codecs' WriteBuffer limit.
MAX_MESSAGE_SIZE: Final = 0x3FFFFFFF
#: libpq's bound for backend messages not in LONG_BACKEND_TAGS.
SMALL_MESSAGE_LIMIT: Final = 30000
#: The server's bound on frontend messages it considers short (Close,
#: Describe, Execute, Flush, Sync, Terminate, CopyDone, CopyFail).
SMALL_FRONTEND_MESSAGE_LIMIT: Final = 10000
#: The server's bound on authentication responses ("p" messages).
AUTH_MESSAGE_LIMIT: Final = 65535
#: The server's bound on startup packets (length field included).
MAX_STARTUP_PACKET_SIZE: Final = 10000
#: Cancel keys: exactly 4 bytes in protocol 3.0, 4 to 256 bytes in 3.2.
MIN_CANCEL_KEY_LENGTH: Final = 4
MAX_CANCEL_KEY_LENGTH: Final = 256
#: Most parameters (and format codes, and result columns) one message can
#: carry: the counts are 16-bit and the server reads them unsigned.
MAX_PARAMETERS: Final = 65535
