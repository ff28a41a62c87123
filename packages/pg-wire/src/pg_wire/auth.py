"""Authentication exchanges of the PostgreSQL v3 protocol, as sans-I/O objects.

What the client must compute or decide between the server's
``Authentication*`` requests and its own replies: the MD5 password hash, the
SCRAM-SHA-256(-PLUS) exchange (RFC 5802, RFC 7677, with ``tls-server-end-point``
channel binding from RFC 5929), and libpq's ``require_auth`` /
``channel_binding`` rules. Knows nothing about sockets, TLS objects or asyncio
(the caller hands in the server certificate as DER bytes), and nothing about
framing: every function here takes and returns message *payloads*; building
``PasswordMessage``, ``SASLInitialResponse`` and ``SASLResponse`` is the job of
the message writer.

How it works
------------
One :class:`AuthPolicy` per connection attempt sees every ``Authentication*``
request, in order, before the client answers it::

    policy = AuthPolicy(require_auth="scram-sha-256", channel_binding="prefer")

    # for each Authentication* message (code, payload) from the server:
    policy.check_request(code, mechanisms)   # AuthError: nothing secret was sent
    if code == AUTHENTICATION_CLEARTEXT_PASSWORD:
        send PasswordMessage(password)
    elif code == AUTHENTICATION_MD5_PASSWORD:
        send PasswordMessage(md5_password(user, password, salt))
    elif code == AUTHENTICATION_SASL:
        scram = policy.start_scram(password, mechanisms, server_certificate=der)
        send SASLInitialResponse(scram.mechanism, scram.initial_response())
    elif code == AUTHENTICATION_SASL_CONTINUE:
        send SASLResponse(scram.handle_continue(payload))
    elif code == AUTHENTICATION_SASL_FINAL:
        scram.handle_final(payload)          # verifies the server's signature
    elif code == AUTHENTICATION_OK:
        pass                                 # check_request() already ran check_ok()

Guarantees:

* :meth:`AuthPolicy.check_request` raises before the client sends anything
  for a request that ``require_auth`` or ``channel_binding=require`` forbids,
  for a request that arrives out of order (``SASLContinue`` without ``SASL``,
  a second method after a password was sent, anything after ``Ok``), and for
  request codes this client cannot serve (Kerberos V5, unknown codes).
* ``AuthenticationOk`` is refused when a SASL exchange was started but its
  final message was not verified, whatever ``require_auth`` says (stricter
  than libpq, which lets ``require_auth=none,scram-sha-256`` through): a
  server that skips ``SASLFinal`` never proved it knows the password.
* :class:`ScramClient` checks every server message strictly (field order,
  base64, nonce prefix, iteration bounds) and raises :class:`AuthError` on
  the first fault; it then refuses all further calls. The iteration count is
  checked against ``max_iterations`` before any PBKDF2 work is done.
* No exception message or ``repr`` contains the password or derived keys.

Cost: :meth:`ScramClient.handle_continue` runs PBKDF2 with the server's
iteration count (4096 by default on PostgreSQL; at most ``max_iterations``,
default :data:`DEFAULT_SCRAM_MAX_ITERATIONS`, about 0.2 s on a current CPU).
``hashlib`` releases the GIL, so a client may run that call in a thread.

SASL mechanisms are chosen from data (:data:`SASL_MECHANISM_METHODS`): adding
``OAUTHBEARER`` (PostgreSQL 18) later means a new client class following the
:class:`SaslClient` protocol and a branch next to :meth:`AuthPolicy.start_scram`;
the policy side already knows its ``require_auth`` name, ``oauth``.

:class:`AuthError` lives here for now; it may move to ``pg_wire.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from pg_wire._saslprep import SaslprepError, saslprep

__all__ = [
    "AUTHENTICATION_CLEARTEXT_PASSWORD",
    "AUTHENTICATION_GSS",
    "AUTHENTICATION_GSS_CONTINUE",
    "AUTHENTICATION_KERBEROS_V5",
    "AUTHENTICATION_MD5_PASSWORD",
    "AUTHENTICATION_OK",
    "AUTHENTICATION_SASL",
    "AUTHENTICATION_SASL_CONTINUE",
    "AUTHENTICATION_SASL_FINAL",
    "AUTHENTICATION_SSPI",
    "CHANNEL_BINDING_MODES",
    "DEFAULT_SCRAM_MAX_ITERATIONS",
    "OAUTHBEARER",
    "REQUIRE_AUTH_METHODS",
    "SASL_MECHANISM_METHODS",
    "SCRAM_SHA_256",
    "SCRAM_SHA_256_PLUS",
    "AuthError",
    "AuthPolicy",
    "RequireAuth",
    "SaslClient",
    "ScramClient",
    "ServerCertificate",
    "certificate_hash_name",
    "md5_password",
    "parse_require_auth",
    "scram_password",
    "tls_server_end_point",
]

# -- Request codes (Message Formats: AuthenticationOk ... AuthenticationSASLFinal) --

AUTHENTICATION_OK: Final = 0
AUTHENTICATION_KERBEROS_V5: Final = 2
AUTHENTICATION_CLEARTEXT_PASSWORD: Final = 3
AUTHENTICATION_MD5_PASSWORD: Final = 5
AUTHENTICATION_GSS: Final = 7
AUTHENTICATION_GSS_CONTINUE: Final = 8
AUTHENTICATION_SSPI: Final = 9
AUTHENTICATION_SASL: Final = 10
AUTHENTICATION_SASL_CONTINUE: Final = 11
AUTHENTICATION_SASL_FINAL: Final = 12

# -- SASL mechanisms --

SCRAM_SHA_256: Final = "SCRAM-SHA-256"
SCRAM_SHA_256_PLUS: Final = "SCRAM-SHA-256-PLUS"
OAUTHBEARER: Final = "OAUTHBEARER"

#: The ``require_auth`` method that governs each SASL mechanism a server may
#: offer. Mechanisms not listed are unknown to this client and never chosen.
SASL_MECHANISM_METHODS: Final[dict[str, str]] = {
    SCRAM_SHA_256: "scram-sha-256",
    SCRAM_SHA_256_PLUS: "scram-sha-256",
    OAUTHBEARER: "oauth",
}

#: The method names ``require_auth`` accepts (libpq 16, plus ``oauth`` from 18).
REQUIRE_AUTH_METHODS: Final = frozenset(
    {"password", "md5", "gss", "sspi", "scram-sha-256", "oauth", "none"}
)

#: Accepted values of ``channel_binding``, as in libpq.
CHANNEL_BINDING_MODES: Final = ("disable", "prefer", "require")

#: Default upper bound on the SCRAM iteration count a server may ask for.
#: PostgreSQL lets ``scram_iterations`` go up to 2**31 - 1, which would cost
#: minutes of CPU per connection; its default is 4096.
DEFAULT_SCRAM_MAX_ITERATIONS: Final = 1_000_000

#: The server certificate for channel binding: DER bytes, a callable returning
#: them (or None if the TLS layer has none), or None when TLS is not in use.
ServerCertificate = bytes | bytearray | memoryview | Callable[[], bytes | None] | None


class AuthError(Exception):
    """Authentication cannot proceed, or the server failed to authenticate.

    Raised for a policy refusal (``require_auth``, ``channel_binding``), a
    malformed or out-of-order server message, a failed server signature check,
    or an error the server reported inside SCRAM. The message never contains
    the password.

    :ivar server_error: The SCRAM ``e=`` error name the server sent, if that is
        what failed; None otherwise.
    """

    def __init__(self, message: str, *, server_error: str | None = None) -> None:
        super().__init__(message)
        self.server_error = server_error


def _check_channel_binding(value: str) -> str:
    if value not in CHANNEL_BINDING_MODES:
        raise ValueError(
            f"invalid channel_binding value {value!r}: expected one of "
            + ", ".join(CHANNEL_BINDING_MODES)
        )
    return value


# ---------------------------------------------------------------------------
# MD5


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    """Answer an ``AuthenticationMD5Password`` request.

    Computes ``"md5" + md5_hex(md5_hex(password + user) + salt)``, the payload
    of the ``PasswordMessage`` (without the terminating NUL).

    :param user: The role name sent in the startup message.
    :param password: The password in clear.
    :param salt: The 4 salt bytes of the request.
    :return: 35 ASCII bytes, starting with ``b"md5"``.
    :raises AuthError: If *salt* is not 4 bytes long, or if MD5 is not
        available in this Python (OpenSSL in FIPS mode disables it).
    """
    if len(salt) != 4:
        raise AuthError(f"AuthenticationMD5Password salt must be 4 bytes, got {len(salt)}")
    secret = password.encode("utf-8", "surrogateescape") + user.encode("utf-8")
    try:
        inner = hashlib.md5(secret).hexdigest()
        outer = hashlib.md5(inner.encode("ascii") + bytes(salt)).hexdigest()
    except (AttributeError, ValueError) as exc:
        # FIPS builds either lack hashlib.md5 or raise ValueError when it is used.
        raise AuthError(
            "the server requested MD5 password authentication, but MD5 is not "
            "available in this Python (is OpenSSL in FIPS mode?); use SCRAM-SHA-256"
        ) from exc
    return b"md5" + outer.encode("ascii")


# ---------------------------------------------------------------------------
# tls-server-end-point (RFC 5929 section 4.1) from a DER certificate

_UPGRADED_TO_SHA256 = frozenset({"md5", "sha1"})

# signatureAlgorithm OID -> hash it signs with. Algorithms without a separate
# hash (Ed25519 1.3.101.112, Ed448 1.3.101.113) are deliberately absent.
_SIGNATURE_HASHES: Final[dict[str, str]] = {
    "1.2.840.113549.1.1.4": "md5",  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "sha1",  # sha1WithRSAEncryption
    "1.3.14.3.2.29": "sha1",  # sha1WithRSASignature (OIW, obsolete)
    "1.2.840.113549.1.1.14": "sha224",  # sha224WithRSAEncryption
    "1.2.840.113549.1.1.11": "sha256",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "sha384",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": "sha512",  # sha512WithRSAEncryption
    "1.2.840.10045.4.1": "sha1",  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.1": "sha224",  # ecdsa-with-SHA224
    "1.2.840.10045.4.3.2": "sha256",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": "sha384",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": "sha512",  # ecdsa-with-SHA512
    "1.2.840.10040.4.3": "sha1",  # dsa-with-sha1
    "2.16.840.1.101.3.4.3.1": "sha224",  # dsa-with-sha224
    "2.16.840.1.101.3.4.3.2": "sha256",  # dsa-with-sha256
    "2.16.840.1.101.3.4.3.3": "sha384",  # dsa-with-sha384
    "2.16.840.1.101.3.4.3.4": "sha512",  # dsa-with-sha512
    "2.16.840.1.101.3.4.3.9": "sha3_224",  # ecdsa-with-sha3-224
    "2.16.840.1.101.3.4.3.10": "sha3_256",
    "2.16.840.1.101.3.4.3.11": "sha3_384",
    "2.16.840.1.101.3.4.3.12": "sha3_512",
    "2.16.840.1.101.3.4.3.13": "sha3_224",  # RSASSA-PKCS1-v1_5 with sha3-224
    "2.16.840.1.101.3.4.3.14": "sha3_256",
    "2.16.840.1.101.3.4.3.15": "sha3_384",
    "2.16.840.1.101.3.4.3.16": "sha3_512",
}

_RSASSA_PSS: Final = "1.2.840.113549.1.1.10"

# Hash algorithm OIDs, for the hashAlgorithm field of RSASSA-PSS-params.
_HASH_OIDS: Final[dict[str, str]] = {
    "1.2.840.113549.2.5": "md5",
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.7": "sha3_224",
    "2.16.840.1.101.3.4.2.8": "sha3_256",
    "2.16.840.1.101.3.4.2.9": "sha3_384",
    "2.16.840.1.101.3.4.2.10": "sha3_512",
}

_DER_SEQUENCE = 0x30
_DER_OID = 0x06
_DER_CONTEXT_0 = 0xA0  # [0] EXPLICIT, constructed
_MAX_OID_BYTES = 64


class _DerError(ValueError):
    pass


def _der_element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read the DER element at *pos*; return (tag, contents start, contents end)."""
    if pos + 2 > end:
        raise _DerError("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _DerError("multi-byte tags do not occur in the fields we read")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        # 0 would be BER's indefinite length; certificates are far below 4 GiB.
        if count == 0 or count > 4 or pos + count > end:
            raise _DerError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if length > end - pos:
        raise _DerError("element overruns its container")
    return tag, pos, pos + length


def _decode_oid(body: bytes) -> str:
    """Dotted form of a DER OBJECT IDENTIFIER's contents."""
    if not body or len(body) > _MAX_OID_BYTES or body[-1] & 0x80:
        raise _DerError("bad OID")
    arcs: list[int] = []
    value = 0
    starting = True
    for byte in body:
        if starting and byte == 0x80:
            raise _DerError("non-minimal OID arc")
        value = (value << 7) | (byte & 0x7F)
        starting = not byte & 0x80
        if starting:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _algorithm_identifier(data: bytes, start: int, end: int) -> tuple[str, int, int]:
    """Parse the AlgorithmIdentifier spanning [start, end) of *data*.

    :return: (algorithm OID, parameters start, parameters end).
    """
    tag, oid_start, oid_end = _der_element(data, start, end)
    if tag != _DER_OID:
        raise _DerError("AlgorithmIdentifier does not start with an OID")
    return _decode_oid(data[oid_start:oid_end]), oid_end, end


def _pss_hash(data: bytes, start: int, end: int) -> str | None:
    """Hash named by RSASSA-PSS-params in [start, end) (RFC 4055 section 3.1)."""
    try:
        tag, pos, params_end = _der_element(data, start, end)
        if tag != _DER_SEQUENCE:
            raise _DerError("RSASSA-PSS-params is not a SEQUENCE")
        while pos < params_end:
            tag, inner_start, inner_end = _der_element(data, pos, params_end)
            if tag == _DER_CONTEXT_0:
                tag, alg_start, alg_end = _der_element(data, inner_start, inner_end)
                if tag != _DER_SEQUENCE:
                    raise _DerError("hashAlgorithm is not an AlgorithmIdentifier")
                oid, _, _ = _algorithm_identifier(data, alg_start, alg_end)
                return _HASH_OIDS.get(oid)  # an unknown hash: no binding
            pos = inner_end
        return "sha1"  # hashAlgorithm absent: the ASN.1 DEFAULT is sha1
    except _DerError:
        # A PSS certificate whose parameters we cannot read: RFC 5929 leaves no
        # better choice than its own fallback, SHA-256.
        return "sha256"


def certificate_hash_name(certificate: bytes | bytearray | memoryview) -> str | None:
    """Name the hash ``tls-server-end-point`` uses for *certificate*.

    That is the hash of the certificate's signature algorithm, except that
    MD5 and SHA-1 become SHA-256 (RFC 5929 section 4.1). For RSASSA-PSS the
    hash comes from the algorithm parameters (SHA-256 if they cannot be read).

    :param certificate: The server certificate, DER encoded.
    :return: A :mod:`hashlib` name such as ``"sha256"``, or None when channel
        binding is impossible with this certificate: Ed25519 and Ed448 (no
        separate hash), unknown algorithms, or bytes that are not a
        certificate.
    """
    data = bytes(certificate)
    try:
        tag, start, end = _der_element(data, 0, len(data))
        if tag != _DER_SEQUENCE or end != len(data):
            return None
        # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        tag, _, tbs_end = _der_element(data, start, end)
        if tag != _DER_SEQUENCE:
            return None
        tag, alg_start, alg_end = _der_element(data, tbs_end, end)
        if tag != _DER_SEQUENCE:
            return None
        oid, params_start, params_end = _algorithm_identifier(data, alg_start, alg_end)
    except _DerError:
        return None
    if oid == _RSASSA_PSS:
        name = _pss_hash(data, params_start, params_end)
    else:
        name = _SIGNATURE_HASHES.get(oid)
    if name in _UPGRADED_TO_SHA256:
        return "sha256"
    return name


def tls_server_end_point(certificate: bytes | bytearray | memoryview) -> bytes:
    """Compute the ``tls-server-end-point`` channel binding data (RFC 5929).

    :param certificate: The server certificate, DER encoded (what
        ``SSLObject.getpeercert(binary_form=True)`` returns).
    :return: The hash of the certificate, with the hash chosen by
        :func:`certificate_hash_name`.
    :raises AuthError: If the certificate allows no channel binding.
    """
    name = certificate_hash_name(certificate)
    if name is None:
        raise AuthError(
            "cannot compute tls-server-end-point channel binding: the server "
            "certificate's signature algorithm has no usable hash (e.g. Ed25519) "
            "or the certificate could not be read"
        )
    return hashlib.new(name, bytes(certificate)).digest()


# ---------------------------------------------------------------------------
# SCRAM-SHA-256 (RFC 5802, RFC 7677)


def scram_password(password: str | bytes) -> bytes:
    """Prepare *password* for SCRAM the way PostgreSQL does.

    The password is passed through SASLprep (RFC 4013) and encoded as UTF-8.
    When SASLprep refuses it (prohibited characters, invalid UTF-8 in a bytes
    password, empty after mapping), the raw UTF-8 bytes are used instead,
    because that is what PostgreSQL stored when the password was set.

    :param password: The password, as text or as bytes in UTF-8.
    :return: The bytes PBKDF2 is fed with.
    :raises AuthError: If a text password holds lone surrogates that cannot be
        encoded (surrogate-escaped bytes are turned back into those bytes).
    """
    if isinstance(password, (bytes, bytearray, memoryview)):
        raw = bytes(password)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    else:
        text = password
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise AuthError("the password cannot be encoded as UTF-8") from None
    if text.isascii():
        return raw  # SASLprep leaves ASCII alone or rejects it; either way: raw
    try:
        return saslprep(text).encode("utf-8")
    except SaslprepError:
        return raw


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise AuthError(f"SCRAM: {what} is not valid base64") from None


def _is_printable(value: str) -> bool:
    """RFC 5802 ``printable``: %x21-2B / %x2D-7E (visible ASCII except ',')."""
    return all(0x21 <= ord(char) <= 0x7E and char != "," for char in value)


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


class SaslClient(Protocol):
    """What :class:`AuthPolicy` needs from any SASL mechanism client.

    :class:`ScramClient` follows it; a future OAUTHBEARER client would too.
    """

    @property
    def mechanism(self) -> str:
        """The mechanism name sent in ``SASLInitialResponse``."""
        ...

    @property
    def done(self) -> bool:
        """True once the server's final message was received and verified."""
        ...

    @property
    def channel_bound(self) -> bool:
        """True once the exchange completed with channel binding."""
        ...

    def initial_response(self) -> bytes: ...

    def handle_continue(self, data: bytes) -> bytes: ...

    def handle_final(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class _ScramVariant:
    name: str
    hash_name: str
    plus: bool


_SCRAM_VARIANTS: Final[dict[str, _ScramVariant]] = {
    SCRAM_SHA_256_PLUS: _ScramVariant(SCRAM_SHA_256_PLUS, "sha256", True),
    SCRAM_SHA_256: _ScramVariant(SCRAM_SHA_256, "sha256", False),
}

_GS2_BINDING = "p=tls-server-end-point,,"
_CLIENT_NONCE_BYTES = 24

# ScramClient states, in order.
_INITIAL = "initial"
_SENT_FIRST = "sent client-first-message"
_SENT_FINAL = "sent client-final-message"
_DONE = "done"
_FAILED = "failed"


class ScramClient:
    """Client side of one SCRAM-SHA-256 or SCRAM-SHA-256-PLUS exchange.

    The mechanism and the GS2 channel-binding flag are chosen at construction:

    =============  ==========================  ===================================
    channel_bind.  server offers PLUS (TLS)    server offers only SCRAM-SHA-256
    =============  ==========================  ===================================
    disable        SCRAM-SHA-256, ``n,,``      SCRAM-SHA-256, ``n,,``
    prefer         PLUS, ``p=tls-server-...``  ``y,,`` over TLS, ``n,,`` without
    require        PLUS, ``p=tls-server-...``  AuthError
    =============  ==========================  ===================================

    When the certificate allows no binding (Ed25519, unreadable), ``prefer``
    falls back to SCRAM-SHA-256 with ``n,,`` (the client cannot bind, so it
    does not claim it could) and ``require`` fails. A server that offers
    SCRAM-SHA-256-PLUS over a connection without TLS is refused in every
    mode, as libpq does: a real server does not, so TLS was likely stripped.

    Call :meth:`initial_response`, then :meth:`handle_continue` with the
    ``AuthenticationSASLContinue`` payload, then :meth:`handle_final` with the
    ``AuthenticationSASLFinal`` payload. Any error moves the client to a
    failed state in which every call raises :class:`AuthError`.

    :param password: The password, as text or UTF-8 bytes; see
        :func:`scram_password` for the SASLprep rule.
    :param mechanisms: The mechanism names from ``AuthenticationSASL``.
        Unknown ones (``OAUTHBEARER``) are ignored.
    :param channel_binding: ``"disable"``, ``"prefer"`` or ``"require"``.
    :param server_certificate: None when the connection does not use TLS;
        otherwise the server certificate as DER bytes, or a callable returning
        them (called at most once, here, and only when binding is wanted).
    :param max_iterations: The largest iteration count accepted from the
        server; larger counts fail before any hashing.
    :param username: Sent as ``n=``. PostgreSQL ignores it and uses the user
        of the startup message, so the default is empty, as libpq sends.
    :param client_nonce: For tests only: a fixed client nonce (printable
        ASCII without commas). By default 24 bytes from :mod:`secrets`,
        base64 encoded.
    :raises AuthError: If no offered mechanism fits *channel_binding* and the
        TLS state.
    :raises ValueError: For a bad *channel_binding*, *max_iterations* or
        *client_nonce*.
    """

    __slots__ = (
        "_cbind_data",
        "_client_first_bare",
        "_gs2_header",
        "_max_iterations",
        "_nonce",
        "_password",
        "_server_signature",
        "_state",
        "_variant",
    )

    def __init__(
        self,
        password: str | bytes,
        mechanisms: Iterable[str],
        *,
        channel_binding: str = "prefer",
        server_certificate: ServerCertificate = None,
        max_iterations: int = DEFAULT_SCRAM_MAX_ITERATIONS,
        username: str = "",
        client_nonce: str | None = None,
    ) -> None:
        _check_channel_binding(channel_binding)
        if isinstance(mechanisms, str):
            raise TypeError("mechanisms must be a sequence of names, not one string")
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
            raise TypeError("max_iterations must be an int")
        if max_iterations < 1:
            raise ValueError("max_iterations must be at least 1")
        if client_nonce is None:
            client_nonce = _b64encode(secrets.token_bytes(_CLIENT_NONCE_BYTES))
        elif not client_nonce or not _is_printable(client_nonce):
            raise ValueError("client_nonce must be non-empty printable ASCII without ','")

        self._state = _FAILED  # until construction succeeds
        self._max_iterations = max_iterations
        self._nonce = client_nonce
        self._server_signature = b""
        self._variant, self._gs2_header, self._cbind_data = self._choose(
            list(mechanisms), channel_binding, server_certificate
        )
        self._password: bytes | None = scram_password(password)
        self._client_first_bare = f"n={_saslname(username)},r={client_nonce}"
        self._state = _INITIAL

    @staticmethod
    def _choose(
        offered: list[str], channel_binding: str, certificate: ServerCertificate
    ) -> tuple[_ScramVariant, str, bytes]:
        """Pick (variant, GS2 header, channel binding data); see the class table."""
        tls = certificate is not None
        plus_offered = SCRAM_SHA_256_PLUS in offered
        plain_offered = SCRAM_SHA_256 in offered
        if plus_offered and not tls:
            raise AuthError(
                "server offered SCRAM-SHA-256-PLUS over a connection without TLS; "
                "refusing (was TLS stripped by something in between?)"
            )
        binding: bytes | None = None
        if tls and channel_binding != "disable":
            der = certificate() if callable(certificate) else certificate
            if der is not None and certificate_hash_name(der) is not None:
                binding = tls_server_end_point(der)

        if channel_binding == "require":
            if not tls:
                raise AuthError("channel_binding=require, but the connection does not use TLS")
            if not plus_offered:
                raise AuthError(
                    "channel_binding=require, but the server did not offer "
                    "SCRAM-SHA-256-PLUS (offered: " + _names(offered) + ")"
                )
            if binding is None:
                raise AuthError(
                    "channel_binding=require, but the server certificate allows no "
                    "tls-server-end-point binding (signature algorithm without a "
                    "usable hash, e.g. Ed25519, or no certificate)"
                )
        if binding is not None and plus_offered:
            return _SCRAM_VARIANTS[SCRAM_SHA_256_PLUS], _GS2_BINDING, binding
        if not plain_offered:
            raise AuthError(
                "none of the server's SASL mechanisms can be used with "
                f"channel_binding={channel_binding} (offered: {_names(offered)})"
            )
        # "y": we could bind but the server did not offer it. A server that does
        # support PLUS then knows the list was tampered with and refuses.
        flag = "y,," if binding is not None else "n,,"
        return _SCRAM_VARIANTS[SCRAM_SHA_256], flag, b""

    # -- public state --

    @property
    def mechanism(self) -> str:
        """The chosen mechanism, for ``SASLInitialResponse``."""
        return self._variant.name

    @property
    def done(self) -> bool:
        """True once :meth:`handle_final` verified the server's signature."""
        return self._state == _DONE

    @property
    def channel_bound(self) -> bool:
        """True once an exchange with channel binding (``-PLUS``) completed."""
        return self._state == _DONE and self._variant.plus

    def __repr__(self) -> str:
        return f"<ScramClient {self._variant.name} state={self._state!r}>"

    # -- the exchange --

    def _expect(self, state: str, what: str) -> None:
        if self._state != state:
            current = self._state
            self._state = _FAILED
            raise AuthError(f"SCRAM: unexpected {what} (exchange state: {current})")

    def initial_response(self) -> bytes:
        """Build the client-first-message.

        :return: The GS2 header followed by ``n=<user>,r=<client nonce>``, the
            data of ``SASLInitialResponse``.
        :raises AuthError: If called twice or after a failure.
        """
        self._expect(_INITIAL, "call to initial_response()")
        self._state = _SENT_FIRST
        return (self._gs2_header + self._client_first_bare).encode("utf-8")

    def handle_continue(self, data: bytes) -> bytes:
        """Check the server-first-message and build the client-final-message.

        :param data: The payload of ``AuthenticationSASLContinue``.
        :return: The data of ``SASLResponse``: ``c=...,r=...,p=<proof>``.
        :raises AuthError: If the message is out of order or malformed, the
            server nonce does not extend ours, the salt is not base64, or the
            iteration count is not an integer in ``1..max_iterations``.
        """
        self._expect(_SENT_FIRST, "AuthenticationSASLContinue")
        try:
            return self._client_final(bytes(data))
        except BaseException:
            self._state = _FAILED
            self._password = None
            raise

    def _client_final(self, data: bytes) -> bytes:
        try:
            server_first = data.decode("ascii")
        except UnicodeDecodeError:
            raise AuthError("SCRAM: server-first-message is not ASCII") from None
        fields = server_first.split(",")
        if fields[0].startswith("m="):
            raise AuthError("SCRAM: server requires an extension this client does not support")
        if len(fields) != 3 or [f[:2] for f in fields] != ["r=", "s=", "i="]:
            raise AuthError("SCRAM: malformed server-first-message (expected r=,s=,i=)")
        nonce, salt_b64, iterations_text = (f[2:] for f in fields)

        if not _is_printable(nonce):
            raise AuthError("SCRAM: server nonce contains invalid characters")
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise AuthError("SCRAM: server nonce does not extend the client nonce")
        salt = _b64decode(salt_b64, "salt")
        if not salt:
            raise AuthError("SCRAM: salt is empty")
        # ASCII digits only (int() would also take '+1', ' 1', '1_0', Unicode digits);
        # the length bound keeps int() trivial and comfortably above any real cap.
        if (
            not (iterations_text.isascii() and iterations_text.isdigit())
            or len(iterations_text) > 12
        ):
            raise AuthError("SCRAM: iteration count is not a decimal integer")
        iterations = int(iterations_text)
        if iterations < 1:
            raise AuthError("SCRAM: iteration count must be at least 1")
        if iterations > self._max_iterations:
            raise AuthError(
                f"SCRAM: server asked for {iterations} iterations, more than the "
                f"allowed maximum of {self._max_iterations}"
            )

        password = self._password
        if password is None:  # pragma: no cover - dropped only on failure, which is final
            raise AuthError("SCRAM: exchange already used")
        hash_name = self._variant.hash_name
        salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
        self._password = None
        client_key = hmac.digest(salted, b"Client Key", hash_name)
        stored_key = hashlib.new(hash_name, client_key).digest()
        server_key = hmac.digest(salted, b"Server Key", hash_name)

        channel = _b64encode(self._gs2_header.encode("ascii") + self._cbind_data)
        without_proof = f"c={channel},r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        client_signature = hmac.digest(stored_key, auth_message, hash_name)
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature, strict=True))
        self._server_signature = hmac.digest(server_key, auth_message, hash_name)
        self._state = _SENT_FINAL
        return f"{without_proof},p={_b64encode(proof)}".encode("ascii")

    def handle_final(self, data: bytes) -> None:
        """Verify the server-final-message.

        :param data: The payload of ``AuthenticationSASLFinal``.
        :raises AuthError: If the message is out of order or malformed, if the
            server reports an error (``e=``; its name is in
            :attr:`AuthError.server_error`), or if the server signature does
            not match: then the server does not know the password.
        """
        self._expect(_SENT_FINAL, "AuthenticationSASLFinal")
        self._state = _FAILED  # until proven otherwise
        try:
            server_final = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError("SCRAM: server-final-message is not UTF-8") from None
        if server_final.startswith("e="):
            name = server_final[2:].split(",", 1)[0]
            raise AuthError(
                f"SCRAM: server reported authentication error {name[:100]!r}",
                server_error=name,
            )
        if not server_final.startswith("v=") or "," in server_final:
            raise AuthError("SCRAM: malformed server-final-message (expected v=)")
        signature = _b64decode(server_final[2:], "server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            raise AuthError(
                "SCRAM: server signature does not match; the server did not prove "
                "that it knows the password"
            )
        self._state = _DONE


