"""Opening a connection: hosts, TLS modes, startup and authentication.

``connect()`` resolves its arguments (``_connect_params``), then calls
:func:`connect_to_hosts`, which tries the hosts in order (shuffled first
with ``load_balance_hosts=random``) under one overall deadline, ``timeout``
(asyncpg's: it covers every host, TLS, authentication and the
``target_session_attrs`` check). libpq's ``connect_timeout``, when set, also
bounds each host on its own.

For each host the TLS mode decides the attempts (libpq's rules):

* ``disable``, and every Unix socket: plaintext.
* ``allow``: plaintext; if the server refuses that before authentication
  (pg_hba.conf has only ``hostssl`` for us, say), once more with TLS.
* ``prefer`` (the default): SSLRequest; ``N`` goes on in plaintext on the
  same socket; if the TLS handshake fails, or the server refuses the TLS
  session before authentication, once more in plaintext. Downgradeable by
  anyone on the path: use ``require`` or ``verify-full`` where that matters.
* ``require``, ``verify-ca``, ``verify-full``: TLS or nothing. After an
  ``N`` the socket is closed without sending another byte, not even the
  StartupMessage with the user name.

"Refused before authentication" is an ErrorResponse (or a hang-up) that
comes before AuthenticationOk, as in asyncpg 0.32 and libpq; a refusal the
client makes itself (``require_auth``, ``channel_binding``) never triggers
the plaintext retry.

Moving on to the next host: a host that cannot be reached, times out (its
``connect_timeout``), fails TLS, or answers 57P03 (starting up, shutting
down) passes the turn to the next host. An error the server sends during
authentication or startup (wrong password, no such database) ends the whole
attempt, as in asyncpg and libpq. When more than one host was tried, the
error raised has the class of the last failure and a message listing every
host's failure.

``target_session_attrs`` then checks the server (primary, standby,
read-write, ...); connections that do not fit are terminated.

The startup exchange itself runs in the protocol core's StartupOp, which
checks the order of the startup phase as libpq does.
"""

from __future__ import annotations

import asyncio
import copy
import random
import socket
import ssl as ssl_module
from typing import Any

from . import _connect_params as cp
from . import _protocol, _transport, _wire, exceptions
from ._auth import AuthDriver, AuthenticationFailed

__all__ = ("connect_to_hosts",)


def _startup_params(params: cp.ConnectionParameters) -> dict[str, str]:
    startup = {"user": params.user, "database": params.database,
               "client_encoding": "UTF8"}
    for key, value in params.server_settings.items():
        startup[key] = value
    startup["client_encoding"] = "UTF8"  # every codec here assumes it
    return startup


def _protocol_minor(version: str) -> int:
    return int(version.split(".")[1])


class _AttemptInfo:
    """What one attempt got to, for the retry decisions."""

    __slots__ = ("tls_used", "auth_ok", "handshake")

    def __init__(self) -> None:
        self.tls_used = False
        self.auth_ok = False
        self.handshake = False  # the TLS handshake was under way


