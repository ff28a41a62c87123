"""Answers to the server's Authentication* requests during startup.

Drives pg_wire.auth's sans-I/O pieces: ``AuthPolicy`` decides, before any
credential leaves the client, whether a request is acceptable under
``require_auth`` and ``channel_binding``; ``ScramClient`` runs SCRAM; the
answers are framed into the connection's output buffer.

The password is held only here, for the duration of the startup exchange,
and appears in no message, repr or log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pg_wire import auth

from . import _wire
from .exceptions import InvalidAuthorizationSpecificationError, InvalidPasswordError


class AuthenticationFailed(InvalidAuthorizationSpecificationError):
    """The client refused to authenticate (policy) or the server's proof failed.

    Raised before the client answers the request it refuses, so no
    credential left the client for it.
    """


class PasswordRequired(AuthenticationFailed, InvalidPasswordError):
    """The server asked for a password and none was configured.

    libpq refuses without sending anything ("no password supplied"); asyncpg
    sends an empty password and the server answers InvalidPasswordError.
    This is both: nothing is sent, and ``except InvalidPasswordError`` works.
    """


class AuthDriver:
    """Answers one connection attempt's authentication requests."""

    __slots__ = ("_password", "_policy", "_scram", "_server_certificate", "_user",
                 "_max_iterations", "ok_received", "started")

    def __init__(self, user: str, password: str | None, *, require_auth: str | None,
                 channel_binding: str, server_certificate: Callable[[], bytes | None],
                 max_iterations: int = auth.DEFAULT_SCRAM_MAX_ITERATIONS) -> None:
        self._user = user
        self._password = password
        self._policy = auth.AuthPolicy(require_auth=require_auth,
                                       channel_binding=channel_binding)
        self._scram: Any = None
        self._server_certificate = server_certificate
        self._max_iterations = max_iterations
        #: An Authentication* request arrived (the server is past
        #: NegotiateProtocolVersion), and AuthenticationOk was accepted.
        self.started = False
        self.ok_received = False

    def __repr__(self) -> str:
        return f"<AuthDriver user={self._user!r}>"

    def _need_password(self, what: str) -> str:
        if not self._password:  # None or "": libpq's "no password supplied"
            raise PasswordRequired(
                f"the server requested {what} authentication, but no password was "
                "supplied")
        return self._password

    def respond(self, out: Any, code: int, data: Any) -> None:
        """Write the answer to Authentication request *code* into *out*."""
        self.started = True
        try:
            self._respond(out, code, data)
        except auth.AuthError as exc:
            raise AuthenticationFailed(str(exc)) from None

    def _respond(self, out: Any, code: int, data: Any) -> None:
        mechanisms: list[str] = []
        if code == auth.AUTHENTICATION_SASL:
            mechanisms = list(data or ())
        self._policy.check_request(code, mechanisms)
        if code == auth.AUTHENTICATION_CLEARTEXT_PASSWORD:
            password = self._need_password("password")
            _wire.write_password(out, password.encode("utf-8"))
        elif code == auth.AUTHENTICATION_MD5_PASSWORD:
            password = self._need_password("md5")
            if len(data) != 4:
                raise auth.AuthError("malformed AuthenticationMD5Password message")
            _wire.write_password(out, auth.md5_password(self._user, password, data))
        elif code == auth.AUTHENTICATION_SASL:
            password = self._need_password("SCRAM")
            cert = self._server_certificate()
            scram = self._policy.start_scram(
                password, mechanisms, server_certificate=cert,
                max_iterations=self._max_iterations)
            self._scram = scram
            _wire.write_sasl_initial_response(out, scram.mechanism, scram.initial_response())
        elif code == auth.AUTHENTICATION_SASL_CONTINUE:
            if self._scram is None:
                raise auth.AuthError("SASLContinue without a SASL exchange")
            _wire.write_sasl_response(out, self._scram.handle_continue(data))
        elif code == auth.AUTHENTICATION_SASL_FINAL:
            if self._scram is None:
                raise auth.AuthError("SASLFinal without a SASL exchange")
            self._scram.handle_final(data)
        elif code in (auth.AUTHENTICATION_GSS, auth.AUTHENTICATION_SSPI,
                      auth.AUTHENTICATION_GSS_CONTINUE):
            from .exceptions import UnsupportedClientFeatureError

            raise UnsupportedClientFeatureError(
                "GSSAPI/SSPI authentication is not supported by this client")
        else:
            raise auth.AuthError(f"unsupported authentication request {code}")

    def check_ok(self) -> None:
        """AuthenticationOk arrived: refuse it if the exchange was cut short."""
        self.started = True
        try:
            self._policy.check_request(auth.AUTHENTICATION_OK, ())
            self.ok_received = True
        except auth.AuthError as exc:
            raise AuthenticationFailed(str(exc)) from None
        finally:
            self._password = None
