"""Unit tests for pg_client._connect_params (no server needed).

Covers parse_dsn() in both syntaxes, resolve()'s precedence (arguments, DSN,
service file, environment, defaults), hosts and ports, the password file,
the service file, the TLS settings and make_ssl_context(), validation
messages, secret hygiene (RELIABILITY.md S8, S12, S14) and two differential
checks: against asyncpg's connect_utils (when installed) and against libpq's
PQconninfoParse through ctypes (when libpq is on the machine; W9).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import os
import pathlib
import random
import ssl
import stat
import sys
import traceback
import urllib.parse
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from pg_client import _connect_params as cp
from pg_client._connect_params import (
    ConnectionParameters,
    HostSpec,
    Secret,
    SessionAttribute,
    SSLMode,
    SSLNegotiation,
    make_ssl_context,
    obtain_password,
    parse_dsn,
    password_for,
    resolve,
)
from pg_client.exceptions import ClientConfigurationError, InterfaceError

SENTINEL = 'S3cr3t-Sentinel-Ω'
SENTINEL_ENC = urllib.parse.quote(SENTINEL, safe='')
DEFAULT_SEARCH = ['/run/postgresql', '/var/run/postgresql', '/tmp', '/private/tmp']

posix_only = pytest.mark.skipif(sys.platform == 'win32', reason='POSIX file permissions')


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """No PG* variables, an empty HOME and system config dir, a known OS user."""
    for name in list(os.environ):
        if name.startswith('PG') or name == 'SSLKEYLOGFILE':
            monkeypatch.delenv(name)
    home = tmp_path / 'home'
    home.mkdir()
    monkeypatch.setenv('HOME', str(home))
    sysconf = tmp_path / 'sysconf'
    sysconf.mkdir()
    monkeypatch.setenv('PGSYSCONFDIR', str(sysconf))
    monkeypatch.setenv('LOGNAME', 'osuser')
    return home


def addrs(params: ConnectionParameters) -> list[Any]:
    return params.addrs


def write_private(path: pathlib.Path, text: str, mode: int = 0o600) -> pathlib.Path:
    path.write_text(text, encoding='utf-8')
    path.chmod(mode)
    return path


# ---------------------------------------------------------------------------
# parse_dsn: URI form
# ---------------------------------------------------------------------------

URI_CASES = [
    ('postgres://host', {'host': 'host'}),
    ('postgresql://user@host:5433/db',
     {'user': 'user', 'host': 'host', 'port': '5433', 'dbname': 'db'}),
    ('postgres://u:p@h/d', {'user': 'u', 'password': 'p', 'host': 'h', 'dbname': 'd'}),
    ('postgres://u%3Ax:p%40%3A%2F@h/d%20b',
     {'user': 'u:x', 'password': 'p@:/', 'host': 'h', 'dbname': 'd b'}),
    # The last '@' ends the user information: an unencoded '@' in a password
    # does not spill into the host list.
    ('postgres://u:pa@ss@h/d', {'user': 'u', 'password': 'pa@ss', 'host': 'h', 'dbname': 'd'}),
    ('postgres://u:@h', {'user': 'u', 'host': 'h'}),
    ('postgres://:p@h', {'password': 'p', 'host': 'h'}),
    ('postgres://u:a:b@h', {'user': 'u', 'password': 'a:b', 'host': 'h'}),
    ('postgres://[::1]/d', {'host': '::1', 'dbname': 'd'}),
    ('postgres://[::1]:5433/d', {'host': '::1', 'port': '5433', 'dbname': 'd'}),
    ('postgres://[fe80::1%25eth0]:1/d', {'host': 'fe80::1%eth0', 'port': '1', 'dbname': 'd'}),
    ('postgres://h1:1,h2:2,[::1]:5433/d',
     {'host': 'h1,h2,::1', 'port': '1,2,5433', 'dbname': 'd'}),
    ('postgres://h1:1,h2/d', {'host': 'h1,h2', 'port': '1,', 'dbname': 'd'}),
    ('postgres://h1,h2/d', {'host': 'h1,h2', 'dbname': 'd'}),
    ('postgres://%2Ftmp%2Fsock/d', {'host': '/tmp/sock', 'dbname': 'd'}),
    ('postgresql:///d?host=/tmp', {'dbname': 'd', 'host': '/tmp'}),
    ('postgres://:5433/d', {'port': '5433', 'dbname': 'd'}),
    ('postgres://h/', {'host': 'h'}),
    ('postgres://h?sslmode=require', {'host': 'h', 'sslmode': 'require'}),
    ('postgres://h/d?port=7', {'host': 'h', 'dbname': 'd', 'port': '7'}),
    ('postgres://h:5/d?port=7', {'host': 'h', 'port': '7', 'dbname': 'd'}),
    ('postgres://u@h/d?user=v', {'user': 'v', 'host': 'h', 'dbname': 'd'}),
    ('postgres://h/d?application_name=a+b%2Bc',
     {'host': 'h', 'dbname': 'd', 'application_name': 'a b+c'}),
    ('postgres://h/d?options=-c%20search_path%3Dx',
     {'host': 'h', 'dbname': 'd', 'options': '-c search_path=x'}),
    ('postgres://h/d?x=a=b', {'host': 'h', 'dbname': 'd', 'x': 'a=b'}),
    ('postgres://h/d?a=1&&b=2&', {'host': 'h', 'dbname': 'd', 'a': '1', 'b': '2'}),
    ('postgres://h/d?a=1&a=2', {'host': 'h', 'dbname': 'd', 'a': '2'}),
    ('postgres://h/d?ssl=true', {'host': 'h', 'dbname': 'd', 'sslmode': 'require'}),
    ('postgres://h/d?requiressl=1', {'host': 'h', 'dbname': 'd', 'sslmode': 'require'}),
    ('postgres://h/d?database=x', {'host': 'h', 'dbname': 'd'}),
    ('postgres://h?database=x', {'host': 'h', 'dbname': 'x'}),
    ('postgres://h?dbname=a&database=b', {'host': 'h', 'dbname': 'a'}),
    ('postgres://h?database=b&dbname=a', {'host': 'h', 'dbname': 'a'}),
    ('POSTGRES://h', {'host': 'h'}),
    ('  postgres://h \n', {'host': 'h'}),
    ('postgres://u:p#x@h/d', {'user': 'u', 'password': 'p#x', 'host': 'h', 'dbname': 'd'}),
    ('postgres://u:100%sure@h', {'user': 'u', 'password': '100%sure', 'host': 'h'}),
    ('postgres://h/d%C3%A9', {'host': 'h', 'dbname': 'dé'}),
    ('postgres://h/a/b', {'host': 'h', 'dbname': 'a/b'}),
    ('postgres://u+x:p+y@h/d+z', {'user': 'u+x', 'password': 'p+y', 'host': 'h',
                                  'dbname': 'd+z'}),
    ('postgres://h/d?pass%77ord=x', {'host': 'h', 'dbname': 'd', 'password': 'x'}),
    ('postgres://h/d?host=%5B%3A%3A1%5D%3A5433',
     {'host': '::1', 'port': '5433', 'dbname': 'd'}),
    ('postgres://h/d?host=h2:6000,h3', {'host': 'h2,h3', 'port': '6000,', 'dbname': 'd'}),
    ('postgres://h/d?port=7&host=h2:6000', {'host': 'h2', 'port': '7', 'dbname': 'd'}),
    # libpq: the netloc's ports stay when ?host= replaces the hosts.
    ('postgres://h:6000/d?host=/tmp', {'host': '/tmp', 'port': '6000', 'dbname': 'd'}),
    ('postgres://h1:5,h2/d?host=h3', {'host': 'h3', 'port': '5,', 'dbname': 'd'}),
    ('postgres://h/d?host=::1', {'host': '::1', 'dbname': 'd'}),
]


@pytest.mark.parametrize(('dsn', 'expected'), URI_CASES)
def test_parse_uri(dsn: str, expected: dict[str, str]) -> None:
    assert parse_dsn(dsn) == expected


# ---------------------------------------------------------------------------
# parse_dsn: keyword/value form
# ---------------------------------------------------------------------------

KEYWORD_CASES = [
    ('host=h port=5433 dbname=d user=u',
     {'host': 'h', 'port': '5433', 'dbname': 'd', 'user': 'u'}),
    ("dbname='a b'", {'dbname': 'a b'}),
    (r"password='x\'y'", {'password': "x'y"}),
    (r'password=x\ y', {'password': 'x y'}),
    (r"password='a\\b'", {'password': 'a\\b'}),
    (r"password=it\'s", {'password': "it's"}),
    ("password=a'b", {'password': "a'b"}),
    ('password=a=b', {'password': 'a=b'}),
    ('host = h   port =5', {'host': 'h', 'port': '5'}),
    # libpq: blanks after '=' are skipped, so the value is the next token.
    ('host= port=5', {'host': 'port=5'}),
    ("host=''", {'host': ''}),
    ("sslmode='require'host=h", {'sslmode': 'require', 'host': 'h'}),
    ('host=h1,h2 port=1,2', {'host': 'h1,h2', 'port': '1,2'}),
    ('host=::1,fe80::2', {'host': '::1,fe80::2'}),
    ('host=h:5433', {'host': 'h', 'port': '5433'}),
    ('port=7 host=h:5433', {'host': 'h', 'port': '7'}),
    ('host=h:5433 port=7', {'host': 'h', 'port': '7'}),
    ('host=[::1]:5433', {'host': '::1', 'port': '5433'}),
    ('host=/tmp', {'host': '/tmp'}),
    ('host=h host=g', {'host': 'g'}),
    ("options='-c geqo=off' application_name=x",
     {'options': '-c geqo=off', 'application_name': 'x'}),
    ('database=x', {'dbname': 'x'}),
    ('requiressl=0', {'sslmode': 'prefer'}),
    ('  \t\nhost=h\n', {'host': 'h'}),
    ('', {}),
    ('dbname="x"', {'dbname': '"x"'}),
    ("password=''", {'password': ''}),
    ("user=Ωmega dbname='日本'", {'user': 'Ωmega', 'dbname': '日本'}),
]


@pytest.mark.parametrize(('dsn', 'expected'), KEYWORD_CASES)
def test_parse_keyword_value(dsn: str, expected: dict[str, str]) -> None:
    assert parse_dsn(dsn) == expected


DSN_ERRORS = [
    ('host', 'missing "="'),
    ('host=h port', 'missing "="'),
    ("password='abc", 'unterminated quoted string'),
    ("password='abc\\'", 'unterminated quoted string'),
    ('=x', 'unknown connection option'),
    ("a='x'b=y", 'unknown connection option name (offset 0)'),
    ('host=h search_path=x', "options='-c name=value'"),
    ('mysql://h', 'scheme is expected to be either "postgresql" or "postgres"'),
    ('postgres://[::1/d', 'missing "]"'),
    ('postgres://[]/d', 'empty IPv6'),
    ('postgres://[::1]x/d', 'unexpected character'),
    ('postgres://h:abc/d', 'invalid port'),
    ('postgres://h:1:2/d', 'invalid port'),
    ('postgres://h/d?password', 'missing "="'),
    ('postgres://h/d?=x', 'empty option name'),
    ('postgres://h/d%00', '%00'),
    ('postgres://h/d?x=%FF', 'UTF-8'),
    ('host=h\x00', 'NUL'),
    ('postgres://h/d?port=x', 'invalid port'),
    ('port=abc', 'invalid port'),
    ('host=[::1', 'missing "]"'),
    ('host=[::1]x', 'unexpected text'),
    ('postgres://h/d?statement_cache_size=0', 'connect() argument'),
    ('postgres://h/d?ssl=false', 'connect() argument'),
    ('connection_class=os.system', 'connect() argument'),
    ('record_class=x', 'connect() argument'),
    ('postgres://h/d?server_settings=x', 'connect() argument'),
]


@pytest.mark.parametrize(('dsn', 'fragment'), DSN_ERRORS)
def test_parse_dsn_errors(dsn: str, fragment: str) -> None:
    with pytest.raises(ClientConfigurationError) as info:
        parse_dsn(dsn)
    assert fragment in str(info.value)
    # A ValueError too, like asyncpg's errors for bad DSNs.
    assert isinstance(info.value, ValueError)


def test_parse_dsn_rejects_non_str() -> None:
    with pytest.raises(ClientConfigurationError, match='dsn is expected to be a str'):
        parse_dsn(b'postgres://h')  # type: ignore[arg-type]


def test_dsn_options_repr_masks_secrets() -> None:
    options = parse_dsn(f'postgres://u:{SENTINEL_ENC}@h/d?sslpassword=zzzSSLPASS')
    assert options['password'] == SENTINEL
    for text in (repr(options), str(options), f'{options}'):
        assert SENTINEL not in text
        assert 'zzzSSLPASS' not in text
        assert "'host': 'h'" in text
    assert isinstance(options, dict)


# ---------------------------------------------------------------------------
# resolve(): hosts and ports
# ---------------------------------------------------------------------------

HOST_CASES: list[tuple[str | None, dict[str, Any], dict[str, str], list[Any]]] = [
    (None, {}, {}, [*(f'{d}/.s.PGSQL.5432' for d in DEFAULT_SEARCH), ('localhost', 5432)]),
    (None, {}, {'PGPORT': '6000'},
     [*(f'{d}/.s.PGSQL.6000' for d in DEFAULT_SEARCH), ('localhost', 6000)]),
    (None, {'port': 6001}, {}, [*(f'{d}/.s.PGSQL.6001' for d in DEFAULT_SEARCH),
                                ('localhost', 6001)]),
    (None, {'host': 'h'}, {}, [('h', 5432)]),
    (None, {'host': ['a', 'b'], 'port': [1, 2]}, {}, [('a', 1), ('b', 2)]),
    (None, {'host': ('a', 'b'), 'port': 7}, {}, [('a', 7), ('b', 7)]),
    (None, {'host': ['a', 'b'], 'port': '7,8'}, {}, [('a', 7), ('b', 8)]),
    (None, {'host': ['a', 'b'], 'port': ['7', 8]}, {}, [('a', 7), ('b', 8)]),
    (None, {'host': ['a', 'b'], 'port': [9]}, {}, [('a', 9), ('b', 9)]),
    (None, {'host': '/tmp'}, {}, ['/tmp/.s.PGSQL.5432']),
    (None, {'host': '/tmp', 'port': 1234}, {}, ['/tmp/.s.PGSQL.1234']),
    (None, {'host': '/tmp/.s.PGSQL.1234'}, {}, ['/tmp/.s.PGSQL.1234']),
    # As in asyncpg, a str argument is one host, commas and all.
    (None, {'host': 'a,b'}, {}, [('a,b', 5432)]),
    ('postgres://h1:1,h2/d', {}, {}, [('h1', 1), ('h2', 5432)]),
    ('postgres://h1:1,h2/d', {}, {'PGPORT': '9'}, [('h1', 1), ('h2', 9)]),
    ('postgres://h1:1,h2/d', {'port': 5}, {}, [('h1', 5), ('h2', 5)]),
    ('postgres://h:1/d', {'host': 'k'}, {}, [('k', 5432)]),
    ('postgres://h/d?port=1', {'host': 'k'}, {}, [('k', 1)]),
    ('postgres://h/d', {}, {'PGHOST': 'e', 'PGPORT': '3'}, [('h', 3)]),
    ('postgres://[::1]:5433/d', {}, {}, [('::1', 5433)]),
    ('postgres://h/d?port=7', {}, {}, [('h', 7)]),
    ('postgres:///d?host=/var/run/postgresql&port=6000', {}, {},
     ['/var/run/postgresql/.s.PGSQL.6000']),
    ('postgres://:5433/d', {}, {}, [*(f'{d}/.s.PGSQL.5433' for d in DEFAULT_SEARCH),
                                    ('localhost', 5433)]),
    ('host=h1,h2 port=1,', {}, {'PGPORT': '9'}, [('h1', 1), ('h2', 9)]),
    (None, {}, {'PGHOST': 'e1,e2', 'PGPORT': '1,2'}, [('e1', 1), ('e2', 2)]),
    (None, {}, {'PGHOST': '/tmp'}, ['/tmp/.s.PGSQL.5432']),
    (None, {}, {'PGHOST': '::1'}, [('::1', 5432)]),
    # asyncpg: PGPORT is only the default for PGHOST entries without a port.
    (None, {}, {'PGHOST': 'h1:1,[::1]:2,h3', 'PGPORT': '9'}, [('h1', 1), ('::1', 2), ('h3', 9)]),
    (None, {'port': 4}, {'PGHOST': 'h1:1,h2'}, [('h1', 4), ('h2', 4)]),
    (None, {'hostaddr': '127.0.0.1'}, {}, [('127.0.0.1', 5432)]),
    (None, {'host': 'db.example', 'hostaddr': '127.0.0.1'}, {}, [('127.0.0.1', 5432)]),
    ('host=a,b hostaddr=10.0.0.1,', {}, {}, [('10.0.0.1', 5432), ('b', 5432)]),
    (None, {'host': 'h'}, {'PGHOSTADDR': '::1'}, [('::1', 5432)]),
]


@pytest.mark.parametrize(('dsn', 'kwargs', 'env', 'expected'), HOST_CASES)
def test_hosts_and_ports(monkeypatch: pytest.MonkeyPatch, dsn: str | None,
                         kwargs: dict[str, Any], env: dict[str, str],
                         expected: list[Any]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert addrs(resolve(dsn, **kwargs)) == expected


def test_hostaddr_keeps_host_for_verification() -> None:
    params = resolve(host='db.example', hostaddr='127.0.0.1')
    (spec,) = params.hosts
    assert spec == HostSpec(host='db.example', port=5432, hostaddr='127.0.0.1')
    assert not spec.is_unix_socket
    assert spec.address == ('127.0.0.1', 5432)


def test_host_spec_unix() -> None:
    spec = HostSpec('/sock', 6000)
    assert spec.is_unix_socket
    assert spec.address == '/sock/.s.PGSQL.6000'


HOST_ERRORS: list[tuple[str | None, dict[str, Any], dict[str, str], str]] = [
    (None, {'host': ['a', 'b', 'c'], 'port': [1, 2]}, {},
     'could not match 2 port numbers to 3 hosts'),
    ('postgres://a,b,c/d?port=1,2', {}, {}, 'could not match 2 port numbers to 3 hosts'),
    (None, {'port': '1,2'}, {}, 'could not match 2 port numbers to 5 hosts'),
    (None, {'host': ['a', 'b', 'c']}, {'PGPORT': '1,2'},
     'could not match 2 port numbers to 3 hosts'),
    (None, {'port': 0}, {}, 'invalid port'),
    (None, {'port': 70000}, {}, 'invalid port'),
    (None, {'port': True}, {}, 'port is expected'),
    (None, {'port': 1.5}, {}, 'port is expected'),
    (None, {'port': 'x'}, {}, 'invalid port'),
    ('postgres://h:99999/d', {}, {}, 'invalid port'),
    (None, {}, {'PGPORT': 'abc'}, 'invalid port'),
    ('host=a,,b', {}, {}, 'empty host name'),
    ('postgres://h1,/d', {}, {}, 'empty host name'),
    (None, {'host': 5}, {}, 'host is expected'),
    (None, {'host': ['a', '']}, {}, 'host is expected'),
    (None, {'host': ['a', 'b'], 'hostaddr': '1.2.3.4'}, {},
     'could not match 2 host names to 1 hostaddr'),
    (None, {'hostaddr': 'not-an-ip'}, {}, 'invalid hostaddr'),
    ('hostaddr=nope', {}, {}, 'invalid hostaddr'),
]


@pytest.mark.parametrize(('dsn', 'kwargs', 'env', 'fragment'), HOST_ERRORS)
def test_host_errors(monkeypatch: pytest.MonkeyPatch, dsn: str | None, kwargs: dict[str, Any],
                     env: dict[str, str], fragment: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ClientConfigurationError, match=fragment.replace('(', r'\(')):
        resolve(dsn, **kwargs)


def test_dsn_sourced_values_are_not_quoted_in_errors() -> None:
    with pytest.raises(ClientConfigurationError) as info:
        resolve('hostaddr=zzz-not-an-ip')
    assert 'zzz' not in str(info.value)
    assert 'from the DSN' in str(info.value)
    with pytest.raises(ClientConfigurationError) as info:
        resolve(hostaddr='zzz-not-an-ip')
    assert "'zzz-not-an-ip'" in str(info.value)


# ---------------------------------------------------------------------------
# resolve(): user, database, password precedence
# ---------------------------------------------------------------------------

def test_defaults() -> None:
    params = resolve()
    assert params.user == 'osuser'
    assert params.database == 'osuser'
    assert params.password is None
    assert params.ssl.mode is SSLMode.prefer
    assert params.target_session_attrs is SessionAttribute.any
    assert params.krbsrvname == 'postgres'
    assert params.gsslib == ('sspi' if sys.platform == 'win32' else 'gssapi')
    assert params.channel_binding == 'prefer'
    assert params.require_auth is None
    assert (params.min_protocol_version, params.max_protocol_version) == ('3.0', '3.0')
    assert params.load_balance_hosts == 'disable'
    assert params.connect_timeout is None
    assert params.timeout == 60
    assert params.keepalives is True
    assert params.server_settings == {}
    assert params.config == cp.ConnectionConfiguration(
        command_timeout=None, statement_cache_size=100,
        max_cached_statement_lifetime=300, max_cacheable_statement_size=15360)
    assert params.ssl.min_protocol_version == 'TLSv1.2'


PRECEDENCE = [
    # (option, kwarg name, kwarg value, DSN key, service key, env var, attribute)
    ('user', 'user', 'kw', 'user', 'user', 'PGUSER', 'user'),
    ('database', 'database', 'kw', 'dbname', 'dbname', 'PGDATABASE', 'database'),
    ('krbsrvname', 'krbsrvname', 'kw', 'krbsrvname', 'krbsrvname', 'PGKRBSRVNAME',
     'krbsrvname'),
    ('require_auth', 'require_auth', 'kw', 'require_auth', 'require_auth', 'PGREQUIREAUTH',
     'require_auth'),
]


@pytest.mark.parametrize('level', ['kwarg', 'dsn', 'service', 'env'])
@pytest.mark.parametrize(('option', 'kwarg', 'kwvalue', 'dsnkey', 'servicekey', 'envvar',
                          'attr'), PRECEDENCE)
def test_precedence(monkeypatch: pytest.MonkeyPatch, clean_env: pathlib.Path, level: str,
                    option: str, kwarg: str, kwvalue: str, dsnkey: str, servicekey: str,
                    envvar: str, attr: str) -> None:
    """Each layer beats every layer below it."""
    levels = ['kwarg', 'dsn', 'service', 'env']
    present = levels[levels.index(level):]
    kwargs: dict[str, Any] = {}
    dsn = 'host=h service=svc'
    (clean_env / '.pg_service.conf').write_text('[svc]\n')
    if 'kwarg' in present:
        kwargs[kwarg] = kwvalue
    if 'dsn' in present:
        dsn += f' {dsnkey}=dsn'
    if 'service' in present:
        (clean_env / '.pg_service.conf').write_text(f'[svc]\n{servicekey}=service\n')
    if 'env' in present:
        monkeypatch.setenv(envvar, 'env')
    expected = {'kwarg': kwvalue, 'dsn': 'dsn', 'service': 'service', 'env': 'env'}[level]
    assert getattr(resolve(dsn, **kwargs), attr) == expected


def test_database_defaults_to_user(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(user='alice').database == 'alice'
    monkeypatch.setenv('PGUSER', 'bob')
    assert resolve().database == 'bob'
    monkeypatch.setenv('PGDATABASE', 'db')
    assert resolve().database == 'db'


def test_empty_uri_path_does_not_hide_pgdatabase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('PGDATABASE', 'envdb')
    assert resolve('postgres://h/').database == 'envdb'
    assert resolve('postgres://h/x').database == 'x'


def test_empty_strings_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('PGSSLMODE', '')
    monkeypatch.setenv('PGHOST', '')
    monkeypatch.setenv('PGUSER', '')
    params = resolve(host='')
    assert params.ssl.mode is SSLMode.prefer
    assert params.user == 'osuser'
    assert len(params.hosts) == 5


def test_password_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve().password is None
    monkeypatch.setenv('PGPASSWORD', 'envpw')
    assert resolve().password == Secret('envpw')
    assert resolve('postgres://u:dsnpw@h').password == Secret('dsnpw')
    assert resolve('password=kvpw').password == Secret('kvpw')
    assert resolve('postgres://u:dsnpw@h', password='kw').password == Secret('kw')

    def cb() -> str:
        return 'cb'

    assert resolve('postgres://u:dsnpw@h', password=cb).password is cb


def test_password_type_checked() -> None:
    with pytest.raises(ClientConfigurationError, match='password is expected'):
        resolve(password=123)  # type: ignore[arg-type]


async def test_obtain_password_calls_callables_every_time() -> None:
    calls: list[int] = []

    def sync_pw() -> str:
        calls.append(1)
        return f'sync{len(calls)}'

    async def async_pw() -> str:
        return 'async'

    params = resolve(host='h', password=sync_pw)
    assert await obtain_password(params, 'h', 5432) == 'sync1'
    assert await obtain_password(params, 'h', 5432) == 'sync2'
    assert await obtain_password(resolve(host='h', password=async_pw), 'h', 5432) == 'async'
    assert await obtain_password(resolve(host='h', password='s'), 'h', 5432) == 's'
    with pytest.raises(InterfaceError, match='callable'):
        password_for(params, 'h', 5432)

    def bad() -> Any:
        return 42

    with pytest.raises(InterfaceError, match='returned int'):
        await obtain_password(resolve(host='h', password=bad), 'h', 5432)


def test_nul_bytes_refused() -> None:
    cases: list[dict[str, Any]] = [{'user': 'a\x00b'}, {'database': 'a\x00'},
                                   {'password': 'p\x00'}, {'host': 'h\x00'}]
    for kwargs in cases:
        with pytest.raises(ClientConfigurationError, match='NUL'):
            resolve(**kwargs)


# ---------------------------------------------------------------------------
# Password file
# ---------------------------------------------------------------------------

PGPASS = '\n'.join([
    '# comment line',
    'h1:5432:db:user:pw1',
    '*:5433:*:*:pw_any5433',
    'localhost:*:db:user:pw_local',
    r'h\:x:5432:db:user:pw_colonhost',
    r'h2:5432:db:user:pw\:with\\escapes',
    'h3:5432:db:user:pw:trailing',
    'h4:5432:db:user:',
    r'h5:5432:d\b:user:pw_escaped_db',
    'short:5432:db',
    'crlf:5432:db:user:pw_crlf\r',
    '  h6:5432:db:user:pw_leading_space_host',
    'h7:5432:db:user: spaced pw ',
    'h8:05432:db:user:pw_port_text',
    '',
])

PGPASS_CASES = [
    ('h1', 5432, 'db', 'user', 'pw1'),
    ('h1', 5433, 'x', 'y', 'pw_any5433'),
    ('/tmp', 5432, 'db', 'user', 'pw_local'),
    ('/tmp/.s.PGSQL.5432', 5432, 'db', 'user', 'pw_local'),
    ('localhost', 1, 'db', 'user', 'pw_local'),
    ('h:x', 5432, 'db', 'user', 'pw_colonhost'),
    ('h2', 5432, 'db', 'user', 'pw:with\\escapes'),
    ('h3', 5432, 'db', 'user', 'pw'),
    ('h4', 5432, 'db', 'user', ''),
    ('h5', 5432, 'db', 'user', 'pw_escaped_db'),
    ('short', 5432, 'db', 'user', None),
    ('crlf', 5432, 'db', 'user', 'pw_crlf'),
    ('h6', 5432, 'db', 'user', None),
    ('  h6', 5432, 'db', 'user', 'pw_leading_space_host'),
    ('h7', 5432, 'db', 'user', ' spaced pw '),
    ('h8', 5432, 'db', 'user', None),
    ('h1', 5432, 'db', 'other', None),
    ('zz', 5432, 'db', 'user', None),
    ('# comment line', 5432, 'db', 'user', None),
]


@pytest.mark.parametrize(('host', 'port', 'db', 'user', 'expected'), PGPASS_CASES)
def test_passfile_matching(clean_env: pathlib.Path, host: str, port: int, db: str,
                           user: str, expected: str | None) -> None:
    write_private(clean_env / '.pgpass', PGPASS)
    params = resolve(host=host, port=port, database=db, user=user)
    assert params.passfile == str(clean_env / '.pgpass')
    assert password_for(params, host, port) == expected


def test_passfile_unix_socket_directory_match(tmp_path: pathlib.Path) -> None:
    passfile = write_private(tmp_path / 'pgpass', '/sockdir:5432:db:u:by_dir\n')
    params = resolve(host='/sockdir', database='db', user='u', passfile=passfile)
    assert password_for(params, '/sockdir', 5432) == 'by_dir'


def test_passfile_per_host(tmp_path: pathlib.Path) -> None:
    passfile = write_private(tmp_path / 'pgpass', 'a:1:db:u:pa\nb:2:db:u:pb\n')
    params = resolve(host=['a', 'b'], port=[1, 2], database='db', user='u',
                     passfile=str(passfile))
    assert [password_for(params, s.host, s.port) for s in params.hosts] == ['pa', 'pb']


def test_passfile_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                          clean_env: pathlib.Path) -> None:
    write_private(clean_env / '.pgpass', '*:*:*:*:from_home\n')
    env_file = write_private(tmp_path / 'env_pgpass', '*:*:*:*:from_env\n')
    dsn_file = write_private(tmp_path / 'dsn pgpass', '*:*:*:*:from_dsn\n')
    kw_file = write_private(tmp_path / 'kw_pgpass', '*:*:*:*:from_kwarg\n')

    def pw(dsn: str | None = 'host=h', **kwargs: Any) -> str | None:
        return password_for(resolve(dsn, **kwargs), 'h', 5432)

    assert pw() == 'from_home'
    monkeypatch.setenv('PGPASSFILE', str(env_file))
    assert pw() == 'from_env'
    assert pw(f"host=h passfile='{dsn_file}'") == 'from_dsn'
    assert pw(f"host=h passfile='{dsn_file}'", passfile=kw_file) == 'from_kwarg'
    # A configured password wins over the file, even PGPASSWORD.
    monkeypatch.setenv('PGPASSWORD', 'explicit')
    assert pw() == 'explicit'
    monkeypatch.setenv('PGPASSWORD', '')
    assert pw() == 'from_env'


def test_passfile_needs_user_and_database(tmp_path: pathlib.Path) -> None:
    passfile = write_private(tmp_path / 'pgpass', '*:*:*:*:pw\n')
    params = resolve(host='h', passfile=passfile)
    empty = ConnectionParameters(**{**params.__dict__, 'database': ''})
    assert password_for(empty, 'h', 5432) is None


@posix_only
@pytest.mark.parametrize('mode', [0o644, 0o640, 0o604, 0o660, 0o700 | 0o070])
def test_passfile_permission_warning(tmp_path: pathlib.Path, mode: int) -> None:
    passfile = write_private(tmp_path / 'pgpass', f'*:*:*:*:{SENTINEL}\n', mode)
    params = resolve(host='h', passfile=passfile)
    with pytest.warns(UserWarning, match='group or world access') as record:
        assert password_for(params, 'h', 5432) is None
    assert all(SENTINEL not in str(w.message) for w in record)


@posix_only
def test_passfile_not_a_plain_file(tmp_path: pathlib.Path) -> None:
    params = resolve(host='h', passfile=tmp_path)
    with pytest.warns(UserWarning, match='not a plain file'):
        assert password_for(params, 'h', 5432) is None


def test_passfile_missing_is_silent(tmp_path: pathlib.Path) -> None:
    params = resolve(host='h', passfile=tmp_path / 'nope')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert password_for(params, 'h', 5432) is None


# ---------------------------------------------------------------------------
# Service file
# ---------------------------------------------------------------------------

SERVICE_FILE = """\
# comment
; configparser-style comment
[other]
host=other-host

