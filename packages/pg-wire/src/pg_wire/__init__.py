"""Sans-I/O PostgreSQL v3 protocol: message framing and authentication exchanges.

pg-wire turns bytes into protocol messages and messages into bytes, in both
directions, without touching a socket or an event loop: the caller feeds
received bytes to a :class:`MessageReader` and sends what the writers put in
a ``pg_codecs.WriteBuffer``. It never interprets a column value: DataRow
payloads go to a ``pg_codecs.RowDecoder`` at C level.

* :class:`MessageReader` and the ``parse_*`` functions: incoming messages;
* the ``write_*`` functions (and ``start_bind``/``end_bind``): outgoing ones;
* :mod:`pg_wire.messages`: a dataclass per message, both directions, for
  tests, proxies and fake servers; :mod:`pg_wire.backend`: the server side;
* :mod:`pg_wire.auth`: MD5, SCRAM-SHA-256(-PLUS), require_auth;
* :mod:`pg_wire.tags`: tags, protocol versions and limits.
"""

from __future__ import annotations

from pg_wire import auth, tags
from pg_wire._reader import (
    ExtendedReply,
    MessageReader,
    RawRowDecoder,
    parse_authentication,
    parse_backend_key_data,
    parse_command_complete,
    parse_copy_response,
    parse_data_row,
    parse_error_response,
    parse_function_call_response,
    parse_negotiate_protocol_version,
    parse_notification_response,
    parse_parameter_description,
    parse_parameter_status,
    parse_ready_for_query,
    parse_row_description,
)
from pg_wire._writer import (
    abort_message,
    end_bind,
    start_bind,
    write_bind,
    write_bind_execute,
    write_bind_params,
    write_cancel_request,
    write_close,
    write_copy_data,
    write_copy_done,
    write_copy_fail,
    write_copy_records,
    write_describe,
    write_execute,
    write_flush,
    write_function_call,
    write_gss_response,
    write_gssenc_request,
    write_parse,
    write_password_message,
    write_query,
    write_sasl_initial_response,
    write_sasl_response,
    write_ssl_request,
    write_startup_message,
    write_sync,
    write_terminate,
)
from pg_wire.errors import FramingError, ProtocolError, ProtocolVersionError
from pg_wire.tags import PROTOCOL_3_0, PROTOCOL_3_2

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_3_0",
    "PROTOCOL_3_2",
    "ExtendedReply",
    "FramingError",
    "MessageReader",
    "ProtocolError",
    "ProtocolVersionError",
    "RawRowDecoder",
    "__version__",
    "abort_message",
    "auth",
    "end_bind",
    "parse_authentication",
    "parse_backend_key_data",
    "parse_command_complete",
    "parse_copy_response",
    "parse_data_row",
    "parse_error_response",
    "parse_function_call_response",
    "parse_negotiate_protocol_version",
    "parse_notification_response",
    "parse_parameter_description",
    "parse_parameter_status",
    "parse_ready_for_query",
    "parse_row_description",
    "start_bind",
    "tags",
    "write_bind",
    "write_bind_execute",
    "write_bind_params",
    "write_cancel_request",
    "write_close",
    "write_copy_data",
    "write_copy_done",
    "write_copy_fail",
    "write_copy_records",
    "write_describe",
    "write_execute",
    "write_flush",
    "write_function_call",
    "write_gss_response",
    "write_gssenc_request",
    "write_parse",
    "write_password_message",
    "write_query",
    "write_sasl_initial_response",
    "write_sasl_response",
    "write_ssl_request",
    "write_startup_message",
    "write_sync",
    "write_terminate",
]