def _names(names: Iterable[str]) -> str:
    """Server-supplied names, quoted and bounded, for an error message."""
    shown = [repr(name[:64]) for name in list(names)[:10]]
    return ", ".join(shown) if shown else "none"


# ---------------------------------------------------------------------------
# require_auth and channel_binding (libpq 16+ semantics)


@dataclass(frozen=True)
class RequireAuth:
    """A parsed ``require_auth`` setting.

    :ivar text: The setting as given, for error messages.
    :ivar allowed: The methods the server may use (``none`` excluded).
    :ivar auth_required: True when the server must complete some
        authentication exchange before ``AuthenticationOk``.
    :ivar negated: True for a list of ``!method`` entries.
    """

    text: str
    allowed: frozenset[str]
    auth_required: bool
    negated: bool


def parse_require_auth(value: str | None) -> RequireAuth | None:
    """Parse a ``require_auth`` setting the way libpq 16+ does.

    A comma-separated list of methods (``password``, ``md5``, ``gss``,
    ``sspi``, ``scram-sha-256``, ``oauth``, ``none``), all plain or all
    negated with ``!``. A plain list names the methods the server may use,
    and the server must use one of them unless ``none`` is listed. A negated
    list names the methods it may not use; ``!none`` then also requires that
    it use some method. Names are case-sensitive and must not repeat.

    :param value: The setting; None or ``""`` means no requirement.
    :return: The parsed setting, or None when there is no requirement.
    :raises ValueError: For an unknown or repeated method, an empty entry, or
        a mix of plain and negated entries.
    """
    if not value:
        return None
    entries = value.split(",")
    negated = entries[0].startswith("!")
    seen: set[str] = set()
    for entry in entries:
        is_negated = entry.startswith("!")
        method = entry[1:] if is_negated else entry
        if is_negated != negated:
            if is_negated:
                raise ValueError(
                    f"require_auth: negated method {entry!r} cannot be mixed with plain methods"
                )
            raise ValueError(f"require_auth: method {entry!r} cannot be mixed with negated methods")
        if method not in REQUIRE_AUTH_METHODS:
            raise ValueError(
                f"require_auth: unknown authentication method {method!r} (expected "
                + ", ".join(sorted(REQUIRE_AUTH_METHODS))
                + ")"
            )
        if method in seen:
            raise ValueError(f"require_auth: method {method!r} is listed more than once")
        seen.add(method)
    named = seen - {"none"}
    if negated:
        allowed = frozenset(REQUIRE_AUTH_METHODS - {"none"} - named)
        auth_required = "none" in seen
    else:
        allowed = frozenset(named)
        auth_required = "none" not in seen
    return RequireAuth(value, allowed, auth_required, negated)