[svc]
host=svc-host
port=6000
dbname=svcdb
user=svcuser
password=svcpw
sslmode=require
application_name=svcapp
options=-c geqo=off
host=ignored-second-value

[svc]
host=ignored-second-section

[spaced]
 host = spaced-host
PORT: 6001
database=aliasdb
"""


@pytest.fixture
def service_file(clean_env: pathlib.Path) -> pathlib.Path:
    path = clean_env / '.pg_service.conf'
    path.write_text(SERVICE_FILE)
    return path


def test_service_basic(service_file: pathlib.Path) -> None:
    params = resolve(service='svc')
    assert addrs(params) == [('svc-host', 6000)]
    assert (params.user, params.database) == ('svcuser', 'svcdb')
    assert params.password == Secret('svcpw')
    assert params.ssl.mode is SSLMode.require
    assert params.service == 'svc'
    assert params.server_settings == {'geqo': 'off', 'application_name': 'svcapp'}


def test_service_superset_syntax(service_file: pathlib.Path) -> None:
    params = resolve(service='spaced')
    assert addrs(params) == [('spaced-host', 6001)]
    assert params.database == 'aliasdb'


def test_service_from_dsn_and_env(monkeypatch: pytest.MonkeyPatch,
                                  service_file: pathlib.Path) -> None:
    assert addrs(resolve('service=svc')) == [('svc-host', 6000)]
    assert addrs(resolve('postgres://?service=svc')) == [('svc-host', 6000)]
    monkeypatch.setenv('PGSERVICE', 'other')
    assert addrs(resolve()) == [('other-host', 5432)]
    # The DSN beats PGSERVICE, an argument beats the DSN.
    assert addrs(resolve('service=svc')) == [('svc-host', 6000)]
    assert addrs(resolve('service=other', service='svc')) == [('svc-host', 6000)]


def test_service_precedence(monkeypatch: pytest.MonkeyPatch, service_file: pathlib.Path) -> None:
    monkeypatch.setenv('PGHOST', 'env-host')
    monkeypatch.setenv('PGUSER', 'envuser')
    params = resolve('service=svc user=dsnuser', database='kwdb')
    assert addrs(params) == [('svc-host', 6000)]
    assert params.user == 'dsnuser'
    assert params.database == 'kwdb'
    # DSN port applies to the service's hosts; a DSN host replaces them.
    assert addrs(resolve('service=svc port=7')) == [('svc-host', 7)]
    assert addrs(resolve('service=svc host=d')) == [('d', 6000)]


def test_servicefile_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    a = tmp_path / 'a.conf'
    a.write_text('[s]\nhost=from-a\n')
    b = tmp_path / 'b b.conf'
    b.write_text('[s]\nhost=from-b\n')
    monkeypatch.setenv('PGSERVICEFILE', str(a))
    assert addrs(resolve(service='s')) == [('from-a', 5432)]
    assert addrs(resolve(f"service=s servicefile='{b}'")) == [('from-b', 5432)]
    assert addrs(resolve('service=s', servicefile=b)) == [('from-b', 5432)]


def test_system_service_file(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                             clean_env: pathlib.Path) -> None:
    sysconf = pathlib.Path(os.environ['PGSYSCONFDIR'])
    (sysconf / 'pg_service.conf').write_text('[s]\nhost=system\n[t]\nhost=system-t\n')
    assert addrs(resolve(service='s')) == [('system', 5432)]
    # The user's file is searched first; the system file is the fallback.
    (clean_env / '.pg_service.conf').write_text('[s]\nhost=user\n')
    assert addrs(resolve(service='s')) == [('user', 5432)]
    assert addrs(resolve(service='t')) == [('system-t', 5432)]


SERVICE_ERRORS = [
    ('[s]\nhost\n', 'syntax error in service file'),
    ('[s]\nbogus_key=1\n', 'unknown option name'),
    ('[s]\nservice=t\n', 'nested service'),
    ('[other]\nhost=x\n', 'definition of service'),
    ('[s]\nrequirepeer=postgres\n', 'not supported'),
    ('[s]\nsslmode=bogus\n', '`sslmode` parameter must be one of'),
]


@pytest.mark.parametrize(('text', 'fragment'), SERVICE_ERRORS)
def test_service_errors(clean_env: pathlib.Path, text: str, fragment: str) -> None:
    (clean_env / '.pg_service.conf').write_text(text)
    with pytest.raises(ClientConfigurationError, match=fragment):
        resolve(service='s')


def test_service_missing_files(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    with pytest.raises(ClientConfigurationError, match='definition of service'):
        resolve(service='nowhere')
    with pytest.raises(ClientConfigurationError, match='not found'):
        resolve(service='s', servicefile=tmp_path / 'missing.conf')
    # Without a service name, no file is read at all.
    monkeypatch.setenv('PGSERVICEFILE', str(tmp_path / 'missing.conf'))
    resolve()


def test_service_error_does_not_quote_values(clean_env: pathlib.Path) -> None:
    (clean_env / '.pg_service.conf').write_text(f'[s]\npassword={SENTINEL}\nbogus{SENTINEL}\n')
    with pytest.raises(ClientConfigurationError) as info:
        resolve(service='s')
    assert SENTINEL not in ''.join(traceback.format_exception(info.value))


# ---------------------------------------------------------------------------
# TLS settings
# ---------------------------------------------------------------------------

_CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

SSL_MATRIX: list[tuple[Any, str | None, dict[str, str], SSLMode]] = [
    (None, None, {}, SSLMode.prefer),
    (None, 'postgres:///d?host=/tmp', {}, SSLMode.disable),
    (None, 'postgres:///d?host=/tmp&sslmode=require', {}, SSLMode.require),
    (None, None, {'PGSSLMODE': 'require'}, SSLMode.require),
    (None, 'postgres://h/d?sslmode=verify-ca', {'PGSSLMODE': 'disable'}, SSLMode.verify_ca),
    (None, 'sslmode=allow', {}, SSLMode.allow),
    (True, None, {}, SSLMode.verify_full),
    (False, 'postgres://h?sslmode=require', {'PGSSLMODE': 'require'}, SSLMode.disable),
    ('verify-full', 'sslmode=disable', {}, SSLMode.verify_full),
    ('verify_full', None, {}, SSLMode.verify_full),
    ('disable', None, {}, SSLMode.disable),
    (SSLMode.allow, None, {}, SSLMode.allow),
    (_CTX, 'sslmode=disable', {}, SSLMode.require),
    (None, 'postgres://h?sslrootcert=system', {}, SSLMode.verify_full),
    (None, None, {'PGSSLROOTCERT': 'system'}, SSLMode.verify_full),
    (None, 'sslrootcert=system sslmode=verify-full', {}, SSLMode.verify_full),
    (False, 'sslrootcert=system', {}, SSLMode.disable),
]


@pytest.mark.parametrize(('ssl_arg', 'dsn', 'env', 'mode'), SSL_MATRIX)
def test_sslmode_matrix(monkeypatch: pytest.MonkeyPatch, ssl_arg: Any, dsn: str | None,
                        env: dict[str, str], mode: SSLMode) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = resolve(dsn, ssl=ssl_arg).ssl
    assert settings.mode is mode
    assert settings.is_advisory == (mode in (SSLMode.allow, SSLMode.prefer))
    assert (settings.context is _CTX) == (ssl_arg is _CTX)


def test_ssl_true_uses_system_roots_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(ssl=True).ssl.rootcert == 'system'
    assert resolve('sslrootcert=/ca.pem', ssl=True).ssl.rootcert == '/ca.pem'


def test_ssl_files_resolved(monkeypatch: pytest.MonkeyPatch, clean_env: pathlib.Path) -> None:
    monkeypatch.setenv('PGSSLCERT', '/env/cert')
    monkeypatch.setenv('PGSSLKEY', '/env/key')
    monkeypatch.setenv('PGSSLCRL', '/env/crl')
    monkeypatch.setenv('PGSSLMINPROTOCOLVERSION', 'tlsv1.3')
    settings = resolve(
        "sslrootcert=/dsn/root sslcert='/dsn/cert' sslpassword=kp sslcrldir=/crls "
        'sslcertmode=require sslsni=0 ssl_max_protocol_version=TLSv1.3').ssl
    assert settings.rootcert == '/dsn/root'
    assert settings.cert == '/dsn/cert'
    assert settings.key == '/env/key'
    assert settings.crl == '/env/crl'
    assert settings.crldir == '/crls'
    assert settings.password == Secret('kp')
    assert settings.certmode == 'require'
    assert settings.sni is False
    assert (settings.min_protocol_version, settings.max_protocol_version) == ('TLSv1.3',
                                                                              'TLSv1.3')
    assert settings.default_dir == str(clean_env / '.postgresql')


def test_sslnegotiation(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve().ssl.negotiation is SSLNegotiation.postgres
    assert resolve('sslmode=require sslnegotiation=direct').ssl.negotiation is \
        SSLNegotiation.direct
    assert resolve(ssl='require', direct_tls=True).ssl_negotiation is SSLNegotiation.direct
    assert resolve('sslmode=require sslnegotiation=direct', direct_tls=False).ssl.negotiation \
        is SSLNegotiation.postgres
    monkeypatch.setenv('PGSSLNEGOTIATION', 'direct')
    assert resolve(ssl='verify-full').ssl.negotiation is SSLNegotiation.direct
    assert resolve(ssl=_CTX).ssl.negotiation is SSLNegotiation.direct


def test_sslkeylogfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('SSLKEYLOGFILE', '/tmp/keys')
    assert resolve().ssl.keylog_filename == '/tmp/keys'


SSL_ERRORS: list[tuple[Any, str | None, dict[str, Any], str]] = [
    ('bogus', None, {}, '`sslmode` parameter must be one of: disable, allow, prefer, require, '
                        'verify-ca, verify-full'),
    (None, 'sslmode=parse', {}, '`sslmode` parameter must be one of'),
    (3, None, {}, 'ssl is expected to be'),
    (None, 'sslmode=require sslrootcert=system', {}, 'weak sslmode "require"'),
    ('verify-ca', 'sslrootcert=system', {}, 'weak sslmode "verify-ca"'),
    (None, 'sslnegotiation=direct', {}, 'direct TLS requires sslmode=require'),
    ('prefer', None, {'direct_tls': True}, 'direct TLS requires'),
    (None, 'sslnegotiation=fast', {}, '`sslnegotiation` parameter must be one of'),
    (None, 'ssl_min_protocol_version=SSLv3', {}, 'unsupported TLS version'),
    (None, 'ssl_min_protocol_version=TLSv9', {}, '`ssl_min_protocol_version` must be one of'),
    (None, 'ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2', {},
     'invalid SSL protocol version range'),
    (None, 'sslcertmode=maybe', {}, '`sslcertmode` parameter'),
    (None, 'sslsni=x', {}, 'invalid integer value'),
]


@pytest.mark.parametrize(('ssl_arg', 'dsn', 'kwargs', 'fragment'), SSL_ERRORS)
def test_ssl_errors(ssl_arg: Any, dsn: str | None, kwargs: dict[str, Any],
                    fragment: str) -> None:
    with pytest.raises(ClientConfigurationError) as info:
        resolve(dsn, ssl=ssl_arg, **kwargs)
    assert fragment in str(info.value)


def test_sslmode_enum_parse() -> None:
    assert SSLMode.parse('verify-ca') is SSLMode.verify_ca
    assert SSLMode.parse(SSLMode.prefer) is SSLMode.prefer
    with pytest.raises(AttributeError):
        SSLMode.parse('parse')
    assert SSLMode.verify_full > SSLMode.require > SSLMode.disable


# ---------------------------------------------------------------------------
# make_ssl_context
# ---------------------------------------------------------------------------

class PKI:
    def __init__(self, root: pathlib.Path) -> None:
        cryptography = pytest.importorskip('cryptography')
        del cryptography
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        day = datetime.timedelta(days=1)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'pg_client test CA')])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(1)
              .not_valid_before(now - day).not_valid_after(now + day)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = (x509.CertificateBuilder()
                  .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'user')]))
                  .issuer_name(ca_name).public_key(client_key.public_key()).serial_number(2)
                  .not_valid_before(now - day).not_valid_after(now + day)
                  .sign(ca_key, hashes.SHA256()))
        crl = (x509.CertificateRevocationListBuilder().issuer_name(ca_name)
               .last_update(now - day).next_update(now + day).sign(ca_key, hashes.SHA256()))

        pem = serialization.Encoding.PEM
        self.ca = root / 'ca.crt'
        self.ca.write_bytes(ca.public_bytes(pem))
        self.cert = root / 'client.crt'
        self.cert.write_bytes(client.public_bytes(pem))
        self.key = root / 'client.key'
        self.key.write_bytes(client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.key.chmod(0o600)
        self.encrypted_key = root / 'client-enc.key'
        self.encrypted_key.write_bytes(client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(SENTINEL.encode())))
        self.encrypted_key.chmod(0o600)
        self.crl = root / 'root.crl'
        self.crl.write_bytes(crl.public_bytes(pem))


@pytest.fixture
def pki(tmp_path: pathlib.Path) -> PKI:
    directory = tmp_path / 'pki'
    directory.mkdir()
    return PKI(directory)


def ctx_for(dsn: str | None = None, host: str | None = 'db.example',
            **kwargs: Any) -> ssl.SSLContext | None:
    return make_ssl_context(resolve(dsn, **kwargs).ssl, host)


def test_context_none_for_disable_and_unix() -> None:
    assert ctx_for(ssl='disable') is None
    assert ctx_for(ssl='require', host='/tmp') is None
    assert make_ssl_context(resolve(ssl=_CTX).ssl, 'h') is _CTX


@pytest.mark.parametrize('mode', ['allow', 'prefer', 'require'])
def test_context_unverified_without_root(mode: str) -> None:
    ctx = ctx_for(ssl=mode)
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_NONE
    assert not ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_require_with_default_root_verifies_chain(pki: PKI, clean_env: pathlib.Path) -> None:
    dot = clean_env / '.postgresql'
    dot.mkdir()
    (dot / 'root.crt').write_bytes(pki.ca.read_bytes())
    ctx = ctx_for(ssl='require')
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert not ctx.check_hostname
    assert len(ctx.get_ca_certs()) == 1
    # prefer never verifies (asyncpg).
    prefer = ctx_for(ssl='prefer')
    assert prefer is not None and prefer.verify_mode == ssl.CERT_NONE
    # The default CRL next to it is used when present.
    assert not ctx.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN
    (dot / 'root.crl').write_bytes(pki.crl.read_bytes())
    ctx = ctx_for(ssl='require')
    assert ctx is not None and ctx.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN


def test_verify_modes(pki: PKI) -> None:
    ca = ctx_for(f"sslrootcert='{pki.ca}'", ssl='verify-ca')
    assert ca is not None
    assert ca.verify_mode == ssl.CERT_REQUIRED and not ca.check_hostname
    full = ctx_for(f"sslrootcert='{pki.ca}'", ssl='verify-full')
    assert full is not None
    assert full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname
    system = ctx_for('sslrootcert=system')
    assert system is not None
    assert system.verify_mode == ssl.CERT_REQUIRED and system.check_hostname
    true = ctx_for(ssl=True)
    assert true is not None and true.check_hostname


@pytest.mark.parametrize('mode', ['verify-ca', 'verify-full'])
def test_verify_without_root_is_an_error(mode: str, tmp_path: pathlib.Path) -> None:
    with pytest.raises(ClientConfigurationError, match='root certificate file') as info:
        ctx_for(ssl=mode)
    assert info.value.hint
    with pytest.raises(ClientConfigurationError, match='root certificate file'):
        ctx_for(f"sslrootcert='{tmp_path / 'missing.crt'}'", ssl=mode)


def test_crl_files(pki: PKI, tmp_path: pathlib.Path) -> None:
    ctx = ctx_for(f"sslrootcert='{pki.ca}' sslcrl='{pki.crl}'", ssl='verify-ca')
    assert ctx is not None and ctx.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN
    crldir = tmp_path / 'crls'
    crldir.mkdir()
    ctx = ctx_for(f"sslrootcert='{pki.ca}' sslcrldir='{crldir}'", ssl='verify-ca')
    assert ctx is not None and ctx.verify_flags & ssl.VERIFY_CRL_CHECK_CHAIN
    with pytest.raises(ClientConfigurationError, match='revocation list'):
        ctx_for(f"sslrootcert='{pki.ca}' sslcrl='{tmp_path / 'nope'}'", ssl='verify-ca')


def test_client_certificate(pki: PKI) -> None:
    ctx = ctx_for(f"sslcert='{pki.cert}' sslkey='{pki.key}'", ssl='require')
    assert ctx is not None
    # sslcertmode=disable never touches the files.
    assert ctx_for("sslcert=/nonexistent sslcertmode=disable", ssl='require') is not None
    with pytest.raises(ClientConfigurationError, match='does not exist'):
        ctx_for('sslcert=/nonexistent', ssl='require')
    with pytest.raises(ClientConfigurationError, match='not private key file'):
        ctx_for(f"sslcert='{pki.cert}' sslkey=/nonexistent", ssl='require')
    with pytest.raises(ClientConfigurationError, match='no client certificate'):
        ctx_for('sslcertmode=require', ssl='require')


def test_default_client_certificate(pki: PKI, clean_env: pathlib.Path) -> None:
    dot = clean_env / '.postgresql'
    dot.mkdir()
    (dot / 'postgresql.crt').write_bytes(pki.cert.read_bytes())
    with pytest.raises(ClientConfigurationError, match='not private key file'):
        ctx_for(ssl='prefer')
    write_private(dot / 'postgresql.key', pki.key.read_text())
    assert ctx_for('sslcertmode=require', ssl='prefer') is not None


@posix_only
@pytest.mark.parametrize('mode', [0o644, 0o604, 0o660, 0o620])
def test_client_key_permissions_refused(pki: PKI, mode: int) -> None:
    pki.key.chmod(mode)
    with pytest.raises(ClientConfigurationError, match='group or world access'):
        ctx_for(f"sslcert='{pki.cert}' sslkey='{pki.key}'", ssl='require')


@posix_only
def test_client_key_0640_only_when_root_owned(pki: PKI) -> None:
    pki.key.chmod(0o640)
    dsn = f"sslcert='{pki.cert}' sslkey='{pki.key}'"
    if pki.key.stat().st_uid == 0:
        assert ctx_for(dsn, ssl='require') is not None
    else:
        with pytest.raises(ClientConfigurationError, match='group or world access'):
            ctx_for(dsn, ssl='require')


def test_encrypted_client_key(pki: PKI) -> None:
    base = f"sslcert='{pki.cert}' sslkey='{pki.encrypted_key}'"
    assert ctx_for(f"{base} sslpassword='{SENTINEL}'", ssl='require') is not None
    for dsn in (base, f'{base} sslpassword=wrong'):
        with pytest.raises(ClientConfigurationError, match='could not load client') as info:
            ctx_for(dsn, ssl='require')
        assert SENTINEL not in ''.join(traceback.format_exception(info.value))


def test_tls_versions_applied() -> None:
    ctx = ctx_for('ssl_min_protocol_version=TLSv1.3', ssl='require')
    assert ctx is not None and ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    ctx = ctx_for('ssl_max_protocol_version=tlsv1.2', ssl='require')
    assert ctx is not None and ctx.maximum_version == ssl.TLSVersion.TLSv1_2


def test_keylog_applied(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv('SSLKEYLOGFILE', str(tmp_path / 'keys.log'))
    ctx = ctx_for(ssl='require')
    assert ctx is not None and ctx.keylog_filename == str(tmp_path / 'keys.log')


# ---------------------------------------------------------------------------
# target_session_attrs, gsslib, server settings, knobs, extras
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('value', ['any', 'primary', 'standby', 'prefer-standby',
                                   'read-write', 'read-only'])
def test_target_session_attrs(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert resolve(target_session_attrs=value).target_session_attrs == SessionAttribute(value)
    assert resolve(f'target_session_attrs={value}').target_session_attrs.value == value
    monkeypatch.setenv('PGTARGETSESSIONATTRS', value)
    assert resolve().target_session_attrs.value == value


def test_target_session_attrs_invalid() -> None:
    with pytest.raises(ClientConfigurationError) as info:
        resolve(target_session_attrs='bogus')
    message = str(info.value)
    assert "target_session_attrs is expected to be one of 'any', 'primary'" in message
    assert "got 'bogus'" in message
    with pytest.raises(ClientConfigurationError) as info:
        resolve('target_session_attrs=zzzbogus')
    assert 'zzzbogus' not in str(info.value)


def test_gsslib(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(gsslib='sspi').gsslib == 'sspi'
    monkeypatch.setenv('PGGSSLIB', 'sspi')
    assert resolve().gsslib == 'sspi'
    with pytest.raises(ClientConfigurationError, match="gsslib parameter must be either"):
        resolve(gsslib='krb')


def test_gssencmode() -> None:
    resolve('gssencmode=disable')
    resolve('gssencmode=prefer')
    with pytest.raises(ClientConfigurationError, match='not supported'):
        resolve('gssencmode=require')


@pytest.mark.parametrize(('dsn', 'ok'), [
    ('gssdelegation=0', True), ('gssdelegation=1', False), ('sslcompression=0', True),
    ('sslcompression=1', False), ('requirepeer=postgres', False),
    ('postgres://h?oauth_issuer=x', False),
])
def test_unsupported_libpq_options(dsn: str, ok: bool) -> None:
    if ok:
        resolve(dsn)
    else:
        with pytest.raises(ClientConfigurationError, match='not supported by pg_client'):
            resolve(dsn)


SETTINGS_CASES: list[tuple[str | None, dict[str, Any], dict[str, str]]] = [
    ('postgres://h/d?search_path=a&application_name=app', {},
     {'search_path': 'a', 'application_name': 'app'}),
    ('postgres://h/d?search_path=a', {'server_settings': {'search_path': 'b', 'x': 'y'}},
     {'search_path': 'b', 'x': 'y'}),
    ('postgres://h/d?empty=', {}, {}),
    ("options='-c geqo=off --work-mem=64kB -cstatement_timeout=5 -c search_path=a\\\\ b'", {},
     {'geqo': 'off', 'work_mem': '64kB', 'statement_timeout': '5', 'search_path': 'a b'}),
    ("options='-B 100'", {}, {'options': '-B 100'}),
    ('postgres://h/d?options=-c%20x%3D1%20-c%20y%3D1&x=2', {}, {'x': '2', 'y': '1'}),
    ('fallback_application_name=fb', {}, {'application_name': 'fb'}),
    ('fallback_application_name=fb application_name=app', {}, {'application_name': 'app'}),
    ('fallback_application_name=fb', {'server_settings': {'application_name': 'kw'}},
     {'application_name': 'kw'}),
    (None, {'server_settings': {'client_encoding': "'utf-8'"}}, {'client_encoding': "'utf-8'"}),
    ('postgres://h/d?client_encoding=UTF8', {}, {'client_encoding': 'UTF8'}),
    ('postgres://h/d?replication=database', {}, {'replication': 'database'}),
]


@pytest.mark.parametrize(('dsn', 'kwargs', 'expected'), SETTINGS_CASES)
def test_server_settings(dsn: str | None, kwargs: dict[str, Any],
                         expected: dict[str, str]) -> None:
    settings = resolve(dsn, **kwargs).server_settings
    assert dict(settings) == expected
    with pytest.raises(TypeError):
        settings['x'] = 'y'  # type: ignore[index]


@pytest.mark.parametrize(('dsn', 'settings', 'fragment'), [
    (None, [('a', 'b')], 'server_settings is expected to be None or a Dict[str, str]'),
    (None, {'a': 1}, 'server_settings is expected to be None or a Dict[str, str]'),
    (None, {1: 'a'}, 'server_settings is expected to be None or a Dict[str, str]'),
    (None, {'a': 'b\x00'}, 'NUL'),
    (None, {'a\x00': 'b'}, 'NUL'),
    (None, {'': 'b'}, 'empty setting name'),
    (None, {'client_encoding': 'LATIN1'}, 'client_encoding must be UTF8'),
    ('postgres://h/d?client_encoding=SQL_ASCII', None, 'client_encoding must be UTF8'),
])
def test_server_settings_errors(dsn: str | None, settings: Any, fragment: str) -> None:
    with pytest.raises(ClientConfigurationError) as info:
        resolve(dsn, server_settings=settings)
    assert fragment in str(info.value)


@pytest.mark.parametrize('name', ['statement_cache_size', 'max_cached_statement_lifetime',
                                  'max_cacheable_statement_size'])
@pytest.mark.parametrize('value', [-1, True, None, 1.5, '10'])
def test_cache_knobs_rejected(name: str, value: Any) -> None:
    with pytest.raises(ValueError) as info:
        resolve(**{name: value})
    assert str(info.value) == f'{name} is expected to be greater or equal to 0, got {value!r}'


def test_cache_knobs_accepted() -> None:
    config = resolve(statement_cache_size=0, max_cached_statement_lifetime=0,
                     max_cacheable_statement_size=0, command_timeout=2).config
    assert config == (2.0, 0, 0, 0)
    assert resolve(command_timeout='1.5').config.command_timeout == 1.5  # type: ignore[arg-type]


@pytest.mark.parametrize('value', [0, -1, True, 'x', float('nan'), '0'])
def test_command_timeout_rejected(value: Any) -> None:
    with pytest.raises(ValueError) as info:
        resolve(command_timeout=value)
    assert str(info.value) == ('invalid command_timeout value: expected greater than 0 '
                               f'float (got {value!r})')


def test_timeout() -> None:
    assert resolve(timeout=None).timeout is None
    assert resolve(timeout=5).timeout == 5.0
    with pytest.raises(ClientConfigurationError, match='timeout is expected'):
        resolve(timeout='soon')  # type: ignore[arg-type]


EXTRAS: list[tuple[str | None, dict[str, Any], dict[str, str], str, Any]] = [
    ('channel_binding=require', {}, {}, 'channel_binding', 'require'),
    (None, {'channel_binding': 'disable'}, {}, 'channel_binding', 'disable'),
    (None, {}, {'PGCHANNELBINDING': 'require'}, 'channel_binding', 'require'),
    ("require_auth='scram-sha-256,!password'", {}, {}, 'require_auth',
     'scram-sha-256,!password'),
    ('min_protocol_version=3.2', {}, {}, 'max_protocol_version', '3.2'),
    ('max_protocol_version=latest', {}, {}, 'max_protocol_version', '3.2'),
    (None, {}, {'PGMAXPROTOCOLVERSION': '3.2'}, 'max_protocol_version', '3.2'),
    ('load_balance_hosts=random', {}, {}, 'load_balance_hosts', 'random'),
    (None, {}, {'PGLOADBALANCEHOSTS': 'random'}, 'load_balance_hosts', 'random'),
    ('connect_timeout=10', {}, {}, 'connect_timeout', 10.0),
    ('connect_timeout=0', {}, {}, 'connect_timeout', None),
    ('connect_timeout=-3', {}, {}, 'connect_timeout', None),
    (None, {'connect_timeout': 2.5}, {}, 'connect_timeout', 2.5),
    (None, {}, {'PGCONNECT_TIMEOUT': ' 7 '}, 'connect_timeout', 7.0),
    ('keepalives=0', {}, {}, 'keepalives', False),
    (None, {'keepalives': False}, {}, 'keepalives', False),
    ('keepalives_idle=30 keepalives_interval=5 keepalives_count=3', {}, {},
     'keepalives_count', 3),
    ('tcp_user_timeout=1000', {}, {}, 'tcp_user_timeout', 1000),
    (None, {'keepalives_idle': 10}, {}, 'keepalives_idle', 10),
]


@pytest.mark.parametrize(('dsn', 'kwargs', 'env', 'attr', 'expected'), EXTRAS)
def test_extras(monkeypatch: pytest.MonkeyPatch, dsn: str | None, kwargs: dict[str, Any],
                env: dict[str, str], attr: str, expected: Any) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert getattr(resolve(dsn, **kwargs), attr) == expected


@pytest.mark.parametrize(('dsn', 'kwargs', 'fragment'), [
    ('channel_binding=always', {}, '`channel_binding` parameter must be one of'),
    ('min_protocol_version=2.0', {}, '`min_protocol_version` must be one of'),
    ('min_protocol_version=3.2 max_protocol_version=3.0', {}, 'greater than'),
    ('load_balance_hosts=yes', {}, '`load_balance_hosts` parameter'),
    ('connect_timeout=soon', {}, 'invalid connect_timeout'),
    ('keepalives_idle=-1', {}, 'invalid integer value'),
    ('keepalives_count=x', {}, 'invalid integer value'),
    (None, {'require_auth': 5}, 'require_auth is expected'),
])
def test_extras_errors(dsn: str | None, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ClientConfigurationError, match=fragment):
        resolve(dsn, **kwargs)


def test_parameters_are_frozen() -> None:
    params = resolve(host='h')
    with pytest.raises(AttributeError):
        params.user = 'x'  # type: ignore[misc]
    with pytest.raises(AttributeError):
        params.ssl.mode = SSLMode.disable  # type: ignore[misc]
    assert params.sslmode is params.ssl.mode


# ---------------------------------------------------------------------------
# Secret hygiene (S8, S12) and DSNs that try to select code (S14)
# ---------------------------------------------------------------------------

def _exception_texts(exc: BaseException) -> str:
    """Everything a log, traceback or debugger view of *exc* would show."""
    parts = [''.join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args),
                  repr(getattr(current, 'detail', None)), repr(getattr(current, 'hint', None))]
        current = current.__cause__ or current.__context__
    return '\n'.join(parts)


SECRET_SOURCES: list[tuple[str, str | None, dict[str, Any], dict[str, str]]] = [
    ('uri-userinfo', f'postgres://u:{SENTINEL}@h/d', {}, {}),
    ('uri-userinfo-encoded', f'postgres://u:{SENTINEL_ENC}@h/d', {}, {}),
    ('uri-query', f'postgres://u@h/d?password={SENTINEL_ENC}', {}, {}),
    ('uri-encoded-key', f'postgres://u@h/d?pass%77ord={SENTINEL_ENC}', {}, {}),
    ('keyword', f"host=h password='{SENTINEL}'", {}, {}),
    ('keyword-unquoted', f'host=h password={SENTINEL}', {}, {}),
    ('sslpassword-uri', f'postgres://u@h/d?sslpassword={SENTINEL_ENC}', {}, {}),
    ('sslpassword-keyword', f'host=h sslpassword={SENTINEL}', {}, {}),
    ('env', 'host=h', {}, {'PGPASSWORD': SENTINEL}),
    ('kwarg', 'host=h', {'password': SENTINEL}, {}),
    ('callable', 'host=h', {'password': lambda: SENTINEL}, {}),
]


@pytest.mark.parametrize(('label', 'dsn', 'kwargs', 'env'), SECRET_SOURCES,
                         ids=[s[0] for s in SECRET_SOURCES])
def test_secret_absent_from_reprs(monkeypatch: pytest.MonkeyPatch, label: str, dsn: str | None,
                                  kwargs: dict[str, Any], env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    params = resolve(dsn, **kwargs)
    texts = [repr(params), str(params), f'{params}', repr(params.ssl), str(params.ssl),
             repr(params.hosts), repr(params.password), str(params.password),
             f'{params.password}', repr(params.server_settings)]
    if dsn:
        options = parse_dsn(dsn)
        texts += [repr(options), str(options)]
    for text in texts:
        assert SENTINEL not in text
        assert SENTINEL_ENC not in text
    # ...but the value is there for whoever needs it.
    if 'sslpassword' in label:
        assert params.ssl.password is not None
        assert params.ssl.password.reveal() == SENTINEL
    elif label != 'callable':
        assert password_for(params, 'h', 5432) == SENTINEL


ERROR_TRIGGERS = [
    '?sslmode=bogus', '?target_session_attrs=bogus', '?port=x', '?gsslib=x',
    '?ssl_min_protocol_version=SSLv2', '?connect_timeout=x', '?x',
    '?client_encoding=latin1', '?hostaddr=nope', '?statement_cache_size=1',
]


@pytest.mark.parametrize('trigger', ERROR_TRIGGERS)
@pytest.mark.parametrize('where', ['userinfo', 'userinfo-raw', 'query', 'encoded-key',
                                   'sslpassword'])
def test_secret_absent_from_uri_errors(where: str, trigger: str) -> None:
    base = {
        'userinfo': f'postgres://u:{SENTINEL_ENC}@h/d',
        'userinfo-raw': f'postgres://u:{SENTINEL}@h/d',
        'query': f'postgres://u@h/d?password={SENTINEL_ENC}',
        'encoded-key': f'postgres://u@h/d?pass%77ord={SENTINEL_ENC}',
        'sslpassword': f'postgres://u@h/d?sslpassword={SENTINEL_ENC}',
    }[where]
    dsn = base + (trigger if '?' not in base else '&' + trigger[1:])
    with pytest.raises(ClientConfigurationError) as info:
        resolve(dsn)
    text = _exception_texts(info.value)
    assert SENTINEL not in text and SENTINEL_ENC not in text


@pytest.mark.parametrize('dsn', [
    f"password='{SENTINEL}",                       # unterminated quote
    f'password={SENTINEL} oops',                   # missing '='
    f'password={SENTINEL} sslmode=bogus',
    f'password={SENTINEL} port=nope',
    'password=S3cr3t Sentinel-Ω',                 # a space leaks the rest into a key
    'password=S3cr3t Sentinel-Ω=x sslmode=bogus',
    'password=S3cr3t Sentinel-Ω=x',               # would be a server setting name
    "password=S3cr3t sslmode=Sentinel-Ω",         # the rest lands in another option
    "password=S3cr3t target_session_attrs=Sentinel-Ω",
    "password=S3cr3t gsslib=Sentinel-Ω",
    "password=S3cr3t hostaddr=Sentinel-Ω",
    "password=S3cr3t port=Sentinel-Ω",
    "password=S3cr3t connect_timeout=Sentinel-Ω",
    'postgres://u:S3cr3t/Sentinel-Ω@h/d',        # unencoded '/' ends the authority
    'postgres://u:S3cr3t?Sentinel-Ω@h/d',        # unencoded '?'
    f'postgres://u:{SENTINEL}@[::1/d',
    f'postgres://u:{SENTINEL}@h:99999/d',
    f'postgres://u:{SENTINEL}@h/d%FF',
    f'postgres://u:{SENTINEL}@h/d?x=%00',
    f'postgres://u:{SENTINEL}%FF@h/d',
    f'sslpassword={SENTINEL} sslcertmode=bogus',
])
def test_secret_absent_from_malformed_dsn_errors(dsn: str) -> None:
    for call in (parse_dsn, resolve):
        try:
            call(dsn)
        except ClientConfigurationError as e:
            text = _exception_texts(e)
            assert 'Sentinel' not in text and 'S3cr3t' not in text
        else:
            assert call is parse_dsn, f'{dsn!r} should not resolve'


def test_secret_absent_from_argument_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values typed as arguments are quoted, but never a known password."""
    with pytest.raises(ClientConfigurationError) as info:
        resolve(host='h', password=SENTINEL, gsslib=SENTINEL)
    assert SENTINEL not in _exception_texts(info.value)
    assert '********' in str(info.value)
    monkeypatch.setenv('PGPASSWORD', SENTINEL)
    with pytest.raises(ClientConfigurationError) as info:
        resolve(host='h', target_session_attrs=SENTINEL)
    assert SENTINEL not in _exception_texts(info.value)


