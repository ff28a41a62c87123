"""Connection parameters: from connect()'s arguments to a resolved configuration.

Turns a DSN (URI or libpq keyword/value form), the keyword arguments of
``connect()``, a connection service file, the ``PG*`` environment variables,
a password file and built-in defaults into one frozen
:class:`ConnectionParameters`. Pure: the only I/O is reading local files
(service file, password file, TLS material in :func:`make_ssl_context`). It
knows nothing about sockets, asyncio or the protocol; ``connection.py`` calls
:func:`resolve` once per ``connect()`` and then, per host it dials,
:func:`obtain_password` (or :func:`password_for`) and :func:`make_ssl_context`.

How it works
------------

Every option is looked up layer by layer, first hit wins; an empty string
counts as "not set" in every layer::

    1. keyword arguments of resolve()/connect()
    2. the DSN (parse_dsn())
    3. the service file section named by service= / PGSERVICE
    4. the PG* environment variables (one per option, see _OPTIONS)
    5. built-in defaults

That is asyncpg's precedence (``connect_utils._parse_connect_dsn_and_args``);
the layers are just made explicit. Hosts and ports are special:

* The host list comes from the first layer that has one. A ``host:port``
  written inside a host list (URI netloc, ``?host=h:5433``, ``PGHOST``) is an
  *embedded* port: it counts only when that same layer supplied the hosts.
  An explicit ``port`` in the same layer overrides embedded ports, except
  that ``PGPORT`` is only the default for ``PGHOST`` entries (asyncpg).
* Each host's port is then the first non-empty entry found walking the
  layers top-down (a one-element list applies to every host; a longer list
  must have one entry per host), else 5432.

Secrets: the password and sslpassword are kept in :class:`Secret`, and no
``repr()``/``str()`` of anything defined here shows them. Error messages
never quote text taken from a DSN, a service file or the environment (a
mis-quoted DSN can put part of a password into any field); they name the
option and its source instead. Values are only quoted when they came from a
keyword argument. Nothing here ever imports code named by configuration.
"""

from __future__ import annotations

import dataclasses
import enum
import getpass
import hmac
import inspect
import ipaddress
import math
import os
import pathlib
import re
import ssl as ssl_module
import stat
import sys
import types
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from pg_client.exceptions import ClientConfigurationError, InterfaceError

__all__ = (
    'DEFAULT_PORT',
    'ConnectionConfiguration',
    'ConnectionParameters',
    'DSNOptions',
    'HostSpec',
    'PasswordCallable',
    'SSLMode',
    'SSLNegotiation',
    'SSLSettings',
    'Secret',
    'SessionAttribute',
    'make_ssl_context',
    'obtain_password',
    'parse_dsn',
    'password_for',
    'resolve',
)

DEFAULT_PORT = 5432

_IS_WINDOWS = sys.platform == 'win32'

# Where asyncpg (and libpq's usual builds) look for a server when no host is
# configured, in this order.
_DEFAULT_HOSTS: tuple[str, ...] = (
    ('localhost',) if _IS_WINDOWS else
    ('/run/postgresql', '/var/run/postgresql', '/tmp', '/private/tmp', 'localhost')
)

# libpq reads the system service file from its compiled-in SYSCONFDIR unless
# PGSYSCONFDIR is set. We have no compile time, so we try the values the
# common libpq builds use: Debian/Ubuntu, PGDG RPMs, upstream default.
_SYSCONFDIR_CANDIDATES: tuple[str, ...] = (
    '/etc/postgresql-common', '/etc/sysconfig/pgsql', '/usr/local/pgsql/etc',
)

_PASSFILE_NAME = 'pgpass.conf' if _IS_WINDOWS else '.pgpass'
_SERVICEFILE_NAME = '.pg_service.conf'

# ---------------------------------------------------------------------------
# The options we understand, with the environment variable consulted for each
# (None: no variable). asyncpg's variables are all here. For options asyncpg
# lacks, we read libpq's variable; application_name and options stay plain
# server settings as in asyncpg, so PGAPPNAME/PGOPTIONS are not read.
# ---------------------------------------------------------------------------
_OPTIONS: Mapping[str, str | None] = types.MappingProxyType({
    'host': 'PGHOST',
    'hostaddr': 'PGHOSTADDR',
    'port': 'PGPORT',
    'dbname': 'PGDATABASE',
    'user': 'PGUSER',
    'password': 'PGPASSWORD',
    'passfile': 'PGPASSFILE',
    'service': 'PGSERVICE',
    'servicefile': 'PGSERVICEFILE',
    'sslmode': 'PGSSLMODE',
    'sslcert': 'PGSSLCERT',
    'sslkey': 'PGSSLKEY',
    'sslrootcert': 'PGSSLROOTCERT',
    'sslcrl': 'PGSSLCRL',
    'sslcrldir': 'PGSSLCRLDIR',
    'sslpassword': None,
    'sslcertmode': 'PGSSLCERTMODE',
    'sslnegotiation': 'PGSSLNEGOTIATION',
    'sslsni': 'PGSSLSNI',
    'ssl_min_protocol_version': 'PGSSLMINPROTOCOLVERSION',
    'ssl_max_protocol_version': 'PGSSLMAXPROTOCOLVERSION',
    'target_session_attrs': 'PGTARGETSESSIONATTRS',
    'krbsrvname': 'PGKRBSRVNAME',
    'gsslib': 'PGGSSLIB',
    'gssencmode': None,
    'channel_binding': 'PGCHANNELBINDING',
    'require_auth': 'PGREQUIREAUTH',
    'min_protocol_version': 'PGMINPROTOCOLVERSION',
    'max_protocol_version': 'PGMAXPROTOCOLVERSION',
    'load_balance_hosts': 'PGLOADBALANCEHOSTS',
    'connect_timeout': 'PGCONNECT_TIMEOUT',
    'keepalives': None,
    'keepalives_idle': None,
    'keepalives_interval': None,
    'keepalives_count': None,
    'tcp_user_timeout': None,
    'application_name': None,
    'fallback_application_name': None,
    'options': None,
})

# libpq options we do not implement: refused rather than sent to the server
# as settings, unless set to the value that means "off".
_UNSUPPORTED_OPTIONS: Mapping[str, str | None] = types.MappingProxyType({
    'requirepeer': None,
    'gssdelegation': '0',
    'sslcompression': '0',
    'scram_client_key': None,
    'scram_server_key': None,
    'oauth_issuer': None,
    'oauth_client_id': None,
    'oauth_client_secret': None,
    'oauth_scope': None,
})

# Parameters of connect() that are not connection options. A DSN naming one
# of them is refused (S14: a DSN never selects code or client behaviour
# outside the documented options), instead of being sent as a server setting.
_CONNECT_ONLY_NAMES = frozenset({
    'loop', 'timeout', 'statement_cache_size', 'max_cached_statement_lifetime',
    'max_cacheable_statement_size', 'command_timeout', 'ssl', 'direct_tls',
    'connection_class', 'record_class', 'server_settings',
})

_SECRET_OPTIONS = frozenset({'password', 'sslpassword'})

# Other spellings parse_dsn() maps onto an option.
_KEYWORD_ALIASES = frozenset({'database', 'requiressl'})

# C isspace() in the "C" locale: what libpq skips in keyword/value strings.
_C_SPACE = frozenset(' \t\n\r\f\v')


# ---------------------------------------------------------------------------
# Enums (asyncpg.connect_utils names and values)
# ---------------------------------------------------------------------------

class SSLMode(enum.IntEnum):
    """libpq's sslmode values, ordered from weakest to strongest."""

    disable = 0
    allow = 1
    prefer = 2
    require = 3
    verify_ca = 4
    verify_full = 5

    @classmethod
    def parse(cls, sslmode: str | SSLMode) -> SSLMode:
        """Map ``'verify-full'`` (or ``'verify_full'``, or a member) to a member.

        Raises AttributeError for an unknown name, as asyncpg's does.
        """
        if isinstance(sslmode, cls):
            return sslmode
        member = cls.__members__.get(str(sslmode).replace('-', '_'))
        if member is None:
            raise AttributeError(sslmode)
        return member


class SSLNegotiation(str, enum.Enum):
    """How TLS starts: after an SSLRequest (``postgres``) or at once (``direct``)."""

    postgres = 'postgres'
    direct = 'direct'


class SessionAttribute(str, enum.Enum):
    """Values of target_session_attrs."""

    any = 'any'
    primary = 'primary'
    standby = 'standby'
    prefer_standby = 'prefer-standby'
    read_write = 'read-write'
    read_only = 'read-only'


# ---------------------------------------------------------------------------
# Secret
# ---------------------------------------------------------------------------

class Secret:
    """A string that never shows itself in ``repr()``, ``str()`` or f-strings.

    Call :meth:`reveal` at the one place that needs the value (building the
    password message, decrypting the key).
    """

    __slots__ = ('_value',)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError('Secret holds a str')
        self._value = value

    def reveal(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode('utf-8'),
                                   other._value.encode('utf-8'))

    def __hash__(self) -> int:
        return hash((Secret, self._value))


