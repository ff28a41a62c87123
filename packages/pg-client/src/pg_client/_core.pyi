"""Types of the compiled protocol core (_core.pyx)."""

from collections import deque
from collections.abc import Callable
from typing import Any

from pg_codecs import WriteBuffer
from pg_wire import ExtendedReply, MessageReader

from .exceptions import PostgresError, PostgresLogMessage

AUTH: int
KEY_DATA: int
BIND_COMPLETE: int
CLOSE_COMPLETE: int
COMMAND_COMPLETE: int
COPY_DATA: int
COPY_DONE: int
COPY_IN: int
COPY_OUT: int
COPY_BOTH: int
DATA_ROW: int
EMPTY_QUERY: int
ERROR: int
NOTICE: int
NOTIFICATION: int
NEGOTIATE: int
NO_DATA: int
PARAM_DESC: int
PARAM_STATUS: int
PARSE_COMPLETE: int
PORTAL_SUSPENDED: int
READY: int
ROW_DESC: int

class Operation:
    waiter: Any
    error: BaseException | None
    abandoned: bool
    query: str | None
    reply: Any
    status: str | None
    sent: bool
    on_done: Callable[[Operation], None] | None
    copy_chunks: deque[bytearray] | None
    def __init__(self, waiter: Any, query: str | None = None) -> None: ...
    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None: ...
    def on_error(self, core: ProtocolCore, exc: PostgresError) -> None: ...
    def rows_done(self) -> None: ...
    def result(self) -> Any: ...
    def finish(self, core: ProtocolCore) -> None: ...
    def fail(self, exc: BaseException) -> None: ...

class ExecuteOp(Operation):
    reply: ExtendedReply
    def __init__(self, waiter: Any, query: str | None, row_decoder: Any,
                 multi: bool = False) -> None: ...

class ExecuteManyOp(ExecuteOp):
    def __init__(self, waiter: Any, query: str) -> None: ...  # type: ignore[override]

class ProtocolCore:
    reader: MessageReader
    out: WriteBuffer
    pending: deque[Operation]
    transaction_status: str
    parameters: dict[str, str]
    backend_pid: int
    backend_key: bytes
    closed: bool
    fatal_error: BaseException | None
    termination_notice: PostgresError | None
    loss_reported: bool
    on_notification: Callable[[int, str, str], None] | None
    on_notice: Callable[[PostgresLogMessage], None] | None
    on_parameter: Callable[[str, str], None] | None
    def __init__(self, *, max_message_size: int | None = None) -> None: ...
    def push(self, op: Operation) -> None: ...
    @property
    def busy(self) -> bool: ...
    def data_received(self, data: bytes) -> None: ...
    def dispatch(self, tag: int, payload: bytes) -> None: ...
    def unexpected(self, tag: int, op: Operation) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def lost_error(self, exc: BaseException | None, *, request_sent: bool) -> BaseException: ...
    def check_usable(self) -> None: ...

class StreamProtocol:
    core: ProtocolCore
    transport: Any
    lost: bool
    data_events: int
    def __init__(self, core: ProtocolCore) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def _protocol_failure(self, exc: BaseException) -> None: ...
    def flush(self) -> None: ...
    def send(self, op: Operation) -> Any: ...
    def send_bind_execute(self, waiter: Any, portal: str, statement: str, encoder: Any,
                          args: Any, result_formats: Any, max_rows: int, query: str | None,
                          row_decoder: Any) -> ExecuteOp: ...