def test_secret_absent_from_service_file_errors(clean_env: pathlib.Path) -> None:
    (clean_env / '.pg_service.conf').write_text(
        f'[s]\npassword={SENTINEL}\nsslmode={SENTINEL}\n')
    with pytest.raises(ClientConfigurationError) as info:
        resolve(service='s')
    assert SENTINEL not in _exception_texts(info.value)


_FUZZ_ALPHABET = [*"postgres:/@[]:,?&=%+#'\\ \t\nhp0159aAfF", '%00', '%ff', '%2F', 'postgres://',
                  'host=', 'port=', 'password=', 'sslmode=', 'require', '::1', 'ssl=true',
                  'options=', '-c ', 'Ω', SENTINEL, SENTINEL_ENC, '?password=', 'u:']


def test_fuzz_only_configuration_errors_without_secrets(tmp_path: pathlib.Path) -> None:
    """Random DSN-like text: a result or ClientConfigurationError, never the sentinel."""
    rng = random.Random(7)
    for _ in range(3000):
        dsn = ''.join(rng.choice(_FUZZ_ALPHABET) for _ in range(rng.randint(0, 25)))
        for call in (parse_dsn, resolve):
            try:
                result = call(dsn)
            except ClientConfigurationError as e:
                assert 'Sentinel' not in _exception_texts(e), dsn
            else:
                if isinstance(result, ConnectionParameters):
                    secrets = [result.password, result.ssl.password]
                    values = [x.reveal() for x in secrets if isinstance(x, Secret)]
                else:
                    values = [result.get('password', ''), result.get('sslpassword', '')]
                for value in values:
                    if 'Sentinel' in value:
                        assert value not in repr(result), dsn