PasswordCallable = Callable[[], str | Awaitable[str]]
"""A password given as a callable, called for every connection attempt."""


class DSNOptions(dict[str, str]):
    """The options found in a DSN; a dict whose repr masks secret values."""

    def __repr__(self) -> str:
        shown = ', '.join(
            f'{key!r}: {"********" if key in _SECRET_OPTIONS else value!r}'
            for key, value in self.items())
        return f'{type(self).__name__}({{{shown}}})'

    __str__ = __repr__


# ---------------------------------------------------------------------------
# DSN parsing
# ---------------------------------------------------------------------------

_URI_SCHEME = re.compile(r'([A-Za-z][A-Za-z0-9+.\-]*)://')
_PERCENT_RUN = re.compile(r'(?:%[0-9A-Fa-f]{2})+')
_PORT_TEXT = re.compile(r'[ \t]*([0-9]{1,5})[ \t]*')


def _dsn_error(message: str) -> ClientConfigurationError:
    return ClientConfigurationError(f'invalid DSN: {message}')


def _utf8_or_none(raw: bytes) -> str | None:
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return None


def _uri_decode(text: str, *, plus_is_space: bool = False) -> str:
    """Percent-decode one URI component.

    Like asyncpg (urllib's unquote), a ``%`` not followed by two hex digits
    is kept literally, and ``+`` means a space in query parameters only.
    Unlike urllib, %00 and byte sequences that are not UTF-8 are refused
    instead of being silently replaced.
    """
    if plus_is_space:
        text = text.replace('+', ' ')
    if '%' not in text:
        return text
    out: list[str] = []
    pos = 0
    for match in _PERCENT_RUN.finditer(text):
        raw = bytes.fromhex(match.group().replace('%', ''))
        if b'\x00' in raw:
            raise _dsn_error('percent-encoded NUL (%00) is not allowed')
        decoded = _utf8_or_none(raw)
        if decoded is None:
            raise _dsn_error('percent-encoded bytes are not valid UTF-8')
        out.append(text[pos:match.start()])
        out.append(decoded)
        pos = match.end()
    out.append(text[pos:])
    return ''.join(out)


def _is_port_list(text: str) -> bool:
    return all(not part.strip(' \t') or _PORT_TEXT.fullmatch(part)
               for part in text.split(','))


def _split_host_entry(entry: str) -> tuple[str, str | None]:
    """Split one host list entry into (host, embedded port or None).

    Accepts what asyncpg accepts (``host:port``, ``[v6addr]:port``) and what
    libpq accepts (a bare IPv6 address, a socket directory): an entry is only
    split at a colon when there is exactly one and digits (or nothing) follow.
    """
    if entry.startswith('['):
        end = entry.find(']')
        if end < 0:
            raise ClientConfigurationError(
                'invalid host list: missing "]" after an IPv6 address')
        host, rest = entry[1:end], entry[end + 1:]
        if not host:
            raise ClientConfigurationError('invalid host list: empty IPv6 address')
        if not rest:
            return host, None
        if not rest.startswith(':') or not _is_port_list(rest[1:]) or ',' in rest:
            raise ClientConfigurationError(
                'invalid host list: unexpected text after an IPv6 address')
        return host, rest[1:]
    if entry.startswith('/') or entry.count(':') != 1:
        return entry, None
    host, _, port = entry.partition(':')
    if port and not (port.isascii() and port.isdigit()):
        return entry, None
    return host, port


class _DSNState:
    """Accumulates options while a DSN is parsed, in libpq's last-wins order."""

    def __init__(self) -> None:
        self.options = DSNOptions()
        # 'embedded': the port came from host:port inside a host list;
        # 'explicit': from a port option. Explicit beats embedded whatever
        # the order (asyncpg); otherwise the last host list with ports wins,
        # and a host list without ports keeps the previous ones (libpq).
        self.port_kind: str | None = None
        self.has_dbname_key = False

    def store(self, key: str, value: str) -> None:
        if not key:
            raise _dsn_error('empty option name')
        if key in _CONNECT_ONLY_NAMES:
            raise _dsn_error(
                f'{key!r} is a connect() argument, not a connection option')
        if key == 'requiressl':
            # libpq's backwards-compatible spelling of sslmode.
            key, value = 'sslmode', 'require' if value.startswith('1') else 'prefer'
        if key == 'database':
            # asyncpg's alias; dbname wins when both are present.
            if self.has_dbname_key:
                return
            key = 'dbname'
        elif key == 'dbname':
            self.has_dbname_key = True
        if key == 'host':
            self.store_hosts(value)
            return
        if key == 'port':
            if not _is_port_list(value):
                raise _dsn_error('invalid port number')
            self.port_kind = 'explicit'
        self.options.pop(key, None)
        self.options[key] = value

    def store_hosts(self, value: str, ports: list[str | None] | None = None) -> None:
        if ports is None:
            hosts: list[str] = []
            ports = []
            for entry in value.split(','):
                host, port = _split_host_entry(entry)
                hosts.append(host)
                ports.append(port)
            value = ','.join(hosts)
        self.options['host'] = value
        if any(ports) and self.port_kind != 'explicit':
            self.options['port'] = ','.join(port or '' for port in ports)
            self.port_kind = 'embedded'