async def _attempt(loop: asyncio.AbstractEventLoop, spec: cp.HostSpec,
                   params: cp.ConnectionParameters, *, use_tls: bool,
                   plaintext_on_refusal: bool, password: str | None,
                   connection_class: type, record_class: type,
                   info: _AttemptInfo) -> Any:
    """One connection attempt to one host, with or without TLS."""
    addr = spec.address
    is_unix = isinstance(addr, str)
    ssl_settings = params.ssl
    ssl_context = None
    if use_tls and not is_unix:
        ssl_context = cp.make_ssl_context(ssl_settings, spec.host)
    direct = ssl_settings.negotiation == cp.SSLNegotiation.direct and ssl_context is not None
    # verify-full checks the certificate against host, never hostaddr.
    server_hostname = None if is_unix else spec.host

    core = _protocol.ProtocolCore()

    def factory() -> _transport.ClientProtocol:
        return _transport.new_client_protocol(loop, core)

    info.handshake = ssl_context is not None
    transport, proto_any, tls_used = await _transport.open_stream(
        loop, addr, ssl_context=ssl_context, server_hostname=server_hostname,
        direct_tls=direct, protocol_factory=factory,
        plaintext_on_refusal=plaintext_on_refusal)
    info.handshake = False
    info.tls_used = tls_used
    proto: _transport.ClientProtocol = proto_any  # type: ignore[assignment]
    op = None
    auth = None
    try:
        if not is_unix and params.keepalives:
            _set_keepalive(transport, params)
        min_minor = _protocol_minor(params.min_protocol_version)
        max_minor = _protocol_minor(params.max_protocol_version)
        auth = AuthDriver(
            params.user, password, require_auth=params.require_auth,
            channel_binding=params.channel_binding,
            server_certificate=lambda: _transport.peer_certificate(transport))
        _wire.write_startup(core.out, _startup_params(params), max_minor)
        op = _protocol.StartupOp(loop.create_future(), auth, min_minor=min_minor,
                        max_minor=max_minor)
        proto.send(op)
        negotiated = await op.waiter
    except BaseException:
        if op is not None:
            op.abandoned = True  # nobody will read its waiter any more
            if op.waiter.done() and not op.waiter.cancelled():
                op.waiter.exception()
        if auth is not None:
            info.auth_ok = auth.ok_received
        transport.abort()
        raise

    config = params.config
    con = connection_class(proto, transport, loop, addr, config, params)
    con._record_class = record_class
    con._ssl_in_use = tls_used
    con._protocol_minor = negotiated

    # CancelRequest goes over a side connection with the same TLS settings
    # as this one (CVE-2020-25694): TLS, verified the same way, if and only
    # if this connection uses TLS, and never a plaintext fallback.
    cancel_context = ssl_context if tls_used else None

    async def cancel(request: bytes, timeout: float) -> None:
        await _transport.send_cancel_request(
            loop, addr, request, ssl_context=cancel_context,
            server_hostname=server_hostname, direct_tls=direct, timeout=timeout)

    con._cancel_info = cancel
    return con