def test_secret_class() -> None:
    secret = Secret(SENTINEL)
    assert secret.reveal() == SENTINEL
    for text in (repr(secret), str(secret), f'{secret}', f'{secret!r}',
                 '%s' % (secret,)):  # noqa: UP031
        assert SENTINEL not in text
    assert secret == Secret(SENTINEL)
    assert secret != Secret('other')
    assert hash(secret) == hash(Secret(SENTINEL))
    assert not Secret('')
    with pytest.raises(TypeError):
        Secret(b'x')  # type: ignore[arg-type]


def test_dsn_never_imports_code() -> None:
    """S14: DSN keys are data; names of code are refused or sent as strings."""
    module = 'pg_client_evil_module_xyz'
    for dsn in (f'postgres://h/d?connection_class={module}.Evil',
                f'postgres://h/d?record_class={module}.Rec',
                f'postgres://h/d?loop={module}', f'postgres://h/d?ssl={module}'):
        with pytest.raises(ClientConfigurationError, match='connect\\(\\) argument'):
            resolve(dsn)
    params = resolve(f'postgres://h/d?my_factory={module}.make&sslkey_loader={module}')
    assert params.server_settings == {'my_factory': f'{module}.make',
                                      'sslkey_loader': module}
    assert module not in sys.modules


