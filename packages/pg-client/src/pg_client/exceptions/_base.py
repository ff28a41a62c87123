"""Base classes of pg_client's exceptions, and client-side errors.

Server messages (ErrorResponse, NoticeResponse) become instances of
``PostgresMessage`` subclasses; the errors the client raises by itself
(``InterfaceError``, ``InternalClientError`` and their subclasses) live here
too. The per-SQLSTATE classes are generated into ``_sqlstate.py``.

Knows nothing about sockets or the wire format: the caller parses the
message and hands over its fields as a dict keyed by the one-letter field
codes of "Error and Notice Message Fields" (``{'C': '23505', 'M': ...}``).

How it works:

* Every subclass of ``PostgresMessage`` that sets ``sqlstate`` in its own
  body is entered in ``PostgresMessage._registry`` (SQLSTATE -> class) when
  the class is created. Two classes claiming one code is a TypeError.
* ``PostgresError.new(fields)`` looks the code up: an exact match, else
  ``UnknownPostgresError`` (asyncpg's rule; the SQLSTATE class is not
  used). The instance gets every known field as an
  attribute; fields the server did not send read as None.
* Server text is data. It is joined into strings, never used as a format
  string, and only the fields below are kept: nothing from the connection
  (DSN, password) is ever stored on an exception.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = (
    'ClientConfigurationError',
    'FatalPostgresError',
    'InterfaceError',
    'InterfaceWarning',
    'InternalClientError',
    'OutdatedSchemaCacheError',
    'PostgresError',
    'PostgresLogMessage',
    'ProtocolError',
    'TargetServerAttributeNotMatched',
    'UnknownPostgresError',
    'UnsupportedClientFeatureError',
    'UnsupportedServerFeatureError',
)

# "Error and Notice Message Fields": field code -> attribute name.
_FIELDS: dict[str, str] = {
    'S': 'severity',
    'V': 'severity_en',
    'C': 'sqlstate',
    'M': 'message',
    'D': 'detail',
    'H': 'hint',
    'P': 'position',
    'p': 'internal_position',
    'q': 'internal_query',
    'W': 'context',
    's': 'schema_name',
    't': 'table_name',
    'c': 'column_name',
    'd': 'data_type_name',
    'n': 'constraint_name',
    'F': 'server_source_filename',
    'L': 'server_source_line',
    'R': 'server_source_function',
}

# Appended to the hint of "prepared statement does not exist / already
# exists" errors, which almost always mean a transaction-pooling proxy.
_POOLER_NOTE = (
    '\nNOTE: this usually means the connection goes through a pooler such '
    'as pgbouncer in "transaction" or "statement" pool_mode, which does not '
    'keep prepared statements per client. Either pool connections with '
    "pg_client's own pool instead, or connect with statement_cache_size=0."
)
_PREPARED_STATEMENT_CODES = frozenset({
    '26000',  # invalid_sql_statement_name
    '42P05',  # duplicate_prepared_statement
})


class PostgresMessage:
    """Fields of a server ErrorResponse or NoticeResponse.

    Each attribute holds the server's text for one field, or None when the
    server did not send it. ``position``, ``internal_position`` and
    ``server_source_line`` are kept as the server sent them (strings).
    ``query`` is the SQL the client was running, when known.
    """

    _field_map: ClassVar[dict[str, str]] = _FIELDS
    _registry: ClassVar[dict[str, type[PostgresMessage]]] = {}

    severity: str | None = None
    severity_en: str | None = None
    sqlstate: str | None = None
    message: str | None = None
    detail: str | None = None
    hint: str | None = None
    position: str | None = None
    internal_position: str | None = None
    internal_query: str | None = None
    context: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    data_type_name: str | None = None
    constraint_name: str | None = None
    server_source_filename: str | None = None
    server_source_line: str | None = None
    server_source_function: str | None = None
    query: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get('sqlstate')
        if code is None:
            return
        existing = PostgresMessage._registry.get(code)
        if existing is not None:
            raise TypeError(
                f'{cls.__name__} has SQLSTATE {code}, which '
                f'{existing.__name__} already has')
        PostgresMessage._registry[code] = cls

    @classmethod
    def _class_for_sqlstate(cls, code: str | None) -> type[PostgresMessage]:
        """The class registered for exactly *code* (asyncpg's rule)."""
        if code:
            found = PostgresMessage._registry.get(code)
            if found is not None:
                return found
        return UnknownPostgresError

    @classmethod
    def _resolve(
        cls, fields: dict[str, str], query: str | None,
    ) -> tuple[type[PostgresMessage], str, dict[str, Any]]:
        """Return the class for *fields*, its message and its attributes."""
        attrs: dict[str, Any] = {'query': query}
        for code, value in fields.items():
            name = _FIELDS.get(code)
            if name is not None:
                attrs[name] = value

        msgcls = cls._class_for_sqlstate(fields.get('C'))
        message = attrs.get('message') or ''

        # A prepared statement whose result type changed under it: the
        # server calls it feature_not_supported; tell it apart by the
        # reporting function, since the message text is localised.
        registry = PostgresMessage._registry
        if (msgcls is registry.get('0A000')
                and attrs.get('server_source_function')
                == 'RevalidateCachedQuery'):
            from ._sqlstate import InvalidCachedStatementError
            msgcls = InvalidCachedStatementError
            message = ('cached statement plan is invalid due to a database '
                       'schema or configuration change')

        if fields.get('C') in _PREPARED_STATEMENT_CODES:
            attrs['hint'] = (attrs.get('hint') or '') + _POOLER_NOTE

        return msgcls, message, attrs

    def as_dict(self) -> dict[str, str]:
        """The fields the server sent, by attribute name (no ``query``)."""
        result = {}
        for name in _FIELDS.values():
            value = getattr(self, name)
            if value is not None:
                result[name] = value
        return result


def _with_detail_and_hint(text: str, detail: object, hint: object) -> str:
    if detail:
        text += '\nDETAIL:  ' + str(detail)
    if hint:
        text += '\nHINT:  ' + str(hint)
    return text


class PostgresError(PostgresMessage, Exception):
    """Base class for all errors reported by the server."""

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else (self.message or '')
        return _with_detail_and_hint(text, self.detail, self.hint)

    @classmethod
    def new(
        cls, fields: dict[str, str], query: str | None = None,
    ) -> PostgresError:
        """Build the exception for an ErrorResponse.

        :param fields: The message's fields, keyed by one-letter field code.
        :param query: The SQL being run, kept as the ``query`` attribute.
        :return: An instance of the class registered for the SQLSTATE
            (field ``C``), of its SQLSTATE class, or UnknownPostgresError.
        """
        exccls, message, attrs = cls._resolve(fields, query)
        if not issubclass(exccls, PostgresError):
            # A warning-class code in an ErrorResponse: still an error.
            exccls = UnknownPostgresError
        exc = exccls(message)
        exc.__dict__.update(attrs)
        return exc


class FatalPostgresError(PostgresError):
    """A fatal error that should result in server disconnection."""


class UnknownPostgresError(FatalPostgresError):
    """An error whose SQLSTATE, and SQLSTATE class, is unknown."""


class InterfaceMessage:
    """Detail and hint of a client-side error or warning."""

    args: tuple[Any, ...]

    def __init__(self, *, detail: str | None = None,
                 hint: str | None = None) -> None:
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else ''
        return _with_detail_and_hint(text, self.detail, self.hint)


class InterfaceError(InterfaceMessage, Exception):
    """The pg_client API was used in a way it does not allow."""

    def __init__(self, msg: str, *, detail: str | None = None,
                 hint: str | None = None) -> None:
        InterfaceMessage.__init__(self, detail=detail, hint=hint)
        Exception.__init__(self, msg)

    def with_msg(self, msg: str) -> InterfaceError:
        """A copy with message *msg*, same detail, hint and traceback."""
        copy = type(self)(msg, detail=self.detail, hint=self.hint)
        return copy.with_traceback(self.__traceback__)


class DataError(InterfaceError, ValueError):
    """A query argument is invalid (asyncpg keeps this class in its _base).

    Not exported: ``pg_client.exceptions.DataError`` is the SQLSTATE 22000
    class, which is what the client raises, as asyncpg does.
    """


class ClientConfigurationError(InterfaceError, ValueError):
    """The client was configured with an invalid or conflicting setting."""


class UnsupportedClientFeatureError(InterfaceError):
    """The requested feature is not supported by pg_client."""


class UnsupportedServerFeatureError(InterfaceError):
    """The requested feature is not supported by the server."""


class InterfaceWarning(InterfaceMessage, UserWarning):
    """A warning about questionable use of the pg_client API."""

    def __init__(self, msg: str, *, detail: str | None = None,
                 hint: str | None = None) -> None:
        InterfaceMessage.__init__(self, detail=detail, hint=hint)
        UserWarning.__init__(self, msg)


class InternalClientError(Exception):
    """An unexpected condition inside the client; a bug if ever seen."""


class ProtocolError(InternalClientError):
    """The server sent something the protocol does not allow here."""


class TargetServerAttributeNotMatched(InternalClientError):
    """No host matched the requested target_session_attrs."""


class OutdatedSchemaCacheError(InternalClientError):
    """A row could not be decoded: a type changed after it was introspected.

    :ivar schema_name: Schema of the changed type, when known.
    :ivar data_type_name: Name of the changed type, when known.
    :ivar position: Column position, when known.
    """

    def __init__(self, msg: str, *, schema: str | None = None,
                 data_type: str | None = None,
                 position: str | int | None = None) -> None:
        super().__init__(msg)
        self.schema_name = schema
        self.data_type_name = data_type
        self.position = position


class PostgresLogMessage(PostgresMessage):
    """A message from the server that is not an error (NoticeResponse).

    Instances are read-only. ``new()`` returns PostgresWarning (or its
    subclass) for warnings, and, like asyncpg, an instance of the error
    class when a notice carries an error SQLSTATE (``CREATE TABLE IF NOT
    EXISTS`` reports duplicate_table as a NOTICE).
    """

    def __str__(self) -> str:
        return f'{type(self).__name__}: {self.message}'

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError(f'instances of {type(self).__name__} are immutable')

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        # Unpickling sets the fields directly, past __setattr__.
        if state:
            self.__dict__.update(state)

    @classmethod
    def new(
        cls, fields: dict[str, str], query: str | None = None,
    ) -> PostgresMessage:
        """Build the message object for a NoticeResponse.

        :param fields: The message's fields, keyed by one-letter field code.
        :param query: The SQL being run, kept as the ``query`` attribute.
        :return: A PostgresLogMessage, a PostgresWarning subclass for
            warnings, or the error class registered for the SQLSTATE.
        """
        msgcls, message, attrs = cls._resolve(fields, query)
        if msgcls is UnknownPostgresError:
            msgcls = PostgresLogMessage
        if msgcls is PostgresLogMessage:
            severity = attrs.get('severity_en') or attrs.get('severity')
            if severity and severity.upper() == 'WARNING':
                msgcls = PostgresMessage._registry['01000']

        msg: PostgresMessage
        if issubclass(msgcls, BaseException):
            msg = msgcls(message)
        else:
            msg = msgcls()
        msg.__dict__.update(attrs)
        return msg