def _parse_keyword_dsn(dsn: str, state: _DSNState) -> None:
    """libpq's ``key=value key='quoted \\' value'`` syntax (conninfo_parse)."""
    n = len(dsn)
    i = 0
    while i < n:
        if dsn[i] in _C_SPACE:
            i += 1
            continue
        start = i
        while i < n and dsn[i] != '=' and dsn[i] not in _C_SPACE:
            i += 1
        key = dsn[start:i]
        while i < n and dsn[i] in _C_SPACE:
            i += 1
        if i >= n or dsn[i] != '=':
            # Never quote the name: after a quoting mistake it may be a
            # piece of a password.
            raise _dsn_error(f'missing "=" after an option name (offset {start})')
        i += 1
        while i < n and dsn[i] in _C_SPACE:
            i += 1
        chars: list[str] = []
        if i < n and dsn[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise _dsn_error('unterminated quoted string')
                ch = dsn[i]
                if ch == '\\':
                    i += 1
                    if i < n:
                        chars.append(dsn[i])
                        i += 1
                    continue
                i += 1
                if ch == "'":
                    break
                chars.append(ch)
        else:
            while i < n:
                ch = dsn[i]
                if ch in _C_SPACE:
                    i += 1
                    break
                if ch == '\\':
                    i += 1
                    if i < n:
                        chars.append(dsn[i])
                        i += 1
                    continue
                chars.append(ch)
                i += 1
        if (key not in _OPTIONS and key not in _UNSUPPORTED_OPTIONS
                and key not in _KEYWORD_ALIASES and key not in _CONNECT_ONLY_NAMES):
            # libpq refuses unknown keywords too. Unlike a URI query (where
            # asyncpg makes them server settings), a mis-quoted password
            # here would otherwise become a setting name sent to the server.
            raise _dsn_error(
                f'unknown connection option name (offset {start}); server '
                "settings go in options='-c name=value'")
        state.store(key, ''.join(chars))


def _parse_uri_dsn(dsn: str, prefix_len: int, state: _DSNState) -> None:
    """``postgres[ql]://[user[:password]@][host[:port][,...]][/dbname][?k=v&...]``.

    The authority ends at the first ``/`` or ``?`` (asyncpg/urllib), and user
    information ends at the *last* ``@`` in it, so an unencoded ``@`` in a
    password cannot spill into the host list. Query parameters override what
    the netloc and path said (libpq's order).
    """
    rest = dsn[prefix_len:]
    ends = [pos for pos in (rest.find('/'), rest.find('?')) if pos >= 0]
    auth_end = min(ends) if ends else len(rest)
    authority = rest[:auth_end]

    at = authority.rfind('@')
    if at >= 0:
        user, colon, password = authority[:at].partition(':')
        user = _uri_decode(user)
        if user:
            state.store('user', user)
        if colon:
            password = _uri_decode(password)
            if password:
                state.store('password', password)
        hostpart = authority[at + 1:]
    else:
        hostpart = authority

    hosts: list[str] = []
    ports: list[str | None] = []
    i, n = 0, len(hostpart)
    while True:
        if hostpart.startswith('[', i):
            end = hostpart.find(']', i)
            if end < 0:
                raise _dsn_error('missing "]" after an IPv6 address in the URI')
            host = hostpart[i + 1:end]
            if not host:
                raise _dsn_error('empty IPv6 address in the URI')
            i = end + 1
            if i < n and hostpart[i] not in ':,':
                raise _dsn_error('unexpected character after an IPv6 address in the URI')
        else:
            end = i
            while end < n and hostpart[end] not in ':,':
                end += 1
            host = hostpart[i:end]
            i = end
        port: str | None = None
        if i < n and hostpart[i] == ':':
            end = hostpart.find(',', i)
            end = n if end < 0 else end
            port = _uri_decode(hostpart[i + 1:end])
            if not _is_port_list(port) or ',' in port:
                raise _dsn_error('invalid port number in the URI')
            i = end
        hosts.append(_uri_decode(host))
        ports.append(port or None)
        if i < n and hostpart[i] == ',':
            i += 1
            continue
        break
    if len(hosts) == 1 and not hosts[0]:
        # postgres://:5433/db -- no host, but a port (libpq keeps the port).
        if ports[0]:
            state.store('port', ports[0])
    else:
        state.store_hosts(','.join(hosts), ports)

    remainder = rest[auth_end:]
    query = ''
    if remainder.startswith('/'):
        path, _, query = remainder[1:].partition('?')
        dbname = _uri_decode(path)
        # An empty path means "not given": PGDATABASE and the user name
        # still apply (libpq; asyncpg would send an empty database name).
        if dbname:
            state.store('dbname', dbname)
    elif remainder.startswith('?'):
        query = remainder[1:]

    for index, field in enumerate(query.split('&'), 1):
        if not field:
            continue
        raw_key, eq, raw_value = field.partition('=')
        if not eq:
            raise _dsn_error(f'missing "=" in URI query parameter #{index}')
        key = _uri_decode(raw_key, plus_is_space=True)
        value = _uri_decode(raw_value, plus_is_space=True)
        if key == 'ssl' and value == 'true':
            # libpq's JDBC-compatible spelling.
            key, value = 'sslmode', 'require'
        state.store(key, value)


def _parse_dsn_state(dsn: str) -> _DSNState:
    if not isinstance(dsn, str):
        raise ClientConfigurationError(
            f'dsn is expected to be a str, got {type(dsn).__name__}')
    if '\x00' in dsn:
        raise _dsn_error('NUL characters are not allowed')
    state = _DSNState()
    # Surrounding blanks are ignored (urllib strips them from URIs), but the
    # keyword form is parsed as given: a trailing escaped blank is data.
    text = dsn.strip()
    scheme = _URI_SCHEME.match(text)
    if scheme is not None:
        if scheme.group(1).lower() not in ('postgres', 'postgresql'):
            raise ClientConfigurationError(
                'invalid DSN: scheme is expected to be either "postgresql" or '
                f'"postgres", got {scheme.group(1)!r}')
        _parse_uri_dsn(text, scheme.end(), state)
    else:
        _parse_keyword_dsn(dsn, state)
    return state


def parse_dsn(dsn: str) -> DSNOptions:
    """Parse a connection string into its options, as strings.

    Both forms are accepted: a URI (``postgres://`` or ``postgresql://``)
    and libpq's ``key=value`` form with its quoting rules. Keys are libpq's
    (``dbname``, not ``database``); ``host`` and ``port`` are comma-separated
    lists with one entry per host (an empty port entry means "default").
    Unknown keys of a URI query are kept: :func:`resolve` turns them into
    server settings, as asyncpg does. In the keyword/value form unknown keys
    are an error, as in libpq. No defaults, environment or files are
    consulted.

    :param dsn: The connection string.
    :return: A dict of option name to value; its repr masks passwords.
    :raises ClientConfigurationError: The DSN is malformed. The message
        never contains text from the DSN other than the scheme and
        documented option names.
    """
    return _parse_dsn_state(dsn).options


# ---------------------------------------------------------------------------
# Files: home directory, service file, password file
# ---------------------------------------------------------------------------

def _pg_home_dir() -> pathlib.Path | None:
    """Where per-user PostgreSQL files live: $HOME, or %APPDATA%/postgresql."""
    if _IS_WINDOWS:
        appdata = os.environ.get('APPDATA')
        return pathlib.Path(appdata) / 'postgresql' if appdata else None
    try:
        return pathlib.Path.home()
    except (RuntimeError, KeyError, OSError):
        return None


def _pg_config_dir() -> pathlib.Path | None:
    """Where the default client TLS files live (~/.postgresql)."""
    home = _pg_home_dir()
    if home is None:
        return None
    return home if _IS_WINDOWS else home / '.postgresql'


def _read_text(path: pathlib.Path, what: str) -> str:
    try:
        with open(path, encoding='utf-8', newline='') as f:
            return f.read()
    except UnicodeDecodeError:
        pass
    except OSError as e:
        raise ClientConfigurationError(
            f'could not read {what} "{path}": {e.strerror}') from None
    raise ClientConfigurationError(f'{what} "{path}" is not valid UTF-8')


def _parse_service_file(path: pathlib.Path, service: str) -> dict[str, str] | None:
    """The options of section ``[service]`` of a service file, or None.

    libpq's format: ``[name]`` lines open a section, ``key=value`` lines set
    options, ``#`` starts a comment line. The first section with the name is
    used, and the first setting of a key in it wins. As extensions that
    asyncpg users (configparser) rely on, blanks around the separator are
    ignored, ``:`` works as a separator, keys are case-insensitive and ``;``
    also starts a comment. Unknown keys and nested services are errors, as in
    libpq; values are not quoted in messages.
    """
    text = _read_text(path, 'service file')
    found = False
    result: dict[str, str] = {}
    for lineno, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('['):
            if found:
                break
            found = line.startswith(f'[{service}]')
            continue
        if not found:
            continue
        seps = [pos for pos in (line.find('='), line.find(':')) if pos >= 0]
        if not seps:
            raise ClientConfigurationError(
                f'syntax error in service file "{path}", line {lineno}')
        key = line[:min(seps)].strip().lower()
        value = line[min(seps) + 1:].strip()
        if key in ('service', 'servicefile'):
            raise ClientConfigurationError(
                f'nested service specifications not supported in service '
                f'file "{path}", line {lineno}')
        if key == 'database':
            key = 'dbname'
        if key == 'requiressl':
            key, value = 'sslmode', 'require' if value.startswith('1') else 'prefer'
        if key not in _OPTIONS and key not in _UNSUPPORTED_OPTIONS:
            raise ClientConfigurationError(
                f'syntax error in service file "{path}", line {lineno}: '
                'unknown option name')
        result.setdefault(key, value)
    return result if found else None


def _service_files(servicefile: str | None, source: str) -> Iterator[pathlib.Path]:
    """The service files to search, in libpq's order."""
    if servicefile is not None:
        path = pathlib.Path(servicefile)
        if not path.is_file():
            raise ClientConfigurationError(
                f'service file "{path}" not found (from {source})')
        yield path
    else:
        home = _pg_home_dir()
        if home is not None and (home / _SERVICEFILE_NAME).is_file():
            yield home / _SERVICEFILE_NAME
    sysconfdir = _env('PGSYSCONFDIR')
    for directory in (sysconfdir,) if sysconfdir else _SYSCONFDIR_CANDIDATES:
        candidate = pathlib.Path(directory) / 'pg_service.conf'
        if candidate.is_file():
            yield candidate
            break


def _pgpass_match_field(line: str, pos: int, token: str) -> int | None:
    """Match one ``:``-terminated .pgpass field at *pos* against *token*.

    ``*`` alone matches anything; ``\\`` makes the next character literal.
    Returns the position after the ``:``, or None when the field differs.
    """
    if line.startswith('*:', pos):
        return pos + 2
    i, j, n = pos, 0, len(line)
    while i < n:
        ch = line[i]
        escaped = False
        if ch == '\\':
            i += 1
            if i >= n:
                return None
            ch = line[i]
            escaped = True
        if ch == ':' and not escaped and j == len(token):
            return i + 1
        if j == len(token) or ch != token[j]:
            return None
        i += 1
        j += 1
    return None


def _pgpass_password(line: str, pos: int) -> str:
    """The password field: up to the next unescaped ``:``, backslashes removed."""
    out: list[str] = []
    i, n = pos, len(line)
    while i < n and line[i] != ':':
        if line[i] == '\\' and i + 1 < n:
            i += 1
        out.append(line[i])
        i += 1
    return ''.join(out)


def _lookup_pgpass(passfile: str, hosts: Sequence[str], port: int,
                   database: str, user: str) -> str | None:
    """libpq's password file lookup: the first line matching any of *hosts*."""
    if not database or not user:
        return None
    path = pathlib.Path(passfile)
    try:
        st = path.stat()
    except OSError:
        return None
    if not _IS_WINDOWS:
        if not stat.S_ISREG(st.st_mode):
            warnings.warn(f'password file "{path}" is not a plain file',
                          UserWarning, stacklevel=3)
            return None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f'password file "{path}" has group or world access; '
                'permissions should be u=rw (0600) or less',
                UserWarning, stacklevel=3)
            return None
    try:
        with open(path, encoding='utf-8', errors='replace', newline='') as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    port_text = str(port)
    for line in lines:
        if not line or line.startswith('#'):
            continue
        for host in hosts:
            pos: int | None = _pgpass_match_field(line, 0, host)
            for token in (port_text, database, user):
                if pos is None:
                    break
                pos = _pgpass_match_field(line, pos, token)
            if pos is not None:
                return _pgpass_password(line, pos)
    return None