# ---------------------------------------------------------------------------
# Differential: asyncpg's connect_utils
# ---------------------------------------------------------------------------

ASYNCPG_CASES: list[tuple[str | None, dict[str, Any], dict[str, str]]] = [
    ('postgres://u:p@h:1/db', {}, {}),
    ('postgres://u@h1:1,h2:2/db?sslmode=require', {}, {}),
    ('postgres://h/db', {'user': 'k', 'password': 'kp', 'database': 'kd', 'port': 7}, {}),
    (None, {}, {'PGHOST': 'e', 'PGPORT': '9', 'PGUSER': 'eu', 'PGDATABASE': 'ed',
                'PGPASSWORD': 'ep'}),
    ('postgres://h/db', {}, {'PGHOST': 'e', 'PGUSER': 'eu', 'PGPORT': '3'}),
    (None, {'host': ['a', 'b'], 'port': [1, 2]}, {}),
    (None, {'host': ['a', 'b'], 'port': 1}, {}),
    (None, {}, {}),
    (None, {}, {'PGPORT': '6000'}),
    (None, {'host': '/tmp'}, {}),
    (None, {'host': '/tmp/.s.PGSQL.77'}, {}),
    ('postgresql:///db?host=/var/run/postgresql&port=6000', {}, {}),
    ('postgres://h/db?application_name=app&search_path=a',
     {'server_settings': {'search_path': 'b'}}, {}),
    ('postgres://[::1]:5433/db', {}, {}),
    ('postgres://[::1],h/db', {}, {'PGPORT': '1,2'}),
    (None, {'host': 'h'}, {'PGSSLMODE': 'disable'}),
    (None, {'host': 'h', 'ssl': False}, {'PGSSLMODE': 'require'}),
    (None, {'host': 'h', 'ssl': 'allow'}, {}),
    ('postgres://h/db?target_session_attrs=read-write', {}, {}),
    (None, {'host': 'h'}, {'PGTARGETSESSIONATTRS': 'standby'}),
    ('postgres://h1:1,h2/db', {}, {'PGPORT': '9'}),
    (None, {}, {'PGHOST': 'h1:1,h2', 'PGPORT': '9'}),
    ('postgres://h:1/db', {'host': 'k'}, {}),
    ('postgres://h/db?port=1', {'host': 'k'}, {}),
    ('postgres://u:pa%40ss@h/db', {}, {}),
    ('postgres://h/db?krbsrvname=k&gsslib=sspi', {}, {}),
    ('postgres://h/db?database=x', {}, {}),
    ('postgres://h?database=x&user=y&password=z', {}, {}),
    ('postgres://h?x=a=b&y=1+2', {}, {}),
]


