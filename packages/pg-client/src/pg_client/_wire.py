"""pg-client's view of pg-wire: the few names the protocol code calls.

Mostly direct re-exports of pg_wire's readers, parsers and writers, plus the
adapters that give them the shapes the protocol core wants (a Bind whose
parameters a pg-codecs ParamEncoder writes in place, a CancelRequest as
bytes, protocol versions as minor numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pg_codecs import WriteBuffer
from pg_wire._reader import (
    ExtendedReply,
    MessageReader,
    RawRowDecoder,
    parse_authentication,
    parse_command_complete,
    parse_copy_response,
    parse_negotiate_protocol_version,
    parse_parameter_description,
    parse_parameter_status,
    parse_ready_for_query,
    parse_row_description,
)
from pg_wire._reader import parse_error_response as parse_error_fields
from pg_wire._reader import parse_notification_response as parse_notification
from pg_wire._writer import (
    abort_message,
    end_bind,
    start_bind,
    write_bind_execute,
    write_cancel_request,
    write_close,
    write_copy_data,
    write_copy_done,
    write_copy_fail,
    write_copy_records,
    write_describe,
    write_execute,
    write_parse,
    write_query,
    write_sasl_initial_response,
    write_sasl_response,
    write_startup_message,
    write_sync,
    write_terminate,
)
from pg_wire._writer import write_password_message as write_password

PROTOCOL_3_0 = 196608

__all__ = [
    "ExtendedReply", "MessageReader", "new_reader", "skip_rows_decoder", "write_bind_execute",
    "parse_authentication", "parse_backend_key_data", "parse_command_complete",
    "parse_copy_response_format", "parse_error_fields", "parse_negotiate_protocol_version",
    "parse_notification", "parse_parameter_description", "parse_parameter_status",
    "parse_ready_for_query", "parse_row_description", "write_bind", "write_close",
    "write_copy_data", "write_copy_done", "write_copy_fail", "write_copy_records",
    "write_describe", "write_execute", "write_parse", "write_password", "write_query",
    "write_sasl_initial_response", "write_sasl_response", "write_startup", "write_sync",
    "write_terminate", "cancel_request",
]


def new_reader(max_message_size: int | None = None) -> MessageReader:
    if max_message_size is None:
        return MessageReader()
    return MessageReader(max_message_size=max_message_size)


def skip_rows_decoder() -> Any:
    """A decoder for the rest of a result whose rows are not wanted."""
    return RawRowDecoder()


def parse_backend_key_data(payload: bytes, minor: int) -> tuple[int, bytes]:
    from pg_wire._reader import parse_backend_key_data as parse

    return parse(payload, PROTOCOL_3_0 + minor)


def parse_copy_response_format(payload: bytes) -> int:
    return parse_copy_response(payload)[0]


def write_startup(out: WriteBuffer, params: dict[str, str], minor: int) -> None:
    write_startup_message(out, params, PROTOCOL_3_0 + minor)


def write_bind(out: WriteBuffer, portal: str, statement: str, encoder: Any,
               args: Sequence[Any], result_formats: Any) -> None:
    """Bind with the arguments encoded straight into *out* by *encoder*."""
    start_bind(out, portal, statement)
    try:
        encoder.write_params(out, args)
    except BaseException:
        abort_message(out)  # leave no half-built Bind in the buffer
        raise
    end_bind(out, result_formats)


def cancel_request(pid: int, key: bytes, minor: int) -> bytes:
    buf = WriteBuffer()
    write_cancel_request(buf, pid, key)
    return bytes(buf)
