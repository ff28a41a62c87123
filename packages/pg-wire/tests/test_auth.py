"""Tests for pg_wire.auth and pg_wire._saslprep (no server needed).

The SCRAM exchange is checked against the RFC 7677 test vector and against a
small server side written here, independently of the client code. Channel
binding uses certificates made at test time with ``cryptography`` (test-only
dependency) and hand-built DER for algorithms it will not sign with.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from pg_wire import auth
from pg_wire._saslprep import SaslprepError, saslprep
from pg_wire.auth import (
    AUTHENTICATION_CLEARTEXT_PASSWORD,
    AUTHENTICATION_GSS,
    AUTHENTICATION_GSS_CONTINUE,
    AUTHENTICATION_KERBEROS_V5,
    AUTHENTICATION_MD5_PASSWORD,
    AUTHENTICATION_OK,
    AUTHENTICATION_SASL,
    AUTHENTICATION_SASL_CONTINUE,
    AUTHENTICATION_SASL_FINAL,
    AUTHENTICATION_SSPI,
    SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
    AuthError,
    AuthPolicy,
    ScramClient,
    certificate_hash_name,
    md5_password,
    parse_require_auth,
    scram_password,
    tls_server_end_point,
)

BOTH = [SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
PLAIN = [SCRAM_SHA_256]
SENTINEL = "S3cr3t-Sentinel-\u03a9"

# RFC 7677 section 3.
RFC_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


# ---------------------------------------------------------------------------
# helpers


def rfc_client(**kwargs: object) -> ScramClient:
    kwargs.setdefault("username", "user")
    kwargs.setdefault("client_nonce", RFC_NONCE)
    return ScramClient("pencil", PLAIN, **kwargs)  # type: ignore[arg-type]


def server_first_with(**fields: str) -> bytes:
    values = {"r": RFC_NONCE + "srv", "s": "W22ZaJ0SNY7soEsUEjb6gQ==", "i": "4096"}
    values.update(fields)
    return ",".join(f"{k}={v}" for k, v in values.items()).encode()


class FakeScramServer:
    """The server half of SCRAM-SHA-256, written for these tests only."""

    def __init__(
        self,
        password: bytes,
        *,
        cbind_data: bytes = b"",
        salt: bytes = b"0123456789abcdef",
        iterations: int = 4096,
        supports_plus: bool = True,
    ) -> None:
        salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        self.stored_key = hashlib.sha256(client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.salt = salt
        self.iterations = iterations
        self.cbind_data = cbind_data
        self.supports_plus = supports_plus

    def first(self, client_first: bytes) -> bytes:
        text = client_first.decode()
        flag, authzid, bare = text.split(",", 2)
        assert authzid == ""
        self.gs2_header = f"{flag},{authzid},"
        if flag == "y" and self.supports_plus:
            raise AssertionError("client claims the server cannot bind, but it can")
        self.bare = bare
        user, nonce = bare.split(",")
        assert user.startswith("n=") and nonce.startswith("r=")
        self.nonce = nonce[2:] + "S3rv3rN0nc3"
        self.server_first = (
            f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={self.iterations}"
        )
        return self.server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        without_proof, proof_b64 = client_final.decode().rsplit(",p=", 1)
        channel, nonce = without_proof.split(",")
        assert nonce == f"r={self.nonce}"
        expected = self.gs2_header.encode()
        if self.gs2_header.startswith("p="):
            expected += self.cbind_data
        assert base64.b64decode(channel[2:]) == expected
        auth_message = f"{self.bare},{self.server_first},{without_proof}".encode()
        client_signature = hmac.new(self.stored_key, auth_message, "sha256").digest()
        proof = base64.b64decode(proof_b64)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        assert hashlib.sha256(client_key).digest() == self.stored_key, "bad client proof"
        signature = hmac.new(self.server_key, auth_message, "sha256").digest()
        return b"v=" + base64.b64encode(signature)


def run_exchange(client: ScramClient, server: FakeScramServer) -> None:
    server_first = server.first(client.initial_response())
    client.handle_final(server.final(client.handle_continue(server_first)))


# -- certificates --

_NOW = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def make_cert(key: object, algorithm: hashes.HashAlgorithm | None, **sign: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pg-test")])
    public = key.public_key()  # type: ignore[attr-defined]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(12345)
        .not_valid_before(_NOW)
        .not_valid_after(_NOW + datetime.timedelta(days=1))
    )
    cert = builder.sign(key, algorithm, **sign)  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def cert_sha256(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return make_cert(rsa_key, hashes.SHA256())


@pytest.fixture(scope="module")
def cert_sha384() -> bytes:
    return make_cert(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384())


@pytest.fixture(scope="module")
def cert_ed25519() -> bytes:
    return make_cert(ed25519.Ed25519PrivateKey.generate(), None)


def fingerprint(der: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    return x509.load_der_x509_certificate(der).fingerprint(algorithm)


# -- hand-built DER --


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def fake_cert(algorithm_oid: str, params: bytes = b"") -> bytes:
    """A DER structure shaped like a Certificate, enough for the hash lookup."""
    tbs = der(0x30, der(0x02, b"\x01"))
    alg = der(0x30, der_oid(algorithm_oid) + params)
    return der(0x30, tbs + alg + der(0x03, b"\x00\x01"))


def pss_params(hash_oid: str | None) -> bytes:
    body = b""
    if hash_oid is not None:
        body = der(0xA0, der(0x30, der_oid(hash_oid) + der(0x05, b"")))
    return der(0x30, body + der(0xA2, der(0x02, b"\x20")))


# ---------------------------------------------------------------------------
# constants and layering


def test_request_codes() -> None:
    assert [
        AUTHENTICATION_OK,
        AUTHENTICATION_KERBEROS_V5,
        AUTHENTICATION_CLEARTEXT_PASSWORD,
        AUTHENTICATION_MD5_PASSWORD,
        AUTHENTICATION_GSS,
        AUTHENTICATION_GSS_CONTINUE,
        AUTHENTICATION_SSPI,
        AUTHENTICATION_SASL,
        AUTHENTICATION_SASL_CONTINUE,
        AUTHENTICATION_SASL_FINAL,
    ] == [0, 2, 3, 5, 7, 8, 9, 10, 11, 12]


def test_public_names_exist() -> None:
    for name in auth.__all__:
        assert hasattr(auth, name), name


def test_no_io_modules_imported() -> None:
    src = os.path.dirname(os.path.dirname(auth.__file__))
    code = (
        "import sys, pg_wire.auth, pg_wire._saslprep; "
        "print(sorted(m for m in ('asyncio', 'socket', 'ssl') if m in sys.modules))"
    )
    # Keep the rest of the path: the package's __init__ needs pg_codecs.
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# MD5


def test_md5_known_answer() -> None:
    # md5("secret" + "postgres") in hex (same as `printf secretpostgres | md5sum`),
    # then md5 of that hex text + the salt bytes.
    inner = hashlib.md5(b"secretpostgres").hexdigest()
    assert inner == "53f48b7c4b76a86ce72276c5755f217d"
    outer = hashlib.md5(inner.encode() + b"\x01\x02\x03\x04").hexdigest()
    result = md5_password("postgres", "secret", b"\x01\x02\x03\x04")
    assert result == b"md5" + outer.encode()
    assert result == b"md5bb41a296aab6baccb36ff243a562abff"
    assert len(result) == 35 and not result.endswith(b"\x00")


def test_md5_non_ascii() -> None:
    inner = hashlib.md5("pässwörd".encode() + "üser".encode()).hexdigest()
    expected = b"md5" + hashlib.md5(inner.encode() + b"abcd").hexdigest().encode()
    assert md5_password("üser", "pässwörd", b"abcd") == expected


@pytest.mark.parametrize("salt", [b"", b"abc", b"abcde"])
def test_md5_bad_salt(salt: bytes) -> None:
    with pytest.raises(AuthError, match="4 bytes"):
        md5_password("u", "p", salt)


def test_md5_unavailable_fips_valueerror(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise ValueError("[digital envelope routines] unsupported")

    monkeypatch.setattr(hashlib, "md5", refuse)
    with pytest.raises(AuthError, match="MD5 is not available") as info:
        md5_password("u", SENTINEL, b"abcd")
    assert SENTINEL not in str(info.value)


def test_md5_unavailable_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(hashlib, "md5")
    with pytest.raises(AuthError, match="FIPS"):
        md5_password("u", "p", b"abcd")


# ---------------------------------------------------------------------------
# SCRAM: the RFC 7677 vector and the happy path


def test_rfc7677_vector() -> None:
    client = rfc_client()
    assert client.mechanism == SCRAM_SHA_256
    assert client.initial_response() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.handle_continue(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    assert not client.done
    client.handle_final(RFC_SERVER_FINAL)
    assert client.done
    assert not client.channel_bound


def test_default_username_is_empty_like_libpq() -> None:
    client = ScramClient("pencil", PLAIN, client_nonce="abc")
    assert client.initial_response() == b"n,,n=,r=abc"


def test_username_is_escaped() -> None:
    client = ScramClient("p", PLAIN, username="a=b,c", client_nonce="abc")
    assert client.initial_response() == b"n,,n=a=3Db=2Cc,r=abc"


def test_non_ascii_username() -> None:
    client = ScramClient("pencil", PLAIN, username="j\u00fcrgen", client_nonce="abc")
    assert client.initial_response() == "n,,n=j\u00fcrgen,r=abc".encode()
    server = FakeScramServer(b"pencil")
    client = ScramClient("pencil", PLAIN, username="j\u00fcrgen")
    run_exchange(client, server)
    assert client.done


def test_default_nonce_is_random_base64_of_24_bytes() -> None:
    firsts = [ScramClient("p", PLAIN).initial_response() for _ in range(2)]
    nonces = [f.split(b",r=")[1] for f in firsts]
    assert nonces[0] != nonces[1]
    for nonce in nonces:
        assert len(base64.b64decode(nonce, validate=True)) == 24


@pytest.mark.parametrize("nonce", ["", "a,b", "caf\u00e9", "tab\there"])
def test_injected_nonce_must_be_printable(nonce: str) -> None:
    with pytest.raises(ValueError):
        ScramClient("p", PLAIN, client_nonce=nonce)


def test_full_exchange_against_fake_server() -> None:
    client = ScramClient("correct horse", PLAIN)
    run_exchange(client, FakeScramServer(b"correct horse"))
    assert client.done


def test_wrong_password_is_rejected_by_fake_server() -> None:
    client = ScramClient("wrong", PLAIN)
    with pytest.raises(AssertionError, match="bad client proof"):
        run_exchange(client, FakeScramServer(b"right"))


def test_mechanisms_as_one_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ScramClient("p", SCRAM_SHA_256)


@pytest.mark.parametrize("bad", [0, -1])
def test_max_iterations_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError):
        ScramClient("p", PLAIN, max_iterations=bad)


def test_invalid_channel_binding_value() -> None:
    with pytest.raises(ValueError, match="channel_binding"):
        ScramClient("p", PLAIN, channel_binding="required")


# ---------------------------------------------------------------------------
# SCRAM: hostile or broken server (RELIABILITY S9)


def continue_fails(server_first: bytes, match: str, **kwargs: object) -> ScramClient:
    client = rfc_client(**kwargs)
    client.initial_response()
    with pytest.raises(AuthError, match=match):
        client.handle_continue(server_first)
    return client


def test_wrong_server_signature() -> None:
    client = rfc_client()
    client.initial_response()
    client.handle_continue(RFC_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(b"\x00" * 32)
    with pytest.raises(AuthError, match="signature does not match"):
        client.handle_final(forged)
    assert not client.done


def test_truncated_server_signature() -> None:
    client = rfc_client()
    client.initial_response()
    client.handle_continue(RFC_SERVER_FIRST)
    with pytest.raises(AuthError, match="signature does not match"):
        client.handle_final(RFC_SERVER_FINAL[:-8] + b"AAAAAAA=")


@pytest.mark.parametrize(
    "nonce",
    [
        "somebodyElsesNonce1234",  # does not start with ours
        RFC_NONCE,  # ours, not extended
        RFC_NONCE[:-1],  # shorter
        "x" + RFC_NONCE + "srv",  # ours, but not as prefix
    ],
)
def test_server_nonce_must_extend_ours(nonce: str) -> None:
    continue_fails(server_first_with(r=nonce), "nonce")


def test_server_nonce_with_unprintable_char() -> None:
    continue_fails(server_first_with(r=RFC_NONCE + "\x7f"), "nonce")


def test_huge_iteration_count_rejected_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pbkdf2(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("PBKDF2 must not run")

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", no_pbkdf2)
    continue_fails(server_first_with(i="1000000000"), "iterations")
    continue_fails(server_first_with(i=str(2**31 - 1)), "iterations")


def test_iteration_cap_is_configurable() -> None:
    continue_fails(RFC_SERVER_FIRST, "more than the allowed maximum of 4095", max_iterations=4095)
    client = rfc_client(max_iterations=4096)
    client.initial_response()
    assert client.handle_continue(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL


def test_default_iteration_cap() -> None:
    assert auth.DEFAULT_SCRAM_MAX_ITERATIONS == 1_000_000
    continue_fails(server_first_with(i="1000001"), "iterations")


@pytest.mark.parametrize(
    "iterations", ["0", "-1", "+5", " 5", "5 ", "1_000", "0x10", "", "abc", "4.5", "9" * 40]
)
def test_bad_iteration_count(iterations: str) -> None:
    continue_fails(server_first_with(i=iterations), "iteration")


@pytest.mark.parametrize("salt", ["!!!!", "abc", "W22ZaJ0SNY7soEsUEjb6gQ=", "W22Z aJ0S", ""])
def test_bad_salt(salt: str) -> None:
    continue_fails(server_first_with(s=salt), "salt")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"r=" + RFC_NONCE.encode() + b"srv,s=W22ZaJ0SNY7soEsUEjb6gQ==",  # no i=
        b"r=" + RFC_NONCE.encode() + b"srv,i=4096",  # no s=
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  # no r=
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,r=" + RFC_NONCE.encode() + b"srv,i=4096",  # order
        RFC_SERVER_FIRST + b",x=extension",
        RFC_SERVER_FIRST + b",",
        b"R=" + RFC_SERVER_FIRST[2:],
    ],
)
def test_malformed_server_first(message: bytes) -> None:
    continue_fails(message, "malformed")


def test_mandatory_extension_refused() -> None:
    continue_fails(b"m=ext," + RFC_SERVER_FIRST, "extension")


def test_non_ascii_server_first() -> None:
    continue_fails(RFC_SERVER_FIRST.replace(b"srv", b"\xc3\xa9") + b"\xff", "ASCII")


def test_server_error_in_final() -> None:
    client = rfc_client()
    client.initial_response()
    client.handle_continue(RFC_SERVER_FIRST)
    with pytest.raises(AuthError, match="invalid-proof") as info:
        client.handle_final(b"e=invalid-proof")
    assert info.value.server_error == "invalid-proof"
    assert not client.done


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"v=",
        b"v=not base64!",
        b"x=" + RFC_SERVER_FINAL[2:],
        RFC_SERVER_FINAL + b",ext=1",
        b"\xff\xfe",
    ],
)
def test_malformed_server_final(message: bytes) -> None:
    client = rfc_client()
    client.initial_response()
    client.handle_continue(RFC_SERVER_FIRST)
    with pytest.raises(AuthError):
        client.handle_final(message)
    assert not client.done


def test_calls_out_of_order() -> None:
    client = rfc_client()
    with pytest.raises(AuthError, match="unexpected"):
        client.handle_continue(RFC_SERVER_FIRST)
    client = rfc_client()
    client.initial_response()
    with pytest.raises(AuthError, match="unexpected"):
        client.handle_final(RFC_SERVER_FINAL)
    client = rfc_client()
    client.initial_response()
    with pytest.raises(AuthError):
        client.initial_response()


def test_continue_twice() -> None:
    client = rfc_client()
    client.initial_response()
    client.handle_continue(RFC_SERVER_FIRST)
    with pytest.raises(AuthError, match="unexpected"):
        client.handle_continue(RFC_SERVER_FIRST)


def test_failure_is_final() -> None:
    client = continue_fails(server_first_with(i="0"), "iteration")
    with pytest.raises(AuthError):
        client.handle_final(RFC_SERVER_FINAL)
    with pytest.raises(AuthError):
        client.handle_continue(RFC_SERVER_FIRST)
    assert not client.done


def test_final_after_success_is_refused() -> None:
    client = rfc_client()
    client.initial_response()
    client.handle_continue(RFC_SERVER_FIRST)
    client.handle_final(RFC_SERVER_FINAL)
    with pytest.raises(AuthError):
        client.handle_final(RFC_SERVER_FINAL)


def test_password_never_in_errors_or_repr() -> None:
    seen: list[str] = []
    for server_first in [RFC_SERVER_FIRST, server_first_with(i="0"), b"junk"]:
        client = ScramClient(SENTINEL, PLAIN, client_nonce=RFC_NONCE)
        seen.append(repr(client))
        client.initial_response()
        try:
            client.handle_continue(server_first)
            client.handle_final(b"v=" + base64.b64encode(b"\x01" * 32))
        except AuthError as exc:
            seen.append(str(exc))
            seen.append(repr(exc))
        seen.append(repr(client))
    joined = "\n".join(seen)
    assert SENTINEL not in joined
    assert "S3cr3t" not in joined


# ---------------------------------------------------------------------------
# SASLprep and the password bytes


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # RFC 4013 section 3 examples.
        ("I\u00adX", "IX"),  # soft hyphen mapped to nothing
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),  # NFKC
        # non-ASCII spaces become U+0020
        ("a\u00a0b", "a b"),
        ("a\u3000b\u2003c", "a b c"),
        ("x\u200by", "x y"),  # U+200B is in C.1.2 for RFC 3454
        ("pa\u200dss", "pass"),  # ZERO WIDTH JOINER: mapped to nothing
        ("caf\u00e9", "caf\u00e9"),
        ("cafe\u0301", "caf\u00e9"),  # NFKC composes
        ("\u05d0\u05d1", "\u05d0\u05d1"),  # RTL only is fine
    ],
)
def test_saslprep(given: str, expected: str) -> None:
    assert saslprep(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "\u0007",  # RFC 4013 example: ASCII control
        "a\u0007b",
        "\u0627\u0031",  # RFC 4013 example: RTL then a digit at the end
        "\u0627a\u0628",  # RTL mixed with LTR
        "a\ue000",  # private use
        "a\ufffe",  # non-character
        "a\u0221",  # unassigned in Unicode 3.2
        "a\u200e",  # LEFT-TO-RIGHT MARK, C.8
        "a\u0340",  # C.8 before normalization (PostgreSQL checks here)
        "a\U000e0001",  # tagging character
        "\u00ad",  # empty after mapping
        "",
    ],
)
def test_saslprep_prohibited(given: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(given)


def test_saslprep_error_does_not_echo_the_string() -> None:
    with pytest.raises(SaslprepError) as info:
        saslprep(SENTINEL + "\u0007")
    assert SENTINEL not in str(info.value)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("pencil", b"pencil"),
        ("I\u00adX", b"IX"),
        ("a\u00a0b", b"a b"),
        ("\u2168", b"IX"),
        ("tab\there", b"tab\there"),  # ASCII control: prohibited, so raw bytes
        ("ctl\u0007\u00e9", "ctl\u0007\u00e9".encode()),  # prohibited: raw UTF-8
        ("a\ue000", "a\ue000".encode()),
        ("\u00ad", "\u00ad".encode()),  # empty after mapping: raw
        (b"I\xc2\xadX", b"IX"),  # bytes in UTF-8 are prepared too
        (b"\xff\xfe", b"\xff\xfe"),  # not UTF-8: raw
        ("\udcff\udcfe", b"\xff\xfe"),  # surrogate-escaped bytes come back as bytes
    ],
)
def test_scram_password(password: str | bytes, expected: bytes) -> None:
    assert scram_password(password) == expected


def test_scram_password_unencodable() -> None:
    with pytest.raises(AuthError, match="UTF-8"):
        scram_password("\ud800")


def test_saslprep_applies_to_scram_exchange() -> None:
    # A server that stored "IX" accepts "I<soft hyphen>X" and the Roman numeral.
    for password in ["I\u00adX", "\u2168", "IX"]:
        client = ScramClient(password, PLAIN)
        run_exchange(client, FakeScramServer(b"IX"))
        assert client.done
    # A prohibited password is used raw, as PostgreSQL stored it.
    client = ScramClient("bad\u0007\u00e9", PLAIN)
    run_exchange(client, FakeScramServer("bad\u0007\u00e9".encode()))
    assert client.done


# ---------------------------------------------------------------------------
# tls-server-end-point


def test_cert_sha256(cert_sha256: bytes) -> None:
    assert certificate_hash_name(cert_sha256) == "sha256"
    assert tls_server_end_point(cert_sha256) == fingerprint(cert_sha256, hashes.SHA256())


def test_cert_sha384(cert_sha384: bytes) -> None:
    assert certificate_hash_name(cert_sha384) == "sha384"
    assert tls_server_end_point(cert_sha384) == fingerprint(cert_sha384, hashes.SHA384())


def test_cert_rsa_sha512(rsa_key: rsa.RSAPrivateKey) -> None:
    cert = make_cert(rsa_key, hashes.SHA512())
    assert tls_server_end_point(memoryview(cert)) == fingerprint(cert, hashes.SHA512())


def test_cert_rsa_pss(rsa_key: rsa.RSAPrivateKey) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    cert = make_cert(rsa_key, hashes.SHA384(), rsa_padding=pss)
    assert certificate_hash_name(cert) == "sha384"
    assert tls_server_end_point(cert) == fingerprint(cert, hashes.SHA384())


def test_cert_sha1_uses_sha256(rsa_key: rsa.RSAPrivateKey) -> None:
    try:
        cert = make_cert(rsa_key, hashes.SHA1())
    except Exception:  # pragma: no cover - some OpenSSL builds refuse SHA-1 signing
        cert = fake_cert("1.2.840.113549.1.1.5")
    assert certificate_hash_name(cert) == "sha256"
    assert tls_server_end_point(cert) == hashlib.sha256(cert).digest()


def test_cert_from_trustme() -> None:
    trustme = pytest.importorskip("trustme")
    pem = trustme.CA().issue_cert("localhost").cert_chain_pems[0].bytes()
    cert = x509.load_pem_x509_certificate(pem)
    der_bytes = cert.public_bytes(serialization.Encoding.DER)
    assert cert.signature_hash_algorithm is not None
    expected = cert.fingerprint(cert.signature_hash_algorithm)
    assert tls_server_end_point(der_bytes) == expected


def test_cert_ed25519_has_no_binding(cert_ed25519: bytes) -> None:
    assert certificate_hash_name(cert_ed25519) is None
    with pytest.raises(AuthError, match="Ed25519"):
        tls_server_end_point(cert_ed25519)


def test_cert_ed448_has_no_binding() -> None:
    cert = make_cert(ed448.Ed448PrivateKey.generate(), None)
    assert certificate_hash_name(cert) is None


@pytest.mark.parametrize(
    ("oid", "expected"),
    [
        ("1.2.840.113549.1.1.4", "sha256"),  # md5WithRSAEncryption
        ("1.2.840.113549.1.1.5", "sha256"),  # sha1WithRSAEncryption
        ("1.2.840.10045.4.1", "sha256"),  # ecdsa-with-SHA1
        ("1.2.840.10040.4.3", "sha256"),  # dsa-with-sha1
        ("1.2.840.113549.1.1.14", "sha224"),
        ("1.2.840.10045.4.3.4", "sha512"),
        ("2.16.840.1.101.3.4.3.14", "sha3_256"),
        ("1.3.101.112", None),  # Ed25519
        ("1.3.101.113", None),  # Ed448
        ("1.2.643.7.1.1.3.2", None),  # GOST: unknown here
        ("1.2.3.4", None),
    ],
)
def test_signature_oids(oid: str, expected: str | None) -> None:
    assert certificate_hash_name(fake_cert(oid)) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (pss_params("2.16.840.1.101.3.4.2.2"), "sha384"),
        (pss_params("2.16.840.1.101.3.4.2.3"), "sha512"),
        (pss_params("1.3.14.3.2.26"), "sha256"),  # explicit sha1: upgraded
        (pss_params(None), "sha256"),  # default sha1: upgraded
        (b"", "sha256"),  # parameters missing: fall back
        (der(0x05, b""), "sha256"),  # NULL instead of a SEQUENCE: fall back
        (der(0x30, der(0xA0, der(0x02, b"\x01"))), "sha256"),  # garbage inside [0]
        (pss_params("1.2.3.4.5"), None),  # a hash we do not know: no binding
    ],
)
def test_pss_parameters(params: bytes, expected: str | None) -> None:
    assert certificate_hash_name(fake_cert("1.2.840.113549.1.1.10", params)) == expected


def test_hash_tables_agree_with_cryptography() -> None:
    oid_module = pytest.importorskip("cryptography.hazmat._oid")
    table = getattr(oid_module, "_SIG_OIDS_TO_HASH", None)
    if table is None:  # pragma: no cover - private API moved
        pytest.skip("cryptography no longer exposes _SIG_OIDS_TO_HASH")
    for oid, algorithm in table.items():
        ours = certificate_hash_name(fake_cert(oid.dotted_string))
        if algorithm is None:
            assert ours is None, oid
        elif algorithm.name in ("md5", "sha1"):
            assert ours == "sha256", oid
        else:
            assert ours == algorithm.name.replace("-", "_"), oid
    hash_oids = oid_module.HashAlgorithmOID
    for name in ["SHA224", "SHA256", "SHA384", "SHA512"]:
        dotted = getattr(hash_oids, name).dotted_string
        params = pss_params(dotted)
        assert certificate_hash_name(fake_cert("1.2.840.113549.1.1.10", params)) == name.lower()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x05\x30\x00",  # length beyond the data
        b"\x31\x00",  # not a SEQUENCE
        b"not a certificate at all",
        b"\x30\x84\xff\xff\xff\xff",  # 4 GiB claimed
        b"\x30\x89" + b"\x01" * 9,  # 9 length bytes
    ],
)
def test_unreadable_certificates(data: bytes) -> None:
    assert certificate_hash_name(data) is None


def test_trailing_garbage_or_truncation(cert_sha256: bytes) -> None:
    assert certificate_hash_name(cert_sha256 + b"\x00") is None
    assert certificate_hash_name(cert_sha256[:-1]) is None


def raw_oid_cert(oid_body: bytes) -> bytes:
    tbs = der(0x30, der(0x02, b"\x01"))
    return der(0x30, tbs + der(0x30, der(0x06, oid_body)) + der(0x03, b"\x00"))


def test_oid_decoding_edge_cases() -> None:
    sha256_rsa = der_oid("1.2.840.113549.1.1.11")[2:]
    assert certificate_hash_name(raw_oid_cert(sha256_rsa)) == "sha256"
    # The same arcs with a non-minimal (0x80-padded) arc are not that OID.
    padded = sha256_rsa[:1] + b"\x80" + sha256_rsa[1:]
    assert certificate_hash_name(raw_oid_cert(padded)) is None
    assert certificate_hash_name(raw_oid_cert(b"")) is None  # empty OID
    assert certificate_hash_name(raw_oid_cert(sha256_rsa + b"\x81")) is None  # unfinished arc
    assert certificate_hash_name(raw_oid_cert(b"\x2a" * 65)) is None  # absurdly long
    # signatureAlgorithm whose first element is not an OID
    tbs = der(0x30, b"")
    assert certificate_hash_name(der(0x30, tbs + der(0x30, der(0x05, b"")))) is None
    # missing signatureAlgorithm
    assert certificate_hash_name(der(0x30, tbs)) is None


# ---------------------------------------------------------------------------
# channel binding choices (GS2 header)


def gs2_of(client: ScramClient) -> str:
    first = client.initial_response().decode()
    return first[: first.index("n=")]


@pytest.mark.parametrize(
    ("mode", "offered", "cert", "mechanism", "header"),
    [
        ("disable", BOTH, "sha256", SCRAM_SHA_256, "n,,"),
        ("disable", PLAIN, "sha256", SCRAM_SHA_256, "n,,"),
        ("disable", PLAIN, None, SCRAM_SHA_256, "n,,"),
        ("prefer", BOTH, "sha256", SCRAM_SHA_256_PLUS, "p=tls-server-end-point,,"),
        ("prefer", PLAIN, "sha256", SCRAM_SHA_256, "y,,"),
        ("prefer", PLAIN, None, SCRAM_SHA_256, "n,,"),
        ("prefer", BOTH, "ed25519", SCRAM_SHA_256, "n,,"),
        ("prefer", PLAIN, "ed25519", SCRAM_SHA_256, "n,,"),
        ("prefer", BOTH, "nocert", SCRAM_SHA_256, "n,,"),
        ("require", BOTH, "sha256", SCRAM_SHA_256_PLUS, "p=tls-server-end-point,,"),
        ("require", [SCRAM_SHA_256_PLUS], "sha384", SCRAM_SHA_256_PLUS, "p=tls-server-end-point,,"),
        ("prefer", [SCRAM_SHA_256, "OAUTHBEARER", "SCRAM-SHA-512"], None, SCRAM_SHA_256, "n,,"),
    ],
)
def test_gs2_choice(
    mode: str,
    offered: list[str],
    cert: str | None,
    mechanism: str,
    header: str,
    request: pytest.FixtureRequest,
) -> None:
    certificate: object = None
    if cert == "nocert":
        certificate = lambda: None  # noqa: E731 - TLS without a peer certificate
    elif cert is not None:
        certificate = request.getfixturevalue(f"cert_{cert}")
    client = ScramClient("p", offered, channel_binding=mode, server_certificate=certificate)  # type: ignore[arg-type]
    assert client.mechanism == mechanism
    assert gs2_of(client) == header


@pytest.mark.parametrize(
    ("mode", "offered", "cert", "match"),
    [
        ("require", PLAIN, "sha256", "did not offer SCRAM-SHA-256-PLUS"),
        ("require", PLAIN, None, "does not use TLS"),
        ("require", BOTH, "ed25519", "allows no"),
        ("require", BOTH, "nocert", "allows no"),
        ("disable", [SCRAM_SHA_256_PLUS], "sha256", "none of the server's SASL mechanisms"),
        ("prefer", ["OAUTHBEARER"], None, "none of the server's SASL mechanisms"),
        ("prefer", [], None, "none of the server's SASL mechanisms"),
        # PLUS offered without TLS: refused in every mode (stripped TLS?)
        ("prefer", BOTH, None, "without TLS"),
        ("disable", BOTH, None, "without TLS"),
        ("require", BOTH, None, "without TLS"),
    ],
)
def test_gs2_choice_refused(
    mode: str, offered: list[str], cert: str | None, match: str, request: pytest.FixtureRequest
) -> None:
    certificate: object = None
    if cert == "nocert":
        certificate = lambda: None  # noqa: E731
    elif cert is not None:
        certificate = request.getfixturevalue(f"cert_{cert}")
    with pytest.raises(AuthError, match=match):
        ScramClient("p", offered, channel_binding=mode, server_certificate=certificate)  # type: ignore[arg-type]


def test_certificate_callable_is_lazy(cert_sha256: bytes) -> None:
    calls: list[int] = []

    def get() -> bytes:
        calls.append(1)
        return cert_sha256

    ScramClient("p", PLAIN, channel_binding="disable", server_certificate=get)
    assert calls == []
    client = ScramClient("p", BOTH, channel_binding="prefer", server_certificate=get)
    assert calls == [1]
    assert client.mechanism == SCRAM_SHA_256_PLUS


@pytest.mark.parametrize("cert_name", ["cert_sha256", "cert_sha384"])
def test_plus_exchange(cert_name: str, request: pytest.FixtureRequest) -> None:
    cert: bytes = request.getfixturevalue(cert_name)
    algorithm = hashes.SHA256() if cert_name == "cert_sha256" else hashes.SHA384()
    client = ScramClient("pencil", BOTH, channel_binding="require", server_certificate=cert)
    run_exchange(client, FakeScramServer(b"pencil", cbind_data=fingerprint(cert, algorithm)))
    assert client.done and client.channel_bound


def test_plus_exchange_detects_other_certificate(cert_sha256: bytes, cert_sha384: bytes) -> None:
    # The client sees a MITM's certificate; the server binds to its own.
    client = ScramClient("pencil", BOTH, server_certificate=cert_sha384)
    server = FakeScramServer(b"pencil", cbind_data=fingerprint(cert_sha256, hashes.SHA256()))
    server_first = server.first(client.initial_response())
    with pytest.raises(AssertionError):
        server.final(client.handle_continue(server_first))


def test_y_flag_exchange(cert_sha256: bytes) -> None:
    client = ScramClient("pencil", PLAIN, server_certificate=cert_sha256)
    run_exchange(client, FakeScramServer(b"pencil", supports_plus=False))
    assert client.done and not client.channel_bound


# ---------------------------------------------------------------------------
# require_auth parsing


@pytest.mark.parametrize(
    ("value", "allowed", "required", "negated"),
    [
        ("scram-sha-256", {"scram-sha-256"}, True, False),
        ("scram-sha-256,md5", {"scram-sha-256", "md5"}, True, False),
        ("none", set(), False, False),
        ("none,scram-sha-256", {"scram-sha-256"}, False, False),
        ("oauth", {"oauth"}, True, False),
        ("!password", {"md5", "gss", "sspi", "scram-sha-256", "oauth"}, False, True),
        ("!password,!md5", {"gss", "sspi", "scram-sha-256", "oauth"}, False, True),
        ("!none", {"password", "md5", "gss", "sspi", "scram-sha-256", "oauth"}, True, True),
    ],
)
def test_parse_require_auth(value: str, allowed: set[str], required: bool, negated: bool) -> None:
    parsed = parse_require_auth(value)
    assert parsed is not None
    assert parsed.allowed == allowed
    assert parsed.auth_required is required
    assert parsed.negated is negated
    assert parsed.text == value


@pytest.mark.parametrize("value", [None, ""])
def test_parse_require_auth_unset(value: str | None) -> None:
    assert parse_require_auth(value) is None


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("!md5,password", "method 'password' cannot be mixed with negated"),
        ("password,!md5", "negated method '!md5' cannot be mixed with plain"),
        ("kerberos", "unknown"),
        ("SCRAM-SHA-256", "unknown"),  # case-sensitive, as in libpq
        ("creds", "unknown"),
        ("md5,", "unknown"),
        (",md5", "unknown"),
        ("md5, password", "unknown"),  # no whitespace trimming, as in libpq
        ("!", "unknown"),
        ("md5,md5", "more than once"),
        ("!md5,!md5", "more than once"),
        ("none,none", "more than once"),
    ],
)
def test_parse_require_auth_errors(value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_require_auth(value)
    with pytest.raises(ValueError):
        AuthPolicy(value)


# ---------------------------------------------------------------------------
# AuthPolicy: what a client may answer (RELIABILITY S10, S11)

FORBIDS = "forbids it"


def sasl_login(
    policy: AuthPolicy,
    *,
    offered: list[str] = PLAIN,
    certificate: bytes | None = None,
    cbind: bytes = b"",
    skip_final: bool = False,
) -> ScramClient:
    """Drive a SCRAM login through *policy* the way the client would."""
    server = FakeScramServer(b"pw", cbind_data=cbind, supports_plus=SCRAM_SHA_256_PLUS in offered)
    policy.check_request(AUTHENTICATION_SASL, offered)
    client = policy.start_scram("pw", offered, server_certificate=certificate)
    server_first = server.first(client.initial_response())
    policy.check_request(AUTHENTICATION_SASL_CONTINUE)
    server_final = server.final(client.handle_continue(server_first))
    if not skip_final:
        policy.check_request(AUTHENTICATION_SASL_FINAL)
        client.handle_final(server_final)
    policy.check_request(AUTHENTICATION_OK)
    return client


def password_login(policy: AuthPolicy, code: int) -> None:
    policy.check_request(code)
    policy.check_request(AUTHENTICATION_OK)


LOGINS: dict[str, Callable[[AuthPolicy], object]] = {
    "password": lambda p: password_login(p, AUTHENTICATION_CLEARTEXT_PASSWORD),
    "md5": lambda p: password_login(p, AUTHENTICATION_MD5_PASSWORD),
    "scram": sasl_login,
    "trust": lambda p: p.check_request(AUTHENTICATION_OK),
}


@pytest.mark.parametrize(
    ("require_auth", "login", "error"),
    [
        (None, "password", None),
        (None, "md5", None),
        (None, "scram", None),
        (None, "trust", None),
        (
            "scram-sha-256",
            "password",
            "server requested a cleartext password, but require_auth=scram-sha-256 forbids it",
        ),
        ("scram-sha-256", "md5", "server requested an MD5-hashed password, but"),
        ("scram-sha-256", "scram", None),
        ("scram-sha-256", "trust", "requires authentication"),
        ("scram-sha-256,md5", "md5", None),
        ("scram-sha-256,md5", "password", FORBIDS),
        ("password", "scram", "SASL authentication.*forbids it"),
        ("password", "password", None),
        ("!password", "password", FORBIDS),
        ("!password", "md5", None),
        ("!password", "scram", None),
        ("!password", "trust", None),
        ("!password,!md5", "md5", FORBIDS),
        ("!password,!md5", "scram", None),
        ("!scram-sha-256", "scram", FORBIDS),
        ("!none", "trust", "requires authentication"),
        ("!none", "md5", None),
        ("none", "trust", None),
        ("none", "password", FORBIDS),
        ("none", "scram", FORBIDS),
        ("none,scram-sha-256", "trust", None),
        ("none,scram-sha-256", "scram", None),
        ("none,scram-sha-256", "md5", FORBIDS),
        ("oauth", "scram", FORBIDS),
    ],
)
def test_require_auth_matrix(require_auth: str | None, login: str, error: str | None) -> None:
    policy = AuthPolicy(require_auth)
    if error is None:
        LOGINS[login](policy)
    else:
        with pytest.raises(AuthError, match=error):
            LOGINS[login](policy)


@pytest.mark.parametrize(
    ("require_auth", "code"),
    [
        ("scram-sha-256", AUTHENTICATION_GSS),
        ("scram-sha-256", AUTHENTICATION_SSPI),
        ("!gss", AUTHENTICATION_GSS),
        ("!sspi", AUTHENTICATION_SSPI),
        ("none", AUTHENTICATION_GSS),
    ],
)
def test_require_auth_gss_sspi_forbidden(require_auth: str, code: int) -> None:
    with pytest.raises(AuthError, match=FORBIDS):
        AuthPolicy(require_auth).check_request(code)


def test_require_auth_gss_needs_client_to_finish() -> None:
    unfinished = AuthPolicy("gss")
    unfinished.check_request(AUTHENTICATION_GSS)
    with pytest.raises(AuthError, match="gss exchange was not completed"):
        unfinished.check_request(AUTHENTICATION_OK)
    with pytest.raises(AuthError, match="did not ask the client"):
        AuthPolicy("gss").check_request(AUTHENTICATION_OK)
    policy = AuthPolicy("gss")
    policy.check_request(AUTHENTICATION_GSS)
    policy.check_request(AUTHENTICATION_GSS_CONTINUE)
    policy.mark_client_finished()
    policy.check_request(AUTHENTICATION_OK)


def test_sspi_continue_uses_gss_continue() -> None:
    policy = AuthPolicy("sspi")
    policy.check_request(AUTHENTICATION_SSPI)
    policy.check_request(AUTHENTICATION_GSS_CONTINUE)
    policy.mark_client_finished()
    policy.check_request(AUTHENTICATION_OK)


def test_require_auth_oauth_server_offers_oauth() -> None:
    # Allowed by the policy, but this client has no OAUTHBEARER yet.
    policy = AuthPolicy("oauth")
    policy.check_request(AUTHENTICATION_SASL, ["OAUTHBEARER", SCRAM_SHA_256])
    assert policy.sasl_mechanisms(["OAUTHBEARER", SCRAM_SHA_256]) == ["OAUTHBEARER"]
    with pytest.raises(AuthError, match="none of the server's SASL mechanisms"):
        policy.start_scram("pw", ["OAUTHBEARER", SCRAM_SHA_256])


def test_require_auth_filters_sasl_mechanisms() -> None:
    policy = AuthPolicy("!oauth")
    assert policy.sasl_mechanisms(["OAUTHBEARER", *BOTH, "X"]) == BOTH
    assert AuthPolicy().sasl_mechanisms(["OAUTHBEARER", "X"]) == ["OAUTHBEARER"]


def test_unsupported_request_codes() -> None:
    with pytest.raises(AuthError, match="Kerberos V5"):
        AuthPolicy().check_request(AUTHENTICATION_KERBEROS_V5)
    for code in (1, 4, 6, 13, 99, -1):
        with pytest.raises(AuthError, match="unknown authentication method"):
            AuthPolicy().check_request(code)


def test_policy_repr_has_no_secret() -> None:
    policy = AuthPolicy("scram-sha-256", "require")
    assert "scram-sha-256" in repr(policy)


# -- ordering --


def test_sasl_continue_without_sasl() -> None:
    for code in (AUTHENTICATION_SASL_CONTINUE, AUTHENTICATION_SASL_FINAL):
        with pytest.raises(AuthError, match="without a SASL exchange"):
            AuthPolicy().check_request(code)
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_SASL, PLAIN)  # accepted, but no client started
    with pytest.raises(AuthError, match="without a SASL exchange"):
        policy.check_request(AUTHENTICATION_SASL_CONTINUE)


def test_gss_continue_without_gss() -> None:
    with pytest.raises(AuthError, match="GSSContinue"):
        AuthPolicy().check_request(AUTHENTICATION_GSS_CONTINUE)


def test_second_method_refused() -> None:
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_SASL, PLAIN)
    policy.start_scram("pw", PLAIN)
    with pytest.raises(AuthError, match="after the sasl exchange had begun"):
        policy.check_request(AUTHENTICATION_CLEARTEXT_PASSWORD)
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_MD5_PASSWORD)
    with pytest.raises(AuthError, match="after the md5 exchange"):
        policy.check_request(AUTHENTICATION_MD5_PASSWORD)


def test_requests_after_ok_refused() -> None:
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_OK)
    with pytest.raises(AuthError, match="after AuthenticationOk"):
        policy.check_request(AUTHENTICATION_OK)
    with pytest.raises(AuthError, match="after AuthenticationOk"):
        policy.check_request(AUTHENTICATION_CLEARTEXT_PASSWORD)
    with pytest.raises(AuthError, match="twice"):
        policy.check_ok()


def test_start_scram_needs_accepted_sasl_request() -> None:
    with pytest.raises(RuntimeError):
        AuthPolicy().start_scram("pw", PLAIN)
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_SASL, PLAIN)
    policy.start_scram("pw", PLAIN)
    with pytest.raises(RuntimeError):
        policy.start_scram("pw", PLAIN)


# -- AuthenticationOk before SASLFinal (RELIABILITY S9) --


@pytest.mark.parametrize("require_auth", [None, "scram-sha-256", "none,scram-sha-256", "!md5"])
def test_ok_before_sasl_final(require_auth: str | None) -> None:
    # Stricter than libpq for "none,scram-sha-256": a started SCRAM must finish.
    with pytest.raises(AuthError, match="before the SASL exchange finished"):
        sasl_login(AuthPolicy(require_auth), skip_final=True)


def test_ok_right_after_sasl_start() -> None:
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_SASL, PLAIN)
    client = policy.start_scram("pw", PLAIN)
    client.initial_response()
    with pytest.raises(AuthError, match="before the SASL exchange finished"):
        policy.check_request(AUTHENTICATION_OK)


def test_ok_after_failed_final() -> None:
    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_SASL, PLAIN)
    client = policy.start_scram("pw", PLAIN, client_nonce="abc")
    client.initial_response()
    policy.check_request(AUTHENTICATION_SASL_CONTINUE)
    client.handle_continue(b"r=abcdef,s=AAAA,i=1")
    policy.check_request(AUTHENTICATION_SASL_FINAL)
    with pytest.raises(AuthError):
        client.handle_final(b"v=" + base64.b64encode(b"\x00" * 32))
    with pytest.raises(AuthError, match="before the SASL exchange finished"):
        policy.check_request(AUTHENTICATION_OK)


# -- channel_binding matrix --


@pytest.mark.parametrize(
    ("mode", "login", "error"),
    [
        ("require", "password", "channel_binding=require, but the server requested a cleartext"),
        ("require", "md5", "channel_binding=require"),
        ("require", "trust", "without channel binding"),
        ("prefer", "password", None),
        ("prefer", "md5", None),
        ("prefer", "trust", None),
        ("disable", "password", None),
        ("disable", "trust", None),
    ],
)
def test_channel_binding_non_sasl(mode: str, login: str, error: str | None) -> None:
    policy = AuthPolicy(channel_binding=mode)
    if error is None:
        LOGINS[login](policy)
    else:
        with pytest.raises(AuthError, match=error):
            LOGINS[login](policy)


@pytest.mark.parametrize("code", [AUTHENTICATION_GSS, AUTHENTICATION_SSPI])
def test_channel_binding_require_refuses_gss(code: int) -> None:
    with pytest.raises(AuthError, match="cannot use channel binding"):
        AuthPolicy(channel_binding="require").check_request(code)


def test_require_auth_message_wins_over_channel_binding() -> None:
    policy = AuthPolicy("scram-sha-256", "require")
    with pytest.raises(AuthError, match="require_auth=scram-sha-256 forbids it"):
        policy.check_request(AUTHENTICATION_CLEARTEXT_PASSWORD)


@pytest.mark.parametrize(
    ("mode", "offered", "tls", "bound", "error"),
    [
        ("require", BOTH, True, True, None),
        ("require", PLAIN, True, False, "did not offer SCRAM-SHA-256-PLUS"),
        ("require", PLAIN, False, False, "does not use TLS"),
        ("prefer", BOTH, True, True, None),
        ("prefer", PLAIN, True, False, None),
        ("prefer", PLAIN, False, False, None),
        ("disable", BOTH, True, False, None),
        ("disable", PLAIN, False, False, None),
    ],
)
def test_channel_binding_sasl(
    mode: str,
    offered: list[str],
    tls: bool,
    bound: bool,
    error: str | None,
    cert_sha256: bytes,
) -> None:
    policy = AuthPolicy("scram-sha-256", mode)
    certificate = cert_sha256 if tls else None
    cbind = fingerprint(cert_sha256, hashes.SHA256())

    def login() -> ScramClient:
        return sasl_login(policy, offered=offered, certificate=certificate, cbind=cbind)

    if error is None:
        client = login()
        assert client.channel_bound is bound
    else:
        with pytest.raises(AuthError, match=error):
            login()


class _FakeSasl:
    """A stand-in SASL client, as an OAUTHBEARER implementation would be."""

    def __init__(self, mechanism: str, done: bool = True, bound: bool = False) -> None:
        self.mechanism = mechanism
        self.done = done
        self.channel_bound = bound

    def initial_response(self) -> bytes:
        return b""

    def handle_continue(self, data: bytes) -> bytes:
        return b""

    def handle_final(self, data: bytes) -> None:
        return None


def test_sasl_started_checks_mechanism() -> None:
    policy = AuthPolicy("scram-sha-256")
    policy.check_request(AUTHENTICATION_SASL, ["OAUTHBEARER", SCRAM_SHA_256])
    with pytest.raises(AuthError, match=r"SASL mechanism 'OAUTHBEARER'.*forbids it"):
        policy.sasl_started(_FakeSasl("OAUTHBEARER"))

    policy = AuthPolicy(channel_binding="require")
    policy.check_request(AUTHENTICATION_SASL, ["OAUTHBEARER"])
    with pytest.raises(AuthError, match="does not bind"):
        policy.sasl_started(_FakeSasl("OAUTHBEARER"))

    policy = AuthPolicy()
    policy.check_request(AUTHENTICATION_SASL, ["X-UNKNOWN"])
    with pytest.raises(AuthError, match="not supported"):
        policy.sasl_started(_FakeSasl("X-UNKNOWN"))


def test_sasl_started_custom_client_completes() -> None:
    policy = AuthPolicy("oauth")
    policy.check_request(AUTHENTICATION_SASL, ["OAUTHBEARER"])
    policy.sasl_started(_FakeSasl("OAUTHBEARER", done=True))
    policy.check_request(AUTHENTICATION_SASL_CONTINUE)
    policy.check_request(AUTHENTICATION_OK)


def test_channel_binding_require_checks_bound_at_ok() -> None:
    # A PLUS client that did not actually bind (defence in depth for custom clients).
    policy = AuthPolicy(channel_binding="require")
    policy.check_request(AUTHENTICATION_SASL, [SCRAM_SHA_256_PLUS])
    policy.sasl_started(_FakeSasl(SCRAM_SHA_256_PLUS, done=True, bound=False))
    with pytest.raises(AuthError, match="without channel binding"):
        policy.check_request(AUTHENTICATION_OK)


def test_invalid_policy_channel_binding() -> None:
    with pytest.raises(ValueError, match="channel_binding"):
        AuthPolicy(channel_binding="yes")