# ---------------------------------------------------------------------------
# Resolved configuration
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HostSpec:
    """One server to try.

    :ivar host: Host name, IP address, or Unix socket directory (or full
        socket path) as configured. Used for TLS verification, SNI and the
        password file.
    :ivar port: TCP port, or the number in the socket file name.
    :ivar hostaddr: Numeric address to dial instead of resolving *host*.
    """

    host: str
    port: int
    hostaddr: str | None = None

    @property
    def is_unix_socket(self) -> bool:
        return self.hostaddr is None and self.host.startswith('/')

    @property
    def address(self) -> tuple[str, int] | str:
        """What to dial, in asyncpg's shape: ``(host, port)`` or a socket path."""
        if self.hostaddr is not None:
            return (self.hostaddr, self.port)
        if self.host.startswith('/'):
            if '.s.PGSQL.' in self.host:
                return self.host
            return os.path.join(self.host, f'.s.PGSQL.{self.port}')
        return (self.host, self.port)


@dataclasses.dataclass(frozen=True)
class SSLSettings:
    """Resolved TLS settings; :func:`make_ssl_context` turns them into a context.

    File fields hold what was configured (None: use the default file in
    *default_dir*, ``~/.postgresql``, if it exists). *context* is an
    ``ssl.SSLContext`` the caller passed as ``ssl=``; it is used unchanged.
    """

    mode: SSLMode
    negotiation: SSLNegotiation = SSLNegotiation.postgres
    context: ssl_module.SSLContext | None = None
    rootcert: str | None = None
    cert: str | None = None
    key: str | None = None
    crl: str | None = None
    crldir: str | None = None
    password: Secret | None = dataclasses.field(default=None, repr=False)
    certmode: str = 'allow'
    min_protocol_version: str = 'TLSv1.2'
    max_protocol_version: str | None = None
    sni: bool = True
    keylog_filename: str | None = None
    default_dir: str | None = None

    @property
    def is_advisory(self) -> bool:
        """True for allow/prefer: a plaintext connection is acceptable."""
        return self.mode in (SSLMode.allow, SSLMode.prefer)


class ConnectionConfiguration(NamedTuple):
    """Client-side knobs of a connection (asyncpg's ``ConnectionConfiguration``)."""

    command_timeout: float | None
    statement_cache_size: int
    max_cached_statement_lifetime: int
    max_cacheable_statement_size: int


@dataclasses.dataclass(frozen=True)
class ConnectionParameters:
    """Everything needed to open a connection, resolved and validated.

    The password is not part of ``repr()``: it is a :class:`Secret`, a
    callable to call per attempt (see :func:`obtain_password`), or None (then
    the password file is searched per host, see :func:`password_for`).
    """

    hosts: tuple[HostSpec, ...]
    user: str
    database: str
    password: Secret | PasswordCallable | None = dataclasses.field(repr=False)
    passfile: str | None
    service: str | None
    ssl: SSLSettings
    server_settings: Mapping[str, str]
    target_session_attrs: SessionAttribute
    krbsrvname: str
    gsslib: str
    channel_binding: str
    require_auth: str | None
    min_protocol_version: str
    max_protocol_version: str
    load_balance_hosts: str
    connect_timeout: float | None
    timeout: float | None
    keepalives: bool
    keepalives_idle: int | None
    keepalives_interval: int | None
    keepalives_count: int | None
    tcp_user_timeout: int | None
    config: ConnectionConfiguration

    @property
    def addrs(self) -> list[tuple[str, int] | str]:
        """The dial targets in asyncpg's shape (``connect_utils`` ``addrs``)."""
        return [spec.address for spec in self.hosts]

    @property
    def sslmode(self) -> SSLMode:
        return self.ssl.mode

    @property
    def ssl_negotiation(self) -> SSLNegotiation:
        return self.ssl.negotiation


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------

class _Layer:
    """The options one source provides, plus its host and port lists.

    *ports* come from a port option and apply to whatever host list wins;
    *embedded* ports were written inside this layer's own host list and
    only count when that host list is the one used. *embedded_first*: the
    embedded ports beat this layer's port option (asyncpg treats PGPORT as
    a mere default for PGHOST entries; elsewhere the port option wins).
    """

    def __init__(self, source: str, values: Mapping[str, Any]) -> None:
        self.source = source
        self.values = {k: v for k, v in values.items() if v is not None and v != ''}
        self.hosts: list[str] | None = None
        self.ports: list[int | None] | None = None
        self.embedded: list[int | None] | None = None
        self.embedded_first = source == 'environment'
        self.quote_values = source == 'argument'

    def describe(self, value: object) -> str:
        """Quote *value* only when the caller typed it as an argument."""
        if self.quote_values:
            return f'{value!r}'
        return f'(from the {self.source})'


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def _port_list(text: str, layer: _Layer, what: str = 'port') -> list[int | None]:
    ports: list[int | None] = []
    for part in text.split(','):
        if not part.strip(' \t'):
            ports.append(None)
            continue
        match = _PORT_TEXT.fullmatch(part)
        number = int(match.group(1)) if match else 0
        if not 1 <= number <= 65535:
            raise ClientConfigurationError(
                f'invalid {what} number {layer.describe(part)}')
        ports.append(number)
    return ports


def _text_host_list(layer: _Layer, text: str, *, embedded_ok: bool) -> None:
    """Fill layer.hosts (and embedded ports) from a comma-separated list."""
    hosts: list[str] = []
    ports: list[str | None] = []
    for entry in text.split(','):
        host, port = _split_host_entry(entry) if embedded_ok else (entry, None)
        if not host:
            raise ClientConfigurationError(
                f'empty host name in the host list (from the {layer.source})')
        hosts.append(host)
        ports.append(port)
    layer.hosts = hosts
    if any(ports):
        layer.embedded = [None if not p else _port_list(p, layer)[0] for p in ports]


def _argument_layer(values: dict[str, Any], host: Any, port: Any) -> _Layer:
    layer = _Layer('argument', values)
    if host is not None and host != '' and host != [] and host != ():
        entries = [host] if isinstance(host, str) else host
        if (not isinstance(entries, (list, tuple))
                or not all(isinstance(h, str) and h for h in entries)):
            raise ClientConfigurationError(
                f'host is expected to be a str or a list of str, got {host!r}')
        layer.hosts = list(entries)
    if port is not None and port != '' and port != [] and port != ():
        items = list(port) if isinstance(port, (list, tuple)) else [port]
        ports: list[int | None] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise ClientConfigurationError(
                    f'port is expected to be an int, a str or a list of them, got {port!r}')
            if isinstance(item, int):
                if not 1 <= item <= 65535:
                    raise ClientConfigurationError(f'invalid port number {item!r}')
                ports.append(item)
            else:
                ports.extend(_port_list(item, layer))
        layer.ports = ports
    return layer


def _text_layer(source: str, values: Mapping[str, str | None], *,
                embedded: bool) -> _Layer:
    layer = _Layer(source, values)
    host = layer.values.get('host')
    if host is not None:
        # A DSN's host list was already split by parse_dsn().
        _text_host_list(layer, host, embedded_ok=source != 'DSN')
    port = layer.values.get('port')
    if port is not None:
        ports = _port_list(port, layer)
        if any(p is not None for p in ports):
            if embedded:
                layer.embedded = ports
            else:
                layer.ports = ports
    return layer


def _environment_layer() -> _Layer:
    values = {name: _env(var) for name, var in _OPTIONS.items() if var is not None}
    return _text_layer('environment', values, embedded=False)


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------

def _choice(name: str, value: str, allowed: Sequence[str], layer: _Layer) -> str:
    if value not in allowed:
        raise ClientConfigurationError(
            f'`{name}` parameter must be one of: {", ".join(allowed)}, '
            f'got {layer.describe(value)}')
    return value


def _parse_int(name: str, value: object, layer: _Layer, *, minimum: int = 0) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r'\s*[+-]?[0-9]+\s*', value):
        number = int(value)
    if number is None or number < minimum:
        raise ClientConfigurationError(
            f'invalid integer value {layer.describe(value)} for `{name}`')
    return number


