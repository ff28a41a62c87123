"""Opening a connection: hosts, TLS modes, startup and authentication.

``connect()`` resolves its arguments (``_connect_params``), then tries the
hosts in order under one overall timeout:

* for each host, the TLS mode decides the attempts: ``prefer`` tries TLS
  first and falls back to plaintext when the server refuses TLS (or refuses
  the TLS session before authentication); ``allow`` tries plaintext first and
  TLS second; ``require`` and the ``verify-*`` modes never send a byte in
  plaintext after a refusal, not even the user name;
* a host that cannot be reached, or is starting up or shutting down, passes
  the turn to the next host; an authentication failure ends the attempt, as
  in asyncpg and libpq;
* ``target_session_attrs`` then checks the chosen server (primary, standby,
  read-write, ...); connections that do not fit are closed in the background.

When every host fails, the error says what happened on each.
"""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

from . import _connect_params as cp
from . import _protocol, _transport, _wire, exceptions
from ._auth import AuthDriver

__all__ = ("connect_to_hosts",)


class _HostFailed(Exception):
    """This host did not work out; try the next one."""


def _startup_params(params: cp.ConnectionParameters) -> dict[str, str]:
    startup = {"user": params.user, "database": params.database,
               "client_encoding": "UTF8"}
    for key, value in params.server_settings.items():
        startup[key] = value
    startup["client_encoding"] = "UTF8"  # every codec here assumes it
    return startup


def _protocol_minor(version: str) -> int:
    return int(version.split(".")[1])


async def _attempt(loop: asyncio.AbstractEventLoop, spec: cp.HostSpec,
                   params: cp.ConnectionParameters, *, use_tls: bool,
                   password: str | None, connection_class: type,
                   record_class: type, deadline: float | None) -> Any:
    """One connection attempt to one host, with or without TLS."""
    addr = spec.address
    is_unix = isinstance(addr, str)
    ssl_settings = params.ssl
    ssl_context = None
    if use_tls and not is_unix:
        ssl_context = cp.make_ssl_context(ssl_settings, spec.host)
    direct = ssl_settings.negotiation == cp.SSLNegotiation.direct and ssl_context is not None
    server_hostname = None if is_unix else spec.host

    core = _protocol.ProtocolCore()
    protocol_holder: list[_transport.ClientProtocol] = []

    def factory() -> _transport.ClientProtocol:
        proto = _transport.ClientProtocol(loop, core)
        protocol_holder.append(proto)
        return proto

    left = None if deadline is None else max(deadline - loop.time(), 0.001)
    transport, proto_any, tls_used = await asyncio.wait_for(
        _transport.open_stream(loop, addr, ssl_context=ssl_context,
                               server_hostname=server_hostname, direct_tls=direct,
                               protocol_factory=factory), left)
    proto: _transport.ClientProtocol = proto_any  # type: ignore[assignment]
    op = None
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
        left = None if deadline is None else max(deadline - loop.time(), 0.001)
        negotiated = await asyncio.wait_for(op.waiter, left)
    except BaseException:
        if op is not None:
            op.abandoned = True  # nobody will read its waiter any more
        transport.abort()
        raise

    config = params.config
    con = connection_class(proto, transport, loop, addr, config, params)
    con._record_class = record_class
    con._ssl_in_use = tls_used
    con._protocol_minor = negotiated

    async def cancel(request: bytes, timeout: float) -> None:
        await _transport.send_cancel_request(
            loop, addr, request, ssl_context=ssl_context if tls_used else None,
            server_hostname=server_hostname, direct_tls=direct, timeout=timeout)

    con._cancel_info = cancel
    return con


def _set_keepalive(transport: Any, params: cp.ConnectionParameters) -> None:
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


def _is_before_auth_refusal(exc: BaseException) -> bool:
    # Errors that justify the second try of prefer/allow: the server (or
    # its pg_hba.conf) refused this transport before authentication.
    return isinstance(exc, (exceptions.InvalidAuthorizationSpecificationError,
                            exceptions.ConnectionDoesNotExistError,
                            exceptions.PostgresConnectionError))


async def _connect_host(loop: asyncio.AbstractEventLoop, spec: cp.HostSpec,
                        params: cp.ConnectionParameters, connection_class: type,
                        record_class: type, deadline: float | None) -> Any:
    password = await cp.obtain_password(params, spec.host, spec.port)
    mode = params.ssl.mode
    is_unix = spec.is_unix_socket
    kwargs: dict[str, Any] = dict(password=password, connection_class=connection_class,
                                  record_class=record_class, deadline=deadline)
    if is_unix or mode == cp.SSLMode.disable:
        return await _attempt(loop, spec, params, use_tls=False, **kwargs)
    if mode == cp.SSLMode.allow:
        try:
            return await _attempt(loop, spec, params, use_tls=False, **kwargs)
        except exceptions.PostgresError as first:
            if not _is_before_auth_refusal(first):
                raise
            try:
                return await _attempt(loop, spec, params, use_tls=True, **kwargs)
            except Exception as second:
                raise second from first
    if mode == cp.SSLMode.prefer:
        try:
            return await _attempt(loop, spec, params, use_tls=True, **kwargs)
        except _transport.SSLNegotiationError as first:
            if not first.refused:
                raise
        except (exceptions.PostgresError, OSError) as first:
            # The TLS session failed (handshake error) or pg_hba.conf has no
            # hostssl line for us: plaintext is acceptable under prefer.
            import ssl as ssl_module

            if isinstance(first, OSError) and not isinstance(first, ssl_module.SSLError):
                raise
            if isinstance(first, exceptions.PostgresError) and not _is_before_auth_refusal(
                    first):
                raise
        return await _attempt(loop, spec, params, use_tls=False, **kwargs)
    # require, verify-ca, verify-full: TLS or nothing.
    try:
        return await _attempt(loop, spec, params, use_tls=True, **kwargs)
    except _transport.SSLNegotiationError as exc:
        raise ConnectionError(f"rejected SSL upgrade: {exc}") from None


def _fits(settings: Any, attr: cp.SessionAttribute, recovery: bool | None) -> bool:
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
    return _fits(settings, attr, recovery)


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
            host_deadline = deadline
            if params.connect_timeout:
                per_host = loop.time() + params.connect_timeout
                host_deadline = per_host if deadline is None else min(deadline, per_host)
            try:
                con = await _connect_host(loop, spec, params, connection_class,
                                          record_class, host_deadline)
            except (OSError, asyncio.TimeoutError, exceptions.CannotConnectNowError) as exc:
                if deadline is not None and loop.time() >= deadline:
                    failures.append((spec, exc))
                    break
                failures.append((spec, exc))
                continue
            candidates.append(con)
            if await _check_attrs(con, attr):
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
    if failures:
        if len(failures) == 1:
            raise failures[0][1]
        spec, last = failures[-1]
        lines = "; ".join(
            f"{s.host}:{s.port}: {type(e).__name__}: {e or 'timed out'}" for s, e in failures)
        err = type(last)(f"could not connect to any host ({lines})") if isinstance(
            last, OSError) else last
        if isinstance(last, asyncio.TimeoutError):
            err = asyncio.TimeoutError(f"could not connect to any host ({lines})")
        raise err from last
    raise exceptions.TargetServerAttributeNotMatched(
        f"None of the hosts match the target attribute requirement {attr!r}")