# Request code -> (require_auth method, wording for error messages).
_REQUEST_METHODS: Final[dict[int, tuple[str, str]]] = {
    AUTHENTICATION_CLEARTEXT_PASSWORD: ("password", "a cleartext password"),
    AUTHENTICATION_MD5_PASSWORD: ("md5", "an MD5-hashed password"),
    AUTHENTICATION_GSS: ("gss", "GSSAPI authentication"),
    AUTHENTICATION_SSPI: ("sspi", "SSPI authentication"),
}

_REQUEST_NAMES: Final[dict[int, str]] = {
    AUTHENTICATION_OK: "AuthenticationOk",
    AUTHENTICATION_KERBEROS_V5: "AuthenticationKerberosV5",
    AUTHENTICATION_CLEARTEXT_PASSWORD: "AuthenticationCleartextPassword",
    AUTHENTICATION_MD5_PASSWORD: "AuthenticationMD5Password",
    AUTHENTICATION_GSS: "AuthenticationGSS",
    AUTHENTICATION_GSS_CONTINUE: "AuthenticationGSSContinue",
    AUTHENTICATION_SSPI: "AuthenticationSSPI",
    AUTHENTICATION_SASL: "AuthenticationSASL",
    AUTHENTICATION_SASL_CONTINUE: "AuthenticationSASLContinue",
    AUTHENTICATION_SASL_FINAL: "AuthenticationSASLFinal",
}


