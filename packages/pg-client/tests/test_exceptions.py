"""Unit tests for pg_client.exceptions (no server needed).

Checks the hierarchy against asyncpg's, dispatch of ErrorResponse and
NoticeResponse fields to classes, str(), as_dict(), pickling, and that the
generated _sqlstate.py matches tools/errcodes.txt.
"""

from __future__ import annotations

import pathlib
import pickle
import re
import subprocess
import sys
import warnings

import pytest

from pg_client import exceptions as exc
from pg_client.exceptions import _base

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
GENERATOR = REPO_ROOT / 'tools' / 'update_sqlstate.py'
ERRCODES = REPO_ROOT / 'tools' / 'errcodes.txt'

ALL_FIELDS = {
    'S': 'ERREUR',
    'V': 'ERROR',
    'C': '23505',
    'M': 'duplicate key value violates unique constraint "t_pkey"',
    'D': 'Key (id)=(1) already exists.',
    'H': 'Use another id.',
    'P': '15',
    'p': '3',
    'q': 'SELECT 1',
    'W': 'SQL function "f" statement 1',
    's': 'public',
    't': 't',
    'c': 'id',
    'd': 'int4',
    'n': 't_pkey',
    'F': 'nbtinsert.c',
    'L': '666',
    'R': '_bt_check_unique',
}
ALL_ATTRIBUTES = {
    'severity': 'ERREUR',
    'severity_en': 'ERROR',
    'sqlstate': '23505',
    'message': 'duplicate key value violates unique constraint "t_pkey"',
    'detail': 'Key (id)=(1) already exists.',
    'hint': 'Use another id.',
    'position': '15',
    'internal_position': '3',
    'internal_query': 'SELECT 1',
    'context': 'SQL function "f" statement 1',
    'schema_name': 'public',
    'table_name': 't',
    'column_name': 'id',
    'data_type_name': 'int4',
    'constraint_name': 't_pkey',
    'server_source_filename': 'nbtinsert.c',
    'server_source_line': '666',
    'server_source_function': '_bt_check_unique',
}


def _mro_names(cls: type) -> list[str]:
    return [c.__name__ for c in cls.__mro__]


def _errcodes() -> list[tuple[str, str]]:
    """(sqlstate, E/W) of every named code in tools/errcodes.txt."""
    codes = []
    for line in ERRCODES.read_text(encoding='utf-8').splitlines():
        fields = line.split()
        if len(fields) >= 4 and re.fullmatch('[0-9A-Z]{5}', fields[0]):
            codes.append((fields[0], fields[1]))
    return codes


# -- the hierarchy, compared with asyncpg ------------------------------------

@pytest.fixture(scope='module')
def apg_exc():
    return pytest.importorskip('asyncpg.exceptions')


def test_every_asyncpg_name_exists(apg_exc):
    missing = [n for n in apg_exc.__all__ if not hasattr(exc, n)]
    assert missing == []
    assert set(apg_exc.__all__) <= set(exc.__all__)


def test_all_lists_only_existing_unique_names():
    assert len(set(exc.__all__)) == len(exc.__all__)
    for name in exc.__all__:
        assert isinstance(getattr(exc, name), type), name


def test_sqlstate_and_bases_match_asyncpg(apg_exc):
    for name in apg_exc.__all__:
        theirs = getattr(apg_exc, name)
        ours = getattr(exc, name)
        assert _mro_names(ours) == _mro_names(theirs), name
        assert (ours.__dict__.get('sqlstate')
                == theirs.__dict__.get('sqlstate')), name


def test_some_well_known_classes():
    assert issubclass(exc.UniqueViolationError,
                      exc.IntegrityConstraintViolationError)
    assert exc.UniqueViolationError.sqlstate == '23505'
    assert exc.PostgresSyntaxError.sqlstate == '42601'
    assert issubclass(exc.PostgresSyntaxError, exc.SyntaxOrAccessError)
    assert issubclass(exc.SerializationError, exc.TransactionRollbackError)
    assert issubclass(exc.DeadlockDetectedError, exc.TransactionRollbackError)
    assert issubclass(exc.AdminShutdownError, exc.OperatorInterventionError)
    assert issubclass(exc.QueryCanceledError, exc.OperatorInterventionError)
    assert issubclass(exc.InFailedSQLTransactionError,
                      exc.InvalidTransactionStateError)
    assert issubclass(exc.PostgresWarning, Warning)
    assert issubclass(exc.PostgresWarning, exc.PostgresLogMessage)
    assert not issubclass(exc.PostgresWarning, exc.PostgresError)
    assert issubclass(exc.InvalidCachedStatementError,
                      exc.FeatureNotSupportedError)
    # As in asyncpg, the public DataError is SQLSTATE class 22.
    assert exc.DataError.sqlstate == '22000'
    assert issubclass(exc.DataError, exc.PostgresError)
    assert issubclass(exc.ClientConfigurationError, exc.InterfaceError)
    assert issubclass(exc.ClientConfigurationError, ValueError)
    assert issubclass(exc.ProtocolError, exc.InternalClientError)