@pytest.mark.parametrize(('dsn', 'kwargs', 'env'), ASYNCPG_CASES)
def test_same_as_asyncpg(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                         dsn: str | None, kwargs: dict[str, Any], env: dict[str, str]) -> None:
    connect_utils = pytest.importorskip('asyncpg.connect_utils')
    monkeypatch.setenv('PGPASSFILE', str(tmp_path / 'no-pgpass'))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    theirs_addrs, theirs = connect_utils._parse_connect_dsn_and_args(
        dsn=dsn, host=kwargs.get('host'), port=kwargs.get('port'),
        user=kwargs.get('user'), password=kwargs.get('password'), passfile=None,
        database=kwargs.get('database'), ssl=kwargs.get('ssl'), service=None,
        servicefile=None, direct_tls=None, server_settings=kwargs.get('server_settings'),
        target_session_attrs=None, krbsrvname=None, gsslib=None)
    ours = resolve(dsn, **kwargs)
    assert ours.addrs == theirs_addrs
    assert ours.user == theirs.user
    assert ours.database == theirs.database
    our_password = ours.password.reveal() if isinstance(ours.password, Secret) else None
    assert our_password == theirs.password
    assert int(ours.sslmode) == int(theirs.sslmode)
    assert ours.ssl_negotiation.value == theirs.ssl_negotiation.value
    assert ours.target_session_attrs.value == theirs.target_session_attrs.value
    assert dict(ours.server_settings) == (theirs.server_settings or {})
    assert ours.gsslib == theirs.gsslib
    assert ours.krbsrvname == (theirs.krbsrvname or 'postgres')