def _set_keepalive(transport: Any, params: cp.ConnectionParameters) -> None:
    """TCP keepalives, on by default as in libpq (``keepalives=1``)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if params.keepalives_idle and hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, params.keepalives_idle)
        if params.keepalives_interval and hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL,
                            params.keepalives_interval)
        if params.keepalives_count and hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, params.keepalives_count)
        if params.tcp_user_timeout and hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                            params.tcp_user_timeout)
    except OSError:
        pass


def _refused_before_auth(exc: BaseException, info: _AttemptInfo) -> bool:
    """Whether the other transport (TLS / plaintext) is worth a try.

    The server refused before AuthenticationOk (pg_hba.conf has no line for
    this transport, or it hung up); asyncpg 0.32 and libpq retry then. A
    refusal decided by the client (require_auth, channel_binding) is final,
    and 57P03 (starting up, shutting down) passes the turn to the next host
    instead, as in asyncpg.
    """
    return (isinstance(exc, exceptions.PostgresError)
            and not isinstance(exc, (AuthenticationFailed, exceptions.CannotConnectNowError))
            and not info.auth_ok)


def _second_failure(first: BaseException, second: BaseException) -> BaseException:
    """Which error to raise when both transports failed (asyncpg's rule)."""
    # A wrong password says more than a pg_hba.conf rejection of the other
    # transport.
    if (isinstance(first, exceptions.InvalidPasswordError)
            and not isinstance(second, exceptions.InvalidPasswordError)
            and isinstance(second, (exceptions.InvalidAuthorizationSpecificationError,
                                    exceptions.ConnectionDoesNotExistError))):
        return first
    return second


async def _connect_host(loop: asyncio.AbstractEventLoop, spec: cp.HostSpec,
                        params: cp.ConnectionParameters, connection_class: type,
                        record_class: type) -> Any:
    password = await cp.obtain_password(params, spec.host, spec.port)
    mode = params.ssl.mode
    kwargs: dict[str, Any] = dict(password=password, connection_class=connection_class,
                                  record_class=record_class)
    if spec.is_unix_socket or mode == cp.SSLMode.disable:
        return await _attempt(loop, spec, params, use_tls=False, plaintext_on_refusal=False,
                              info=_AttemptInfo(), **kwargs)

    if mode == cp.SSLMode.allow:
        info = _AttemptInfo()
        try:
            return await _attempt(loop, spec, params, use_tls=False,
                                  plaintext_on_refusal=False, info=info, **kwargs)
        except Exception as exc:
            if not _refused_before_auth(exc, info):
                raise
            first: BaseException = exc
        try:
            return await _attempt(loop, spec, params, use_tls=True,
                                  plaintext_on_refusal=False, info=_AttemptInfo(), **kwargs)
        except Exception as second:
            if _second_failure(first, second) is first:
                raise first from None
            raise second from first

    if mode == cp.SSLMode.prefer:
        info = _AttemptInfo()
        try:
            return await _attempt(loop, spec, params, use_tls=True,
                                  plaintext_on_refusal=True, info=info, **kwargs)
        except Exception as exc:
            # TLS handshake failed (libpq retries in plaintext), or the server
            # refused the TLS session before authentication (a hostnossl
            # line). A server that said N already got its plaintext try.
            handshake_failed = info.handshake and isinstance(exc, ssl_module.SSLError)
            if not (handshake_failed or (info.tls_used and _refused_before_auth(exc, info))):
                raise
            first = exc
        try:
            return await _attempt(loop, spec, params, use_tls=False,
                                  plaintext_on_refusal=False, info=_AttemptInfo(), **kwargs)
        except Exception as second:
            if _second_failure(first, second) is first:
                raise first from None
            raise second from first

    # require, verify-ca, verify-full: TLS or nothing.
    try:
        return await _attempt(loop, spec, params, use_tls=True, plaintext_on_refusal=False,
                              info=_AttemptInfo(), **kwargs)
    except _transport.SSLNegotiationError as exc:
        if not exc.refused:
            raise
        # asyncpg's message for the same situation.
        raise ConnectionError(
            f"PostgreSQL server at {_describe_host(spec)} rejected SSL upgrade") from None


def session_fits(settings: Any, attr: cp.SessionAttribute,
                 recovery: bool | None = None) -> bool:
    """Whether a server with these settings fits *attr* (libpq's rules)."""
    if attr == cp.SessionAttribute.any:
        return True
    hot = getattr(settings, "in_hot_standby", None)
    standby = (hot == "on") if hot is not None else bool(recovery)
    if attr in (cp.SessionAttribute.primary,):
        return not standby
    if attr in (cp.SessionAttribute.standby, cp.SessionAttribute.prefer_standby):
        return standby
    readonly = getattr(settings, "default_transaction_read_only", "off") == "on" or standby
    if attr == cp.SessionAttribute.read_write:
        return not readonly
    return readonly  # read-only


async def _check_attrs(con: Any, attr: cp.SessionAttribute) -> bool:
    if attr == cp.SessionAttribute.any:
        return True
    settings = con.get_settings()
    recovery = None
    if getattr(settings, "in_hot_standby", None) is None:
        recovery = await con.fetchval("SELECT pg_catalog.pg_is_in_recovery()")
    return session_fits(settings, attr, recovery)


# Failures that pass the turn to the next host.
_NEXT_HOST_ERRORS = (OSError, asyncio.TimeoutError, exceptions.CannotConnectNowError)


def _describe_host(spec: cp.HostSpec) -> str:
    if spec.is_unix_socket:
        return f'"{spec.address}"'
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    if spec.hostaddr is not None and spec.hostaddr != spec.host:
        return f'"{host}" ({spec.hostaddr}), port {spec.port}'
    return f'"{host}", port {spec.port}'


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or ("timed out" if isinstance(exc, asyncio.TimeoutError)
                                else "failed")
    return f"{type(exc).__name__}: {text}"


def _combined_error(failures: list[tuple[cp.HostSpec, BaseException]]) -> BaseException:
    """One error for several hosts' failures: the last one's class, every message."""
    last = failures[-1][1]
    if len(failures) == 1:
        return last
    text = "could not connect to any of the hosts:\n" + "\n".join(
        f"  {_describe_host(spec)}: {_describe_error(exc)}" for spec, exc in failures)
    err: BaseException
    if isinstance(last, asyncio.TimeoutError):
        err = asyncio.TimeoutError(text)
    elif isinstance(last, OSError):
        try:
            err = (type(last)(last.errno, text) if last.errno is not None
                   else type(last)(text))
        except Exception:
            err = ConnectionError(text)
    else:
        try:
            err = copy.copy(last)
            # PostgresError's str() is args[0] plus DETAIL/HINT; the server's
            # own text stays in .message.
            err.args = (text,)
        except Exception:
            err = last
    err.__cause__ = last
    return err


async def _until(coro: Any, deadline: float | None, loop: asyncio.AbstractEventLoop) -> Any:
    if deadline is None:
        return await coro
    return await asyncio.wait_for(coro, max(deadline - loop.time(), 0.0))


async def connect_to_hosts(loop: asyncio.AbstractEventLoop, params: cp.ConnectionParameters,
                           connection_class: type, record_class: type) -> Any:
    """Try every host of *params*; return the first acceptable connection."""
    hosts = list(params.hosts)
    if params.load_balance_hosts == "random":
        random.shuffle(hosts)
    timeout = params.timeout
    deadline = None if timeout is None else loop.time() + timeout
    attr = params.target_session_attrs
    failures: list[tuple[cp.HostSpec, BaseException]] = []
    candidates: list[Any] = []
    chosen = None
    try:
        for spec in hosts:
            if deadline is not None and loop.time() >= deadline:
                failures.append((spec, asyncio.TimeoutError("timed out before trying this host")))
                break
            host_deadline = deadline
            if params.connect_timeout:
                per_host = loop.time() + params.connect_timeout
                host_deadline = per_host if deadline is None else min(deadline, per_host)
            try:
                con = await _until(
                    _connect_host(loop, spec, params, connection_class, record_class),
                    host_deadline, loop)
            except _NEXT_HOST_ERRORS as exc:
                failures.append((spec, exc))
                continue
            except exceptions.InterfaceError:
                raise  # configuration (TLS files, protocol range): not the host's fault
            except Exception as exc:
                # The server refused us (authentication, no such database):
                # that ends the attempt, as in asyncpg and libpq.
                failures.append((spec, exc))
                raise _combined_error(failures)  # noqa: B904 (the cause is set)
            candidates.append(con)
            try:
                fits = await _until(_check_attrs(con, attr), deadline, loop)
            except (*_NEXT_HOST_ERRORS, exceptions.ConnectionDoesNotExistError) as exc:
                failures.append((spec, exc))
                continue
            if fits:
                chosen = con
                break
        else:
            if attr == cp.SessionAttribute.prefer_standby and candidates:
                chosen = candidates[0]
    finally:
        for con in candidates:
            if con is not chosen:
                con.terminate()
    if chosen is not None:
        return chosen
    if failures and not candidates:
        raise _combined_error(failures)
    # Some host was reached but none fits: that is the answer, whatever
    # happened to the others (they are listed).
    unreachable = "".join(
        f"; {spec.host}:{spec.port}: {type(exc).__name__}: {exc}" for spec, exc in failures)
    raise exceptions.TargetServerAttributeNotMatched(
        f"None of the hosts match the target attribute requirement {attr!r}{unreachable}")