def test_every_errcodes_code_has_a_class():
    registry = _base.PostgresMessage._registry
    for sqlstate, kind in _errcodes():
        if sqlstate.startswith('00'):
            assert sqlstate not in registry
            continue
        cls = registry[sqlstate]
        assert cls.sqlstate == sqlstate
        assert getattr(exc, cls.__name__) is cls
        base = exc.PostgresWarning if kind == 'W' else exc.PostgresError
        assert issubclass(cls, base), cls


def test_class_root_is_base_of_its_class():
    registry = _base.PostgresMessage._registry
    for sqlstate, cls in registry.items():
        root = registry.get(sqlstate[:2] + '000')
        if root is not None:
            assert issubclass(cls, root), cls


def test_retired_code_kept():
    assert exc.SnapshotTooOldError.sqlstate == '72000'
    assert _base.PostgresMessage._registry['72000'] is exc.SnapshotTooOldError


def test_duplicate_sqlstate_is_rejected():
    with pytest.raises(TypeError, match='23505'):
        type('Clash', (exc.PostgresError,), {'sqlstate': '23505'})


def test_generated_file_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(GENERATOR), '--check', str(ERRCODES)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_file_header():
    path = pathlib.Path(exc._sqlstate.__file__)
    first = path.read_text(encoding='utf-8').splitlines()[0]
    assert first == ('# Generated by tools/update_sqlstate.py from '
                     'PostgreSQL 18 errcodes.txt; do not edit.')


# -- PostgresError.new() -----------------------------------------------------

def test_new_known_code():
    err = exc.PostgresError.new({'C': '23505', 'M': 'dup'}, query='INSERT')
    assert type(err) is exc.UniqueViolationError
    assert err.sqlstate == '23505'
    assert err.message == 'dup'
    assert err.query == 'INSERT'
    assert err.detail is None


def test_new_unknown_code_in_known_class():
    # As asyncpg: only an exact SQLSTATE picks a class (a RAISE with a
    # made-up code in a known class is still unknown).
    err = exc.PostgresError.new({'C': '23999', 'M': 'new kind'})
    assert type(err) is exc.UnknownPostgresError
    assert err.sqlstate == '23999'


def test_new_unknown_code():
    err = exc.PostgresError.new({'C': 'ZZ999', 'M': 'who knows'})
    assert type(err) is exc.UnknownPostgresError
    assert isinstance(err, exc.PostgresError)
    assert err.sqlstate == 'ZZ999'


def test_new_without_code():
    err = exc.PostgresError.new({'M': 'no code'})
    assert type(err) is exc.UnknownPostgresError
    assert str(err) == 'no code'


def test_new_from_subclass_still_dispatches():
    err = exc.DataError.new({'C': '42601', 'M': 'syntax'})
    assert type(err) is exc.PostgresSyntaxError


def test_new_warning_code_in_error_response_is_still_an_error():
    err = exc.PostgresError.new({'C': '01000', 'M': 'odd'})
    assert isinstance(err, exc.PostgresError)


def test_field_mapping():
    err = exc.PostgresError.new({**ALL_FIELDS, 'Z': 'unknown field'})
    for name, value in ALL_ATTRIBUTES.items():
        assert getattr(err, name) == value, name
    assert not hasattr(err, 'Z')
    assert set(_base.PostgresMessage._field_map) == set(ALL_FIELDS)


def test_fields_default_to_none():
    err = exc.PostgresError.new({'C': '42P01', 'M': 'no table'})
    for name in ALL_ATTRIBUTES:
        if name not in ('sqlstate', 'message'):
            assert getattr(err, name) is None, name
    assert exc.PostgresError('x').query is None


def test_as_dict():
    err = exc.PostgresError.new(ALL_FIELDS, query='SELECT secret')
    assert err.as_dict() == ALL_ATTRIBUTES
    err = exc.PostgresError.new({'C': '42P01', 'M': 'no table'})
    assert err.as_dict() == {'sqlstate': '42P01', 'message': 'no table'}