def _parse_float_or_none(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(
            r'\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*', value):
        number = float(value)
    else:
        return None
    return None if math.isnan(number) else number


def _parse_bool(name: str, value: object, layer: _Layer) -> bool:
    if isinstance(value, bool):
        return value
    return _parse_int(name, value, layer, minimum=-(2 ** 31)) != 0


def _check_no_nul(what: str, value: str) -> None:
    if '\x00' in value:
        raise ClientConfigurationError(f'{what} must not contain NUL characters')


_TLS_VERSIONS = ('TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3')


def _tls_version(name: str, value: str, layer: _Layer) -> str:
    for version in _TLS_VERSIONS:
        if value.lower() == version.lower():
            return version
    if value.upper().startswith('SSL'):
        raise ClientConfigurationError(
            f'unsupported TLS version {layer.describe(value)} for `{name}`')
    raise ClientConfigurationError(
        f'`{name}` must be one of: {", ".join(_TLS_VERSIONS)}, '
        f'got {layer.describe(value)}')


def _protocol_version(name: str, value: str, layer: _Layer) -> str:
    normalized = {'3.0': '3.0', '3.2': '3.2', 'latest': '3.2'}.get(value)
    if normalized is None:
        raise ClientConfigurationError(
            f'`{name}` must be one of: 3.0, 3.2, latest, got {layer.describe(value)}')
    return normalized


def _split_backend_options(text: str) -> list[str]:
    """Split the ``options`` string like the server does (pg_split_opts)."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in _C_SPACE:
            i += 1
        if i >= n:
            break
        chars: list[str] = []
        while i < n and text[i] not in _C_SPACE:
            if text[i] == '\\' and i + 1 < n:
                i += 1
            chars.append(text[i])
            i += 1
        args.append(''.join(chars))
    return args


def _options_to_settings(text: str) -> dict[str, str] | None:
    """``-c name=value`` / ``--name=value`` switches as settings, or None.

    None means the string holds something else; it is then sent unchanged as
    the ``options`` startup parameter and the server interprets it.
    """
    settings: dict[str, str] = {}
    args = _split_backend_options(text)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == '-c' and i + 1 < len(args):
            assignment = args[i + 1]
            i += 2
        elif arg.startswith('-c') and len(arg) > 2:
            assignment, i = arg[2:], i + 1
        elif arg.startswith('--') and len(arg) > 2:
            assignment, i = arg[2:], i + 1
        else:
            return None
        name, eq, value = assignment.partition('=')
        if not eq or not name:
            return None
        settings[name.replace('-', '_')] = value
    return settings


_UTF8_NAMES = frozenset({'utf8', 'unicode'})


# ---------------------------------------------------------------------------
# resolve()
# ---------------------------------------------------------------------------

def resolve(
    dsn: str | None = None,
    *,
    host: str | Sequence[str] | None = None,
    port: int | str | Sequence[int | str] | None = None,
    user: str | None = None,
    password: str | PasswordCallable | None = None,
    passfile: str | os.PathLike[str] | None = None,
    service: str | None = None,
    servicefile: str | os.PathLike[str] | None = None,
    database: str | None = None,
    timeout: float | None = 60,
    statement_cache_size: int = 100,
    max_cached_statement_lifetime: int = 300,
    max_cacheable_statement_size: int = 1024 * 15,
    command_timeout: float | None = None,
    ssl: bool | str | SSLMode | ssl_module.SSLContext | None = None,
    direct_tls: bool | None = None,
    server_settings: Mapping[str, str] | None = None,
    target_session_attrs: str | SessionAttribute | None = None,
    krbsrvname: str | None = None,
    gsslib: str | None = None,
    channel_binding: str | None = None,
    require_auth: str | None = None,
    min_protocol_version: str | None = None,
    max_protocol_version: str | None = None,
    load_balance_hosts: str | None = None,
    connect_timeout: float | str | None = None,
    hostaddr: str | Sequence[str] | None = None,
    keepalives: bool | int | None = None,
    keepalives_idle: int | None = None,
    keepalives_interval: int | None = None,
    keepalives_count: int | None = None,
    tcp_user_timeout: int | None = None,
) -> ConnectionParameters:
    """Resolve connect()'s arguments, the DSN, service file and environment.

    The arguments are ``connect()``'s, with the same names and defaults,
    minus ``loop``, ``connection_class`` and ``record_class`` (which are not
    connection parameters), plus libpq options asyncpg lacks
    (``channel_binding`` ... ``tcp_user_timeout``). Precedence: arguments,
    then the DSN, then the service file, then ``PG*`` variables, then
    defaults. Nothing is dialled and a password callable is not called.

    :param dsn: Connection string, URI or keyword/value form.
    :param host: Host name, IP address or Unix socket directory, or a list.
    :param port: Port, or one port per host.
    :param password: A str, or a callable (sync or async) returning one,
        called for each connection attempt.
    :param ssl: ``None``, ``True`` (verify-full against the system CAs),
        ``False``, an sslmode name or :class:`SSLMode`, or an
        ``ssl.SSLContext`` used as given (sslmode ``require``).
    :param direct_tls: Overrides ``sslnegotiation``.
    :return: The frozen :class:`ConnectionParameters`.
    :raises ClientConfigurationError: A setting is invalid or inconsistent.
    :raises ValueError: A statement cache knob or ``command_timeout`` is
        invalid (asyncpg's messages).
    """
    secrets: list[str] = []
    if isinstance(password, str):
        secrets.append(password)
    scrubbed: InterfaceError | None = None
    try:
        return _resolve(
            dsn, secrets, host=host, port=port, user=user, password=password,
            passfile=passfile, service=service, servicefile=servicefile,
            database=database, timeout=timeout,
            statement_cache_size=statement_cache_size,
            max_cached_statement_lifetime=max_cached_statement_lifetime,
            max_cacheable_statement_size=max_cacheable_statement_size,
            command_timeout=command_timeout, ssl=ssl, direct_tls=direct_tls,
            server_settings=server_settings,
            target_session_attrs=target_session_attrs, krbsrvname=krbsrvname,
            gsslib=gsslib, channel_binding=channel_binding,
            require_auth=require_auth, min_protocol_version=min_protocol_version,
            max_protocol_version=max_protocol_version,
            load_balance_hosts=load_balance_hosts, connect_timeout=connect_timeout,
            hostaddr=hostaddr, keepalives=keepalives,
            keepalives_idle=keepalives_idle,
            keepalives_interval=keepalives_interval,
            keepalives_count=keepalives_count, tcp_user_timeout=tcp_user_timeout)
    except ClientConfigurationError as e:
        scrubbed = _scrub(e, secrets)
        if scrubbed is None:
            raise
    # Raised outside the except block, so the original (unscrubbed)
    # exception is not kept as __context__.
    assert scrubbed is not None
    raise scrubbed


def _scrub(error: InterfaceError, secrets: Sequence[str]) -> InterfaceError | None:
    """A copy of *error* with any known secret masked, or None if it has none.

    A backstop: messages are written not to quote configuration text, but a
    password passed where another value was expected must not leak either.
    """
    texts = [str(error.args[0]) if error.args else '', error.detail or '', error.hint or '']
    leaked = [s for s in secrets if len(s) >= 3 and any(s in t for t in texts)]
    if not leaked:
        return None

    def mask(text: str) -> str:
        for secret in leaked:
            text = text.replace(secret, '********')
        return text

    return type(error)(mask(texts[0]), detail=mask(texts[1]) or None,
                       hint=mask(texts[2]) or None)


def _check_knobs(statement_cache_size: object, max_cached_statement_lifetime: object,
                 max_cacheable_statement_size: object, command_timeout: object,
                 timeout: object) -> float | None:
    for name, value in (('max_cacheable_statement_size', max_cacheable_statement_size),
                        ('max_cached_statement_lifetime', max_cached_statement_lifetime),
                        ('statement_cache_size', statement_cache_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f'{name} is expected to be greater or equal to 0, got {value!r}')
    if command_timeout is not None:
        number = _parse_float_or_none(command_timeout)
        if number is None or number <= 0:
            raise ValueError(
                'invalid command_timeout value: expected greater than 0 float '
                f'(got {command_timeout!r})')
    if timeout is not None and _parse_float_or_none(timeout) is None:
        raise ClientConfigurationError(
            f'timeout is expected to be a number or None, got {timeout!r}')
    return None if command_timeout is None else _parse_float_or_none(command_timeout)


def _resolve(dsn: str | None, secrets: list[str], **kw: Any) -> ConnectionParameters:
    command_timeout = _check_knobs(
        kw['statement_cache_size'], kw['max_cached_statement_lifetime'],
        kw['max_cacheable_statement_size'], kw['command_timeout'], kw['timeout'])

    password_arg = kw['password']
    if password_arg is not None and not isinstance(password_arg, str) \
            and not callable(password_arg):
        raise ClientConfigurationError(
            'password is expected to be a str or a callable returning one, '
            f'got {type(password_arg).__name__}')

    # -- the layers ---------------------------------------------------------
    argument_values: dict[str, Any] = {
        'user': kw['user'], 'dbname': kw['database'],
        'password': password_arg if isinstance(password_arg, str) else None,
        'passfile': os.fspath(kw['passfile']) if kw['passfile'] is not None else None,
        'service': kw['service'],
        'servicefile': (os.fspath(kw['servicefile'])
                        if kw['servicefile'] is not None else None),
        'target_session_attrs': kw['target_session_attrs'],
        'krbsrvname': kw['krbsrvname'], 'gsslib': kw['gsslib'],
        'channel_binding': kw['channel_binding'], 'require_auth': kw['require_auth'],
        'min_protocol_version': kw['min_protocol_version'],
        'max_protocol_version': kw['max_protocol_version'],
        'load_balance_hosts': kw['load_balance_hosts'],
        'connect_timeout': kw['connect_timeout'],
        'keepalives': kw['keepalives'], 'keepalives_idle': kw['keepalives_idle'],
        'keepalives_interval': kw['keepalives_interval'],
        'keepalives_count': kw['keepalives_count'],
        'tcp_user_timeout': kw['tcp_user_timeout'],
    }
    hostaddr_arg = kw['hostaddr']
    if hostaddr_arg is not None and not isinstance(hostaddr_arg, str):
        hostaddr_arg = ','.join(hostaddr_arg)
    argument_values['hostaddr'] = hostaddr_arg
    arguments = _argument_layer(argument_values, kw['host'], kw['port'])

    dsn_extra: dict[str, str] = {}
    if dsn:
        state = _parse_dsn_state(dsn)
        for key in _SECRET_OPTIONS:
            if key in state.options:
                secrets.append(state.options[key])
        known = {k: v for k, v in state.options.items() if k in _OPTIONS}
        for key, value in state.options.items():
            if key in _UNSUPPORTED_OPTIONS:
                _check_unsupported(key, value, 'DSN')
            elif key not in _OPTIONS:
                dsn_extra[key] = value
        dsn_layer = _text_layer('DSN', known, embedded=state.port_kind == 'embedded')
    else:
        dsn_layer = _Layer('DSN', {})

    environment = _environment_layer()
    if 'password' in environment.values:
        secrets.append(environment.values['password'])

    service_layer = _Layer('service file', {})
    service_name: str | None = None
    for layer in (arguments, dsn_layer, environment):
        if 'service' in layer.values:
            service_name = layer.values['service']
            break
    if service_name is not None:
        servicefile: str | None = None
        servicefile_source = ''
        for layer in (arguments, dsn_layer, environment):
            if 'servicefile' in layer.values:
                servicefile = layer.values['servicefile']
                servicefile_source = layer.source
                break
        section: dict[str, str] | None = None
        for path in _service_files(servicefile, servicefile_source):
            section = _parse_service_file(path, service_name)
            if section is not None:
                break
        if section is None:
            raise ClientConfigurationError(
                f'definition of service {service_name!r} not found')
        for key, value in section.items():
            if key in _UNSUPPORTED_OPTIONS:
                _check_unsupported(key, value, 'service file')
        if section.get('password'):
            secrets.append(section['password'])
        if section.get('sslpassword'):
            secrets.append(section['sslpassword'])
        service_layer = _text_layer(
            'service file', {k: v for k, v in section.items() if k in _OPTIONS},
            embedded=False)

    layers = (arguments, dsn_layer, service_layer, environment)

    def pick(name: str) -> tuple[Any, _Layer]:
        for layer in layers:
            if name in layer.values:
                return layer.values[name], layer
        return None, environment

    hosts = _resolve_hosts(layers, pick)

    # -- identity ---------------------------------------------------------
    user, _ = pick("user")
    if user is None:
        try:
            user = getpass.getuser()
        except Exception:
            user = None
        if not user:
            raise ClientConfigurationError(
                'could not determine user name to connect with')
    elif not isinstance(user, str):
        raise ClientConfigurationError(f'user is expected to be a str, got {user!r}')
    database, _ = pick('dbname')
    if database is None:
        database = user
    elif not isinstance(database, str):
        raise ClientConfigurationError(
            f'database is expected to be a str, got {database!r}')
    _check_no_nul('the user name', user)
    _check_no_nul('the database name', database)

    password: Secret | PasswordCallable | None
    if callable(password_arg):
        password = password_arg
    else:
        text_password, _ = pick('password')
        if text_password is not None:
            _check_no_nul('the password', text_password)
        password = None if text_password is None else Secret(text_password)

    passfile, _ = pick('passfile')
    if passfile is None:
        home = _pg_home_dir()
        passfile = None if home is None else os.fspath(home / _PASSFILE_NAME)

    ssl_settings = _resolve_ssl(kw['ssl'], kw['direct_tls'], hosts, pick)
    if ssl_settings.password is not None:
        secrets.append(ssl_settings.password.reveal())

    settings = _resolve_server_settings(
        kw['server_settings'], dsn_extra, pick)

    # -- the rest ----------------------------------------------------------
    attrs, attrs_layer = pick('target_session_attrs')
    target = _session_attribute(attrs, attrs_layer)

    krbsrvname, _ = pick('krbsrvname')
    gsslib, gsslib_layer = pick('gsslib')
    if gsslib is None:
        gsslib = 'sspi' if _IS_WINDOWS else 'gssapi'
    if gsslib not in ('gssapi', 'sspi'):
        raise ClientConfigurationError(
            "gsslib parameter must be either 'gssapi' or 'sspi', "
            f'got {gsslib_layer.describe(gsslib)}')
    gssencmode, gss_layer = pick('gssencmode')
    if gssencmode is not None:
        _choice('gssencmode', gssencmode, ('disable', 'prefer', 'require'), gss_layer)
        if gssencmode == 'require':
            raise ClientConfigurationError(
                'gssencmode=require is not supported: pg_client does not '
                'implement GSSAPI transport encryption')

    channel_binding, layer = pick('channel_binding')
    channel_binding = _choice('channel_binding', channel_binding or 'prefer',
                              ('disable', 'prefer', 'require'), layer)
    require_auth, layer = pick('require_auth')
    if require_auth is not None:
        if not isinstance(require_auth, str):
            raise ClientConfigurationError(
                f'require_auth is expected to be a str, got {require_auth!r}')
        _check_no_nul('require_auth', require_auth)

    min_proto, layer = pick('min_protocol_version')
    min_proto = _protocol_version('min_protocol_version', min_proto or '3.0', layer)
    max_proto, layer = pick('max_protocol_version')
    # libpq: without a maximum, 3.0 unless the minimum asks for more.
    max_proto = (_protocol_version('max_protocol_version', max_proto, layer)
                 if max_proto is not None else max(min_proto, '3.0'))
    if min_proto > max_proto:
        raise ClientConfigurationError(
            'min_protocol_version is greater than max_protocol_version')

    balance, layer = pick('load_balance_hosts')
    balance = _choice('load_balance_hosts', balance or 'disable',
                      ('disable', 'random'), layer)

    raw_timeout, layer = pick('connect_timeout')
    connect_timeout: float | None = None
    if raw_timeout is not None:
        number = _parse_float_or_none(raw_timeout)
        if number is None:
            raise ClientConfigurationError(
                f'invalid connect_timeout value {layer.describe(raw_timeout)}')
        # libpq: zero or negative means wait indefinitely.
        connect_timeout = number if 0 < number < math.inf else None

    raw_keepalives, layer = pick('keepalives')
    keepalives_on = (True if raw_keepalives is None
                     else _parse_bool('keepalives', raw_keepalives, layer))
    ints: dict[str, int | None] = {}
    for name in ('keepalives_idle', 'keepalives_interval', 'keepalives_count',
                 'tcp_user_timeout'):
        value, layer = pick(name)
        ints[name] = None if value is None else _parse_int(name, value, layer)

    timeout = kw['timeout']
    return ConnectionParameters(
        hosts=hosts,
        user=user,
        database=database,
        password=password,
        passfile=passfile,
        service=service_name,
        ssl=ssl_settings,
        server_settings=types.MappingProxyType(settings),
        target_session_attrs=target,
        krbsrvname=krbsrvname or 'postgres',
        gsslib=gsslib,
        channel_binding=channel_binding,
        require_auth=require_auth,
        min_protocol_version=min_proto,
        max_protocol_version=max_proto,
        load_balance_hosts=balance,
        connect_timeout=connect_timeout,
        timeout=None if timeout is None else _parse_float_or_none(timeout),
        keepalives=keepalives_on,
        keepalives_idle=ints['keepalives_idle'],
        keepalives_interval=ints['keepalives_interval'],
        keepalives_count=ints['keepalives_count'],
        tcp_user_timeout=ints['tcp_user_timeout'],
        config=ConnectionConfiguration(
            command_timeout=command_timeout,
            statement_cache_size=kw['statement_cache_size'],
            max_cached_statement_lifetime=kw['max_cached_statement_lifetime'],
            max_cacheable_statement_size=kw['max_cacheable_statement_size'],
        ),
    )


def _session_attribute(value: Any, layer: _Layer) -> SessionAttribute:
    if value is None:
        return SessionAttribute.any
    if isinstance(value, SessionAttribute):
        return value
    for member in SessionAttribute:
        if value == member.value:
            return member
    allowed = ', '.join(repr(a.value) for a in SessionAttribute)
    raise ClientConfigurationError(
        f'target_session_attrs is expected to be one of {allowed}, '
        f'got {layer.describe(value)}')


def _check_unsupported(key: str, value: str, source: str) -> None:
    harmless = _UNSUPPORTED_OPTIONS[key]
    if harmless is None or value.strip() != harmless:
        raise ClientConfigurationError(
            f'connection option {key!r} (from the {source}) is not supported '
            'by pg_client')


def _resolve_hosts(layers: Sequence[_Layer],
                   pick: Callable[[str], tuple[Any, _Layer]]) -> tuple[HostSpec, ...]:
    host_layer = next((layer for layer in layers if layer.hosts is not None), None)

    raw_hostaddr, addr_layer = pick('hostaddr')
    hostaddrs: list[str | None] | None = None
    if raw_hostaddr is not None:
        hostaddrs = []
        for entry in str(raw_hostaddr).split(','):
            entry = entry.strip()
            if entry:
                try:
                    ipaddress.ip_address(entry.partition('%')[0])
                    valid = True
                except ValueError:
                    valid = False
                if not valid:
                    raise ClientConfigurationError(
                        f'invalid hostaddr {addr_layer.describe(entry)}: '
                        'expected a numeric IP address')
            hostaddrs.append(entry or None)

    if host_layer is not None and host_layer.hosts is not None:
        hosts = host_layer.hosts
    elif hostaddrs is not None:
        if not all(hostaddrs):
            raise ClientConfigurationError('empty entry in hostaddr without a host')
        hosts = [h for h in hostaddrs if h]
    else:
        hosts = list(_DEFAULT_HOSTS)
    if hostaddrs is not None and len(hostaddrs) != len(hosts):
        raise ClientConfigurationError(
            f'could not match {len(hosts)} host names to {len(hostaddrs)} '
            'hostaddr values')

    # Where each host's port is looked for, in order. host:port written in a
    # host list that lost to a higher layer's hosts is ignored (asyncpg).
    port_lists: list[list[int | None]] = []
    for layer in layers:
        if layer is host_layer:
            order = ([layer.embedded, layer.ports] if layer.embedded_first
                     else [layer.ports, layer.embedded])
        else:
            order = [layer.ports]
        port_lists.extend(ports for ports in order if ports is not None)

    specs: list[HostSpec] = []
    for index, host in enumerate(hosts):
        port = DEFAULT_PORT
        for ports in port_lists:
            if len(ports) > 1 and len(ports) != len(hosts):
                raise ClientConfigurationError(
                    f'could not match {len(ports)} port numbers to {len(hosts)} hosts')
            candidate = ports[0] if len(ports) == 1 else ports[index]
            if candidate is not None:
                port = candidate
                break
        _check_no_nul('the host name', host)
        specs.append(HostSpec(host=host, port=port,
                              hostaddr=hostaddrs[index] if hostaddrs else None))
    return tuple(specs)


def _resolve_ssl(ssl: Any, direct_tls: Any, hosts: Sequence[HostSpec],
                 pick: Callable[[str], tuple[Any, _Layer]]) -> SSLSettings:
    have_tcp = any(not spec.is_unix_socket for spec in hosts)
    rootcert, _ = pick('sslrootcert')
    context: ssl_module.SSLContext | None = None

    if ssl is None:
        raw_mode, mode_layer = pick('sslmode')
        if raw_mode is None:
            if rootcert == 'system':
                mode = SSLMode.verify_full
            else:
                mode = SSLMode.prefer if have_tcp else SSLMode.disable
        else:
            mode = _parse_sslmode(raw_mode, mode_layer)
    elif ssl is True:
        # asyncpg: create_default_context(), i.e. the system trust store
        # with hostname checks.
        mode = SSLMode.verify_full
        if rootcert is None:
            rootcert = 'system'
    elif ssl is False:
        mode = SSLMode.disable
    elif isinstance(ssl, ssl_module.SSLContext):
        mode, context = SSLMode.require, ssl
    elif isinstance(ssl, (str, SSLMode)):
        mode = _parse_sslmode(ssl, _Layer('argument', {}))
    else:
        raise ClientConfigurationError(
            'ssl is expected to be None, a bool, an sslmode name, an SSLMode '
            f'or an ssl.SSLContext, got {type(ssl).__name__}')

    if rootcert == 'system' and SSLMode.disable < mode < SSLMode.verify_full \
            and context is None:
        raise ClientConfigurationError(
            f'weak sslmode "{mode.name.replace("_", "-")}" may not be used with '
            'sslrootcert=system (use "verify-full")')

    if direct_tls is not None:
        negotiation = SSLNegotiation.direct if direct_tls else SSLNegotiation.postgres
    else:
        raw_neg, neg_layer = pick('sslnegotiation')
        negotiation = SSLNegotiation(_choice(
            'sslnegotiation', raw_neg or 'postgres', ('postgres', 'direct'), neg_layer))
    if negotiation is SSLNegotiation.direct and mode < SSLMode.require:
        raise ClientConfigurationError(
            'direct TLS requires sslmode=require, verify-ca, or verify-full')

    raw_min, min_layer = pick('ssl_min_protocol_version')
    min_version = _tls_version('ssl_min_protocol_version', raw_min or 'TLSv1.2', min_layer)
    raw_max, max_layer = pick('ssl_max_protocol_version')
    max_version = (None if raw_max is None
                   else _tls_version('ssl_max_protocol_version', raw_max, max_layer))
    if max_version is not None and (
            _TLS_VERSIONS.index(min_version) > _TLS_VERSIONS.index(max_version)):
        raise ClientConfigurationError('invalid SSL protocol version range')

    certmode, layer = pick('sslcertmode')
    certmode = _choice('sslcertmode', certmode or 'allow',
                       ('disable', 'allow', 'require'), layer)
    raw_sni, layer = pick('sslsni')
    sni = True if raw_sni is None else _parse_bool('sslsni', raw_sni, layer)
    sslpassword, _ = pick('sslpassword')

    keylog = None
    if not sys.flags.ignore_environment:
        keylog = _env('SSLKEYLOGFILE')
    config_dir = _pg_config_dir()

    return SSLSettings(
        mode=mode,
        negotiation=negotiation,
        context=context,
        rootcert=rootcert,
        cert=pick('sslcert')[0],
        key=pick('sslkey')[0],
        crl=pick('sslcrl')[0],
        crldir=pick('sslcrldir')[0],
        password=None if sslpassword is None else Secret(sslpassword),
        certmode=certmode,
        min_protocol_version=min_version,
        max_protocol_version=max_version,
        sni=sni,
        keylog_filename=keylog,
        default_dir=None if config_dir is None else os.fspath(config_dir),
    )


def _parse_sslmode(value: Any, layer: _Layer) -> SSLMode:
    try:
        return SSLMode.parse(value)
    except AttributeError:
        pass
    modes = ', '.join(m.name.replace('_', '-') for m in SSLMode)
    raise ClientConfigurationError(
        f'`sslmode` parameter must be one of: {modes}, got {layer.describe(value)}')


def _resolve_server_settings(explicit: Any, dsn_extra: Mapping[str, str],
                             pick: Callable[[str], tuple[Any, _Layer]]) -> dict[str, str]:
    if explicit is not None and (
            not isinstance(explicit, Mapping)
            or not all(isinstance(k, str) for k in explicit)
            or not all(isinstance(v, str) for v in explicit.values())):
        raise ClientConfigurationError(
            'server_settings is expected to be None or a Dict[str, str]')

    settings: dict[str, str] = {}
    options, _ = pick('options')
    if options is not None:
        converted = _options_to_settings(options)
        if converted is None:
            settings['options'] = options
        else:
            settings.update(converted)
    # Empty values from a DSN are dropped, as asyncpg's parse_qs does.
    settings.update({k: v for k, v in dsn_extra.items() if v})
    appname, _ = pick('application_name')
    if appname is not None:
        settings['application_name'] = appname
    if explicit is not None:
        settings.update(explicit)
    if 'application_name' not in settings:
        fallback, _ = pick('fallback_application_name')
        if fallback is not None:
            settings['application_name'] = fallback

    for key, value in settings.items():
        if not key:
            raise ClientConfigurationError('server_settings: empty setting name')
        _check_no_nul('server_settings names', key)
        _check_no_nul(f'server setting {key!r}', value)
    encoding = settings.get('client_encoding')
    if encoding is not None:
        name = encoding.strip().strip("'\"").lower().replace('-', '').replace('_', '')
        if name not in _UTF8_NAMES:
            raise ClientConfigurationError(
                'client_encoding must be UTF8: pg_client exchanges text with '
                'the server in UTF-8 only')
    return settings


# ---------------------------------------------------------------------------
# Per-host password and TLS context
# ---------------------------------------------------------------------------

def password_for(params: ConnectionParameters, host: str, port: int) -> str | None:
    """The static password to use for *host*:*port*, or None.

    A configured password wins; otherwise the password file is searched
    (libpq rules: ``host:port:database:user:password`` lines, ``*``
    wildcards, ``\\`` escapes; a Unix socket matches ``localhost`` or its
    directory). A password file readable by group or others is ignored with a
    UserWarning, as libpq and asyncpg do.

    :param host: :attr:`HostSpec.host` of the host being dialled.
    :raises InterfaceError: The password is a callable; use
        :func:`obtain_password`.
    """
    password = params.password
    if isinstance(password, Secret):
        return password.reveal()
    if password is not None:
        raise InterfaceError(
            'the password is a callable; call obtain_password() instead')
    if params.passfile is None:
        return None
    if host.startswith('/'):
        directory = host.split('/.s.PGSQL.')[0] if '/.s.PGSQL.' in host else host
        candidates: Sequence[str] = ('localhost', directory)
    else:
        candidates = (host,)
    return _lookup_pgpass(params.passfile, candidates, port, params.database, params.user)


async def obtain_password(params: ConnectionParameters, host: str, port: int) -> str | None:
    """Like :func:`password_for`, but also calls a password callable.

    The callable is called (and awaited if it returns an awaitable) on every
    call, so a rotating credential is fetched per connection attempt.
    """
    password = params.password
    if password is None or isinstance(password, Secret):
        return password_for(params, host, port)
    value = password()
    if inspect.isawaitable(value):
        value = await value
    if value is not None and not isinstance(value, str):
        raise InterfaceError(
            f'the password callable returned {type(value).__name__}, expected str')
    return value


def _check_key_file(path: str) -> None:
    """Refuse a private key others can read (libpq's rule)."""
    try:
        st = os.stat(path)
    except OSError as e:
        reason = e.strerror
    else:
        reason = None
    if reason is not None:
        raise ClientConfigurationError(
            f'could not access private key file "{path}": {reason}')
    if not stat.S_ISREG(st.st_mode):
        raise ClientConfigurationError(f'private key file "{path}" is not a regular file')
    if _IS_WINDOWS:
        return
    # Root-owned keys may be group-readable (0640) so that a system-wide key
    # can be shared through a group; anything else must be 0600 or less.
    if st.st_uid == 0:
        forbidden = stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO
    else:
        forbidden = stat.S_IRWXG | stat.S_IRWXO
    if st.st_mode & forbidden:
        raise ClientConfigurationError(
            f'private key file "{path}" has group or world access; it must be '
            'u=rw (0600) or less if owned by the current user, or u=rw,g=r '
            '(0640) or less if owned by root')


def make_ssl_context(settings: SSLSettings, host: str | None) -> ssl_module.SSLContext | None:
    """Build the TLS context for one host, with libpq's semantics.

    * disable, or a Unix socket *host*: None.
    * A caller-supplied context is returned unchanged.
    * allow/prefer: no certificate verification.
    * require: verifies the chain when a root certificate is available
      (``sslrootcert`` or ``~/.postgresql/root.crt``), like verify-ca.
    * verify-ca: verifies the chain; a missing root certificate is an error.
    * verify-full: also checks that the certificate matches *host*.
    * ``sslrootcert=system``: the default trust store (only with verify-full).
    * A client certificate is loaded from ``sslcert`` or
      ``~/.postgresql/postgresql.crt`` unless sslcertmode=disable; its key
      must not be readable by group or others, and ``sslpassword`` decrypts
      it. CRLs from ``sslcrl``/``sslcrldir`` or ``~/.postgresql/root.crl``.
      TLS 1.2 is the default minimum; ALPN ``postgresql`` is offered.

    :raises ClientConfigurationError: A configured file is missing or
        unusable.
    """
    if settings.mode is SSLMode.disable:
        return None
    if host is not None and host.startswith('/'):
        return None
    if settings.context is not None:
        return settings.context

    ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl_module.CERT_NONE
    default_dir = pathlib.Path(settings.default_dir) if settings.default_dir else None

    if settings.mode >= SSLMode.require:
        _load_trust(ctx, settings, default_dir)
        if settings.mode is SSLMode.verify_full:
            if not host:
                raise ClientConfigurationError(
                    'sslmode=verify-full needs a host name to verify')
            ctx.check_hostname = True

    if settings.certmode != 'disable':
        loaded = _load_client_cert(ctx, settings, default_dir)
        if not loaded and settings.certmode == 'require':
            raise ClientConfigurationError(
                'sslcertmode=require, but no client certificate is configured')

    ctx.minimum_version = ssl_module.TLSVersion[
        settings.min_protocol_version.replace('.', '_')]
    if settings.max_protocol_version is not None:
        ctx.maximum_version = ssl_module.TLSVersion[
            settings.max_protocol_version.replace('.', '_')]
    if ssl_module.HAS_ALPN:
        ctx.set_alpn_protocols(['postgresql'])
    if settings.keylog_filename:
        ctx.keylog_filename = settings.keylog_filename
    return ctx


def _load_verify(ctx: ssl_module.SSLContext, what: str, *, cafile: str | None = None,
                 capath: str | None = None) -> None:
    try:
        ctx.load_verify_locations(cafile=cafile, capath=capath)
        return
    except OSError as e:
        reason = e.strerror or str(e)
    except ssl_module.SSLError as e:
        reason = e.reason or str(e)
    raise ClientConfigurationError(
        f'could not load {what} "{cafile or capath}": {reason}')


def _load_trust(ctx: ssl_module.SSLContext, settings: SSLSettings,
                default_dir: pathlib.Path | None) -> None:
    if settings.rootcert == 'system':
        ctx.load_default_certs(ssl_module.Purpose.SERVER_AUTH)
        ctx.verify_mode = ssl_module.CERT_REQUIRED
        return
    if settings.rootcert is not None:
        rootcert: str | None = settings.rootcert
    elif default_dir is not None:
        rootcert = os.fspath(default_dir / 'root.crt')
    else:
        rootcert = None
    if rootcert is None or not os.path.exists(rootcert):
        if settings.mode >= SSLMode.verify_ca:
            shown = rootcert or '~/.postgresql/root.crt'
            raise ClientConfigurationError(
                f'root certificate file "{shown}" does not exist or cannot be accessed',
                hint=f'Provide the certificate file directly or make sure "{shown}" '
                     'exists and is readable.',
                detail=None if rootcert else (
                    'Could not determine the home directory to find it in.'))
        # sslmode=require without a root certificate: encrypt, don't verify.
        return
    _load_verify(ctx, 'root certificate file', cafile=rootcert)
    ctx.verify_mode = ssl_module.CERT_REQUIRED

    crl_loaded = False
    if settings.crl is not None:
        _load_verify(ctx, 'certificate revocation list file', cafile=settings.crl)
        crl_loaded = True
    elif settings.crldir is None and default_dir is not None:
        default_crl = default_dir / 'root.crl'
        if default_crl.is_file():
            _load_verify(ctx, 'certificate revocation list file',
                         cafile=os.fspath(default_crl))
            crl_loaded = True
    if settings.crldir is not None:
        if not os.path.isdir(settings.crldir):
            raise ClientConfigurationError(
                f'certificate revocation list directory "{settings.crldir}" '
                'does not exist')
        _load_verify(ctx, 'certificate revocation list directory', capath=settings.crldir)
        crl_loaded = True
    if crl_loaded:
        ctx.verify_flags |= ssl_module.VERIFY_CRL_CHECK_CHAIN


def _load_client_cert(ctx: ssl_module.SSLContext, settings: SSLSettings,
                      default_dir: pathlib.Path | None) -> bool:
    if settings.cert is not None:
        cert = settings.cert
        if not os.path.exists(cert):
            raise ClientConfigurationError(f'certificate file "{cert}" does not exist')
    elif default_dir is not None and (default_dir / 'postgresql.crt').is_file():
        cert = os.fspath(default_dir / 'postgresql.crt')
    else:
        return False
    if settings.key is not None:
        key = settings.key
    elif default_dir is not None:
        key = os.fspath(default_dir / 'postgresql.key')
    else:
        key = ''
    if not key or not os.path.exists(key):
        raise ClientConfigurationError(
            f'certificate present, but not private key file "{key}"')
    _check_key_file(key)
    secret = settings.password

    def key_password() -> str:
        return secret.reveal() if secret is not None else ''

    try:
        ctx.load_cert_chain(cert, keyfile=key, password=key_password)
        return True
    except OSError as e:
        reason = e.strerror or str(e)
    except ssl_module.SSLError as e:
        reason = e.reason or str(e)
    raise ClientConfigurationError(
        f'could not load client certificate "{cert}" or private key "{key}": {reason}',
        hint='If the key is encrypted, check sslpassword.')