_ASYNCPG_ERROR = object()

# Deliberate differences, each asserted on both sides so this list stays true.
# (dsn, kwargs, env, what we compare, our value, asyncpg's value)
DEVIATIONS: list[tuple[str | None, dict[str, Any], dict[str, str], str, Any, Any]] = [
    # Query parameters override the netloc and path, as in libpq; asyncpg
    # lets the netloc/path win and silently ignores ?port= after a host.
    ('postgres://u@h/d?user=v', {}, {}, 'user', 'v', 'u'),
    ('postgres://h/d?port=7', {}, {}, 'addrs', [('h', 7)], [('h', 5432)]),
    ('postgres://h/d?host=k', {}, {}, 'addrs', [('k', 5432)], [('h', 5432)]),
    # An empty URI path is "no database given" (libpq), not an empty name.
    ('postgres://h/', {}, {'PGDATABASE': 'envdb'}, 'database', 'envdb', ''),
    # '#' is data (libpq); urllib takes it for a fragment and then fails
    # with the password's first characters in the message.
    ('postgres://u:p#x@h/d', {}, {}, 'password', 'p#x', _ASYNCPG_ERROR),
    # A bare IPv6 address in PGHOST (libpq); asyncpg cannot parse it.
    (None, {}, {'PGHOST': '::1'}, 'addrs', [('::1', 5432)], _ASYNCPG_ERROR),
    # An unsupported ssl= type is an error instead of silently "disable".
    (None, {'host': 'h', 'ssl': 3}, {}, 'sslmode', _ASYNCPG_ERROR, 0),
    # A malformed query is reported without quoting it.
    ('postgres://h/d?password', {}, {}, 'user', _ASYNCPG_ERROR, _ASYNCPG_ERROR),
    # Empty environment variables count as unset (asyncpg: invalid sslmode '').
    (None, {'host': 'h'}, {'PGSSLMODE': ''}, 'sslmode', 2, _ASYNCPG_ERROR),
]


def _asyncpg_value(connect_utils: Any, dsn: str | None, kwargs: dict[str, Any],
                   what: str) -> Any:
    try:
        found_addrs, params = connect_utils._parse_connect_dsn_and_args(
            dsn=dsn, host=kwargs.get('host'), port=None, user=None, password=None,
            passfile=None, database=None, ssl=kwargs.get('ssl'), service=None,
            servicefile=None, direct_tls=None, server_settings=None,
            target_session_attrs=None, krbsrvname=None, gsslib=None)
    except Exception:
        return _ASYNCPG_ERROR
    if what == 'addrs':
        return found_addrs
    value = getattr(params, what)
    return int(value) if what == 'sslmode' else value