def test_invalid_cached_statement():
    err = exc.PostgresError.new({
        'C': '0A000', 'M': 'cached plan must not change result type',
        'R': 'RevalidateCachedQuery'})
    assert type(err) is exc.InvalidCachedStatementError
    assert 'cached statement plan is invalid' in str(err)
    err = exc.PostgresError.new({'C': '0A000', 'M': 'nope', 'R': 'other'})
    assert type(err) is exc.FeatureNotSupportedError


@pytest.mark.parametrize('code', ['26000', '42P05'])
def test_prepared_statement_errors_mention_poolers(code):
    err = exc.PostgresError.new({'C': code, 'M': 'm', 'H': 'server hint'})
    assert err.hint.startswith('server hint\n')
    assert 'statement_cache_size=0' in err.hint
    err = exc.PostgresError.new({'C': code, 'M': 'm'})
    assert 'pgbouncer' in err.hint


# -- str() -------------------------------------------------------------------

def test_str_message_only():
    text = 'relation "t" does not exist'
    err = exc.PostgresError.new({'C': '42P01', 'M': text})
    assert str(err) == text


def test_str_with_detail_and_hint():
    err = exc.PostgresError.new(ALL_FIELDS)
    assert str(err) == (
        'duplicate key value violates unique constraint "t_pkey"\n'
        'DETAIL:  Key (id)=(1) already exists.\n'
        'HINT:  Use another id.')


def test_server_text_is_not_a_format_string():
    text = 'bad {0} {name} %s %(x)s {'
    err = exc.PostgresError.new(
        {'C': '22P02', 'M': text, 'D': text, 'H': text})
    assert str(err) == f'{text}\nDETAIL:  {text}\nHINT:  {text}'
    notice = exc.PostgresLogMessage.new({'C': '00000', 'M': text})
    assert str(notice) == f'PostgresLogMessage: {text}'


def test_str_same_as_asyncpg(apg_exc):
    for fields in (ALL_FIELDS, {'C': '42P01', 'M': 'x', 'H': 'h'},
                   {'C': 'ZZ999', 'M': 'y', 'D': 'd'}):
        ours = exc.PostgresError.new(fields, query='q')
        theirs = apg_exc.PostgresError.new(fields, query='q')
        assert str(ours) == str(theirs)
        assert ours.as_dict() == theirs.as_dict()
        assert ours.query == theirs.query


def test_interface_error_str_and_with_msg():
    err = exc.InterfaceError('bad call', detail='d', hint='h')
    assert str(err) == 'bad call\nDETAIL:  d\nHINT:  h'
    assert str(exc.InterfaceError('plain')) == 'plain'
    try:
        raise err
    except exc.InterfaceError as caught:
        copy = caught.with_msg('better')
    assert type(copy) is exc.InterfaceError
    assert (copy.args, copy.detail, copy.hint) == (('better',), 'd', 'h')
    assert copy.__traceback__ is err.__traceback__


def test_interface_warning():
    with pytest.warns(exc.InterfaceWarning, match='careful'):
        warnings.warn(exc.InterfaceWarning('careful', hint='h'),
                      stacklevel=1)
    assert str(exc.InterfaceWarning('w', detail='d')) == 'w\nDETAIL:  d'


def test_outdated_schema_cache_error():
    err = exc.OutdatedSchemaCacheError(
        'type changed', schema='public', data_type='mytype', position='2')
    assert (err.schema_name, err.data_type_name, err.position) == (
        'public', 'mytype', '2')
    assert str(err) == 'type changed'


# -- request_sent -------------------------------------------------------------

def test_request_sent():
    err = exc.ConnectionDoesNotExistError('connection was lost')
    assert err.request_sent is None
    err = exc.ConnectionDoesNotExistError('lost', request_sent=True)
    assert err.request_sent is True
    assert str(err) == 'lost'
    assert exc.ConnectionFailureError('x', request_sent=False).request_sent \
        is False
    assert 'request_sent' in exc.ConnectionDoesNotExistError.__doc__
    server = exc.PostgresError.new({'C': '08006', 'M': 'gone'})
    assert type(server) is exc.ConnectionFailureError
    assert server.request_sent is None


# -- pickling ----------------------------------------------------------------

def _roundtrip(obj):
    return pickle.loads(pickle.dumps(obj))


def test_pickle_server_error():
    err = exc.PostgresError.new(ALL_FIELDS, query='INSERT')
    copy = _roundtrip(err)
    assert type(copy) is exc.UniqueViolationError
    assert copy.as_dict() == err.as_dict()
    assert copy.query == 'INSERT'
    assert str(copy) == str(err)