class AuthPolicy:
    """Decides, request by request, whether the client may answer the server.

    Holds one connection attempt's ``require_auth`` and ``channel_binding``
    settings and what has happened so far. Feed it every
    ``Authentication*`` request with :meth:`check_request` *before* answering
    it; the module docstring shows the whole loop.

    :param require_auth: libpq's ``require_auth`` setting (see
        :func:`parse_require_auth`), or None.
    :param channel_binding: ``"disable"``, ``"prefer"`` (libpq's default) or
        ``"require"``. With ``require``, only a SASL exchange with channel
        binding may authenticate the connection: cleartext, MD5, GSS, SSPI
        and no authentication at all are refused.
    :raises ValueError: For an invalid setting.
    """

    def __init__(self, require_auth: str | None = None, channel_binding: str = "prefer") -> None:
        self.require_auth: RequireAuth | None = parse_require_auth(require_auth)
        self.channel_binding: str = _check_channel_binding(channel_binding)
        self._exchange: str | None = None  # "password", "md5", "gss", "sspi" or "sasl"
        self._client_finished = False
        self._sasl: SaslClient | None = None
        self._ok = False

    def __repr__(self) -> str:
        text = self.require_auth.text if self.require_auth else None
        return (
            f"<AuthPolicy require_auth={text!r} channel_binding={self.channel_binding!r} "
            f"exchange={self._exchange!r}>"
        )

    # -- helpers --

    def _forbid(self, what: str) -> AuthError:
        assert self.require_auth is not None
        return AuthError(
            f"server requested {what}, but require_auth={self.require_auth.text} forbids it"
        )

    def _method_allowed(self, method: str) -> bool:
        return self.require_auth is None or method in self.require_auth.allowed

    def sasl_mechanisms(self, offered: Iterable[str]) -> list[str]:
        """Keep the offered SASL mechanisms that ``require_auth`` allows.

        :param offered: Mechanism names from ``AuthenticationSASL``.
        :return: The known mechanisms whose method is allowed, in server order.
        """
        return [
            name
            for name in offered
            if name in SASL_MECHANISM_METHODS and self._method_allowed(SASL_MECHANISM_METHODS[name])
        ]

    # -- the checks --

    def check_request(self, code: int, mechanisms: Sequence[str] = ()) -> None:
        """Check one ``Authentication*`` request before the client answers it.

        For ``AuthenticationOk`` this runs :meth:`check_ok`. For a request that
        asks for a password, it also records that the client's side of the
        exchange is complete once it sends one.

        :param code: The request code (``AUTHENTICATION_*``).
        :param mechanisms: For ``AuthenticationSASL``, the mechanisms offered.
        :raises AuthError: If the request is forbidden by ``require_auth`` or
            ``channel_binding=require``, arrives out of order, or is of a kind
            this client does not support.
        """
        if self._ok:
            raise AuthError(f"server sent {_request_name(code)} after AuthenticationOk")
        if code == AUTHENTICATION_OK:
            self.check_ok()
            return
        if code == AUTHENTICATION_SASL_CONTINUE or code == AUTHENTICATION_SASL_FINAL:
            if self._exchange != "sasl" or self._sasl is None:
                raise AuthError(
                    f"server sent {_request_name(code)} without a SASL exchange in progress"
                )
            return
        if code == AUTHENTICATION_GSS_CONTINUE:
            if self._exchange not in ("gss", "sspi"):
                raise AuthError(
                    "server sent AuthenticationGSSContinue without a GSSAPI or SSPI "
                    "exchange in progress"
                )
            return
        if code == AUTHENTICATION_SASL:
            what = "SASL authentication (mechanisms: " + _names(mechanisms) + ")"
            method = "sasl"
        elif code in _REQUEST_METHODS:
            method, what = _REQUEST_METHODS[code]
        elif code == AUTHENTICATION_KERBEROS_V5:
            raise AuthError("server requested Kerberos V5 authentication, which is not supported")
        else:
            raise AuthError(f"server requested unknown authentication method {code}")

        if self._exchange is not None:
            raise AuthError(
                f"server requested {what} after the {self._exchange} exchange had begun"
            )
        # require_auth first, as libpq does, so its message wins when both refuse.
        if method == "sasl":
            if not self.sasl_mechanisms(mechanisms) and self.require_auth is not None:
                raise self._forbid(what)
        elif not self._method_allowed(method):
            raise self._forbid(what)
        if self.channel_binding == "require" and method != "sasl":
            raise AuthError(
                f"channel_binding=require, but the server requested {what}, "
                "which cannot use channel binding"
            )
        self._exchange = method
        if method in ("password", "md5"):
            # The next message is the answer; nothing is left for the client to do.
            self._client_finished = True

    def start_scram(
        self,
        password: str | bytes,
        mechanisms: Iterable[str],
        *,
        server_certificate: ServerCertificate = None,
        max_iterations: int = DEFAULT_SCRAM_MAX_ITERATIONS,
        client_nonce: str | None = None,
    ) -> ScramClient:
        """Create the :class:`ScramClient` for an accepted ``AuthenticationSASL``.

        Only mechanisms ``require_auth`` allows are considered, and the
        policy's ``channel_binding`` is applied. The client is registered, so
        that :meth:`check_ok` can tell whether it finished.

        :param password: The password.
        :param mechanisms: The mechanisms from ``AuthenticationSASL``.
        :param server_certificate: See :class:`ScramClient`.
        :param max_iterations: See :class:`ScramClient`.
        :param client_nonce: For tests only; see :class:`ScramClient`.
        :return: The client, ready for :meth:`ScramClient.initial_response`.
        :raises AuthError: If no mechanism can be used.
        :raises RuntimeError: If :meth:`check_request` did not accept an
            ``AuthenticationSASL`` first, or a SASL client was already started.
        """
        self._expect_sasl_start()
        client = ScramClient(
            password,
            self.sasl_mechanisms(mechanisms),
            channel_binding=self.channel_binding,
            server_certificate=server_certificate,
            max_iterations=max_iterations,
            client_nonce=client_nonce,
        )
        self.sasl_started(client)
        return client

    def _expect_sasl_start(self) -> None:
        if self._exchange != "sasl" or self._sasl is not None:
            raise RuntimeError(
                "a SASL client can only be started once, after check_request() "
                "accepted AuthenticationSASL"
            )

    def sasl_started(self, client: SaslClient) -> None:
        """Register a SASL client built by the caller (for mechanisms other
        than SCRAM; :meth:`start_scram` calls this itself).

        :param client: The client, before its first message is sent.
        :raises AuthError: If ``require_auth`` forbids its mechanism, or
            ``channel_binding=require`` and the mechanism does not bind.
        :raises RuntimeError: As for :meth:`start_scram`.
        """
        self._expect_sasl_start()
        mechanism = client.mechanism
        method = SASL_MECHANISM_METHODS.get(mechanism)
        if method is None or not self._method_allowed(method):
            if self.require_auth is not None:
                raise self._forbid(f"SASL mechanism {mechanism!r}")
            raise AuthError(f"SASL mechanism {mechanism!r} is not supported")
        # RFC 5056: a "-PLUS" mechanism is the channel-binding variant.
        if self.channel_binding == "require" and not mechanism.endswith("-PLUS"):
            raise AuthError(
                f"channel_binding=require, but SASL mechanism {mechanism!r} does not bind"
            )
        self._sasl = client

    def mark_client_finished(self) -> None:
        """Record that the client completed its side of a GSSAPI/SSPI exchange
        (cleartext, MD5 and SASL are tracked without help)."""
        if self._exchange in ("gss", "sspi"):
            self._client_finished = True

    def check_ok(self) -> None:
        """Decide whether ``AuthenticationOk`` may be accepted.

        :raises AuthError: If it came twice; if a SASL exchange was started
            and not verified to the end; if ``require_auth`` requires an
            authentication exchange and none was completed; or if
            ``channel_binding=require`` and no channel-bound SASL exchange
            completed.
        """
        if self._ok:
            raise AuthError("server sent AuthenticationOk twice")
        if self._exchange == "sasl":
            if self._sasl is None or not self._sasl.done:
                raise AuthError(
                    "server sent AuthenticationOk before the SASL exchange finished; "
                    "it never proved that it knows the password"
                )
            self._client_finished = True
        policy = self.require_auth
        if policy is not None and policy.auth_required and not self._client_finished:
            if self._exchange is None:
                reason = "the server did not ask the client to authenticate"
            else:
                reason = f"the {self._exchange} exchange was not completed"
            raise AuthError(f"require_auth={policy.text} requires authentication, but {reason}")
        if self.channel_binding == "require" and (
            self._sasl is None or not self._sasl.channel_bound
        ):
            raise AuthError(
                "channel_binding=require, but the server authenticated the client "
                "without channel binding"
            )
        self._ok = True


def _request_name(code: int) -> str:
    return _REQUEST_NAMES.get(code, f"authentication request {code}")