def _our_value(dsn: str | None, kwargs: dict[str, Any], what: str) -> Any:
    try:
        params = resolve(dsn, **kwargs)
    except ClientConfigurationError:
        return _ASYNCPG_ERROR
    if what == 'password':
        return params.password.reveal() if isinstance(params.password, Secret) else None
    value = getattr(params, what)
    return int(value) if what == 'sslmode' else value


@pytest.mark.parametrize(('dsn', 'kwargs', 'env', 'what', 'ours', 'theirs'), DEVIATIONS)
def test_documented_deviations_from_asyncpg(
        monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, dsn: str | None,
        kwargs: dict[str, Any], env: dict[str, str], what: str, ours: Any,
        theirs: Any) -> None:
    monkeypatch.setenv('PGPASSFILE', str(tmp_path / 'no-pgpass'))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _our_value(dsn, kwargs, what) == ours
    try:
        import asyncpg.connect_utils as connect_utils
    except ImportError:
        return
    assert _asyncpg_value(connect_utils, dsn, kwargs, what) == theirs


def test_enums_match_asyncpg() -> None:
    connect_utils = pytest.importorskip('asyncpg.connect_utils')
    assert {m.name: m.value for m in SSLMode} == \
        {m.name: m.value for m in connect_utils.SSLMode}
    assert {m.name: m.value for m in SessionAttribute} == \
        {m.name: m.value for m in connect_utils.SessionAttribute}
    assert {m.name: m.value for m in SSLNegotiation} == \
        {m.name: m.value for m in connect_utils.SSLNegotiation}


# ---------------------------------------------------------------------------
# Differential: libpq's PQconninfoParse (W9)
# ---------------------------------------------------------------------------

class _PQconninfoOption(ctypes.Structure):
    _fields_ = [('keyword', ctypes.c_char_p), ('envvar', ctypes.c_char_p),
                ('compiled', ctypes.c_char_p), ('val', ctypes.c_char_p),
                ('label', ctypes.c_char_p), ('dispchar', ctypes.c_char_p),
                ('dispsize', ctypes.c_int)]


def _load_libpq() -> Any:
    name = ctypes.util.find_library('pq')
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.PQconninfoParse.restype = ctypes.POINTER(_PQconninfoOption)
    lib.PQconninfoParse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    lib.PQconninfoFree.argtypes = [ctypes.POINTER(_PQconninfoOption)]
    lib.PQfreemem.argtypes = [ctypes.c_void_p]
    return lib


COMPARED = ('host', 'port', 'dbname', 'user', 'password', 'options')


def _libpq_parse(lib: Any, dsn: str) -> dict[str, str] | None:
    err = ctypes.c_char_p()
    result = lib.PQconninfoParse(dsn.encode('utf-8'), ctypes.byref(err))
    if not result:
        if err:
            lib.PQfreemem(ctypes.cast(err, ctypes.c_void_p))
        return None
    out: dict[str, str] = {}
    try:
        i = 0
        while result[i].keyword is not None:
            key = result[i].keyword.decode()
            if result[i].val is not None and key in COMPARED:
                out[key] = result[i].val.decode('utf-8')
            i += 1
    finally:
        lib.PQconninfoFree(result)
    return out


def _ours(dsn: str) -> dict[str, str] | None:
    try:
        options = parse_dsn(dsn)
    except ClientConfigurationError:
        return None
    return {k: v for k, v in options.items() if k in COMPARED}


def _normalize(parsed: dict[str, str] | None) -> dict[str, str] | None:
    """libpq writes 'port=,' for a host list without ports; so do we, as absent."""
    if parsed is None:
        return None
    return {k: v for k, v in parsed.items() if not (k == 'port' and not v.strip(','))}


_PIECES = ['a', 'xyz', 'x y', "o'k", 'back\\slash', 'eq=al', 'Ωmega', '#hash', 'a:b',
           'semi;colon', 'per%cent', 'at@sign', 'sl/ash', 'q?m', 'amp&', 'tab\t', 'quote"d',
           '日本', 'sp ace ', '', '\\\\', "''", '-c geqo=off', '--work_mem=1MB']
_KW_HOSTS = ['h', 'db.example.com', '/tmp', '::1', 'h1,h2', '127.0.0.1', 'fe80::1%eth0',
             '/var/run/postgresql,h', '']
_KW_PORTS = ['5432', '1', '5432,5433', '', ' 6000 ']


def _random_text(rng: random.Random) -> str:
    return ''.join(rng.choice(_PIECES) for _ in range(rng.randint(1, 3)))


def _kw_value(rng: random.Random, value: str) -> str:
    if not value or rng.random() < 0.5:
        escaped = value.replace('\\', '\\\\').replace("'", "\\'")
        return f"'{escaped}'"
    out = []
    for ch in value:
        if ch in " \t\n\r\f\v'\\":
            out.append('\\')
        out.append(ch)
    return ''.join(out)


def _gen_keyword(rng: random.Random) -> str:
    parts = []
    for key in rng.sample(COMPARED, rng.randint(1, len(COMPARED))):
        if key == 'host':
            value = rng.choice(_KW_HOSTS)
        elif key == 'port':
            value = rng.choice(_KW_PORTS)
        else:
            value = _random_text(rng)
        sep = rng.choice(['=', ' =', '= ', ' = \t'])
        parts.append(f'{key}{sep}{_kw_value(rng, value)}')
    return rng.choice([' ', '  ', '\t', '\n ']).join(parts) + rng.choice(['', ' ', '\n'])


def _enc(text: str) -> str:
    return urllib.parse.quote(text, safe='')


def _gen_uri(rng: random.Random) -> str:
    scheme = rng.choice(['postgres://', 'postgresql://'])
    userinfo = ''
    if rng.random() < 0.7:
        userinfo = _enc(_random_text(rng) or 'u')
        if rng.random() < 0.6:
            userinfo += ':' + _enc(_random_text(rng))
        userinfo += '@'
    query_host = rng.random() < 0.2
    entries = []
    for _ in range(rng.randint(1, 3)):
        host = rng.choice(['h', 'db.example.com', '127.0.0.1', '[::1]', '[fe80::1]',
                           '%2Ftmp', 'h%2Dx'])
        if not query_host and rng.random() < 0.5:
            host += f':{rng.choice(["1", "5432", "65535"])}'
        entries.append(host)
    netloc = ','.join(entries) if rng.random() < 0.9 else ''
    path = ''
    if rng.random() < 0.7:
        path = '/' + _enc(_random_text(rng))
    params = []
    keys = ['dbname', 'user', 'password', 'options', 'port'] + (['host'] if query_host else [])
    for key in rng.sample(keys, rng.randint(0, 3)):
        if key == 'port':
            value = rng.choice(['5433', '1', ''])
        elif key == 'host':
            value = rng.choice(['h9', '/tmp', '::1', 'a,b'])
        else:
            value = _random_text(rng)
        params.append(f'{_enc(key)}={_enc(value)}')
    query = ('?' + '&'.join(params)) if params else ''
    return scheme + userinfo + netloc + path + query


LIBPQ_FIXED = [
    'host= port=5', "dbname = 'x' ", "password='\\\\'", "password=\\'", 'user=a\\ ',
    "options='-c a=b -c c=d'", 'postgres://u:p%3Ax@[::1]:1,h:2/d%2Fb?options=-c%20x%3Dy',
    'postgres://h/', 'postgres://', 'postgresql://:5433', 'postgres://h1:1,h2/d?port=7',
    'postgres://u:p#frag@h', 'user=u\\', "password='a\\'", 'host', "host='x",
    'postgres://[::1/d', 'postgres://[]/d', 'postgres://h/d?x', 'postgres://h/d%00', '=x',
    "a='x'b=y", 'host=h bogus=1',
    "host='' port=''", 'postgres://h/d?dbname=other', 'postgres://u@h?user=v',
    'postgres://%2Fvar%2Frun%2Fpostgresql/db', 'postgres://h:5432,[::1]:5433/d',
]


def test_differential_libpq() -> None:
    """Our parse_dsn() agrees with libpq's PQconninfoParse on ~200 DSNs.

    Generated inputs avoid our documented deviations: unknown URI query
    keys (libpq rejects them, we make server settings), '+' in query values
    (asyncpg's space), literal '=' in query values and invalid %-escapes
    (asyncpg accepts both), host:port inside a keyword-form host list.
    """
    lib = _load_libpq()
    if lib is None:
        pytest.skip('libpq (libpq5) is not installed: ctypes.util.find_library("pq") failed')
    rng = random.Random(20240611)
    cases = list(LIBPQ_FIXED)
    cases += [_gen_keyword(rng) for _ in range(100)]
    cases += [_gen_uri(rng) for _ in range(100)]
    diffs = []
    for dsn in cases:
        theirs = _normalize(_libpq_parse(lib, dsn))
        ours = _normalize(_ours(dsn))
        if theirs != ours:
            diffs.append((dsn, theirs, ours))
    assert not diffs, '\n'.join(f'{d!r}\n  libpq: {t}\n  ours:  {o}' for d, t, o in diffs)
    assert len(cases) >= 200


def test_libpq_parse_errors_leak_but_ours_do_not() -> None:
    """libpq quotes the offending URI part in errors; we never do."""
    lib = _load_libpq()
    if lib is None:
        pytest.skip('libpq (libpq5) is not installed')
    dsn = f'postgres://u:{SENTINEL_ENC}%zz@h/d'
    err = ctypes.c_char_p()
    assert not lib.PQconninfoParse(dsn.encode(), ctypes.byref(err))
    assert err.value is not None and SENTINEL_ENC.encode() in err.value
    lib.PQfreemem(ctypes.cast(err, ctypes.c_void_p))
    # We accept the lenient '%zz' (asyncpg) and certainly do not quote it.
    assert parse_dsn(dsn)['password'] == SENTINEL + '%zz'


def _iter_env() -> Iterator[str]:
    yield from (name for name in os.environ if name.startswith('PG'))


def test_fixture_isolates_environment() -> None:
    assert list(_iter_env()) == ['PGSYSCONFDIR']
    assert stat.S_ISDIR(os.stat(os.environ['HOME']).st_mode)


@pytest.mark.slow
def test_differential_libpq_100k() -> None:
    """W9 at full size: 100,000 generated DSNs, same answers as libpq.

    Also checks the other half of W9 on every refused DSN: our error
    message never contains the DSN's password.
    """
    lib = _load_libpq()
    if lib is None:
        pytest.skip('libpq (libpq5) is not installed')
    rng = random.Random(20260611)
    diffs = []
    for i in range(100_000):
        dsn = _gen_keyword(rng) if i % 2 else _gen_uri(rng)
        theirs = _normalize(_libpq_parse(lib, dsn))
        try:
            ours = _normalize({k: v for k, v in parse_dsn(dsn).items() if k in COMPARED})
        except ClientConfigurationError as e:
            ours = None
            password = (theirs or {}).get('password')
            if password and len(password) >= 3:
                assert password not in str(e), dsn
        if theirs != ours:
            diffs.append((dsn, theirs, ours))
    assert not diffs, f'{len(diffs)} differences, e.g.\n' + '\n'.join(
        f'{d!r}\n  libpq: {t}\n  ours:  {o}' for d, t, o in diffs[:10])