def test_pickle_connection_error_keeps_request_sent():
    err = exc.ConnectionDoesNotExistError('lost', request_sent=True)
    copy = _roundtrip(err)
    assert type(copy) is exc.ConnectionDoesNotExistError
    assert copy.request_sent is True
    assert str(copy) == 'lost'


@pytest.mark.parametrize('err', [
    exc.InterfaceError('bad', detail='d', hint='h'),
    exc.ClientConfigurationError('bad option', hint='h'),
    exc.InterfaceWarning('careful', detail='d'),
    exc.InternalClientError('bug'),
    exc.ProtocolError('unexpected message'),
    exc.TargetServerAttributeNotMatched('no primary'),
    exc.UnsupportedServerFeatureError('no', hint='upgrade'),
    exc.OutdatedSchemaCacheError('stale', schema='s', data_type='t',
                                 position='1'),
    exc.UnknownPostgresError('?'),
])
def test_pickle_client_errors(err):
    copy = _roundtrip(err)
    assert type(copy) is type(err)
    assert copy.args == err.args
    assert copy.__dict__ == err.__dict__
    assert str(copy) == str(err)


def test_pickle_log_messages():
    notice = exc.PostgresLogMessage.new({'S': 'NOTICE', 'C': '00000',
                                         'M': 'hello'})
    copy = _roundtrip(notice)
    assert type(copy) is exc.PostgresLogMessage
    assert copy.as_dict() == notice.as_dict()

    warning = exc.PostgresLogMessage.new({'S': 'WARNING', 'C': '01000',
                                          'M': 'careful'})
    copy = _roundtrip(warning)
    assert type(copy) is exc.PostgresWarning
    assert copy.message == 'careful'
    assert str(copy) == str(warning)


# -- PostgresLogMessage.new() -------------------------------------------------

def test_notice():
    msg = exc.PostgresLogMessage.new(
        {'S': 'NOTICE', 'V': 'NOTICE', 'C': '00000', 'M': 'hi'}, query='DO')
    assert type(msg) is exc.PostgresLogMessage
    assert (msg.severity, msg.sqlstate, msg.message, msg.query) == (
        'NOTICE', '00000', 'hi', 'DO')
    assert str(msg) == 'PostgresLogMessage: hi'
    assert msg.as_dict() == {'severity': 'NOTICE', 'severity_en': 'NOTICE',
                             'sqlstate': '00000', 'message': 'hi'}


def test_notice_is_immutable():
    msg = exc.PostgresLogMessage.new({'C': '00000', 'M': 'hi'})
    with pytest.raises(TypeError):
        msg.message = 'changed'


def test_warning_by_code_and_by_severity():
    msg = exc.PostgresLogMessage.new(
        {'S': 'WARNING', 'C': '01P01', 'M': 'old'})
    assert type(msg) is exc.DeprecatedFeature
    assert isinstance(msg, Warning)
    msg = exc.PostgresLogMessage.new({'V': 'WARNING', 'C': '00000', 'M': 'w'})
    assert type(msg) is exc.PostgresWarning
    assert str(msg) == 'PostgresWarning: w'
    # An unknown code without a WARNING severity stays a plain log
    # message, as in asyncpg (only exact SQLSTATEs pick a class).
    msg = exc.PostgresLogMessage.new({'C': '01999', 'M': 'new warning'})
    assert type(msg) is exc.PostgresLogMessage


def test_notice_with_error_code_matches_asyncpg(apg_exc):
    fields = {'S': 'NOTICE', 'C': '42P07',
              'M': 'relation "t" already exists, skipping'}
    ours = exc.PostgresLogMessage.new(fields)
    theirs = apg_exc.PostgresLogMessage.new(fields)
    assert type(ours).__name__ == 'DuplicateTableError'
    assert type(theirs).__name__ == 'DuplicateTableError'
    assert ours.as_dict() == theirs.as_dict()


def test_no_password_in_exceptions():
    # Exceptions keep only server fields and the query: nothing a caller
    # could put a DSN or password into.
    err = exc.PostgresError.new({'C': '28P01', 'M': 'password authentication '
                                 'failed for user "u"'})
    assert type(err) is exc.InvalidPasswordError
    assert set(vars(err)) <= set(ALL_ATTRIBUTES) | {'query'}
    assert exc.ClientConfigurationError('bad dsn').__dict__ == {
        'detail': None, 'hint': None}
