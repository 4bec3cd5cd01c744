"""WeChat Pay API v3 signatures and resource encryption, as pure functions (no I/O, no clock).

Invariants owned here:
- a request is signed with RSA PKCS#1 v1.5 over SHA-256 of ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``
  with the merchant's private key, and sent as ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,
  nonce_str=..,signature=..,timestamp=..,serial_no=..``; PKCS#1 v1.5 is deterministic, so the same inputs
  always give the same header (the golden fixtures rely on it);
- a reply or notification is accepted only when its ``Wechatpay-Signature`` verifies with the platform public
  key over ``TIMESTAMP\\nNONCE\\nBODY\\n``, its ``Wechatpay-Serial`` names the key we hold, and its timestamp is
  within ``max_skew`` of our clock (a replayed, stale message is refused the same as a forged one);
- encrypted resources are AEAD_AES_256_GCM with the 32-byte APIv3 key; the ciphertext on the wire is
  base64(ciphertext || 16-byte tag); a wrong key, nonce, associated data or a flipped bit fails;
- every refusal raises ``InvalidSignature`` with a message that carries no key material.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from finloop.payments.connectors.base import InvalidSignature

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
#: WeChat Pay refuses (and we refuse) messages whose timestamp is further than this from now.
MAX_SKEW = timedelta(minutes=5)

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SERIAL = "Wechatpay-Serial"

_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


# ------------------------------------------------------------------------------------------ keys


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """The merchant key. Parsed (and validated, which takes ~0.1 s for RSA) once per process per key:
    connectors are built per call."""
    return _load_private_key(pem.encode() if isinstance(pem, str) else pem)


@lru_cache(maxsize=64)
def _load_private_key(data: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ValueError("the merchant private key is not a PEM RSA private key") from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key must be an RSA key")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """A platform public key, from a PEM public key or a PEM X.509 certificate (the older platform-cert mode)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key: object = (x509.load_pem_x509_certificate(data).public_key() if b"BEGIN CERTIFICATE" in data
                       else serialization.load_pem_public_key(data))
    except ValueError as error:
        raise ValueError("the platform public key is not a PEM RSA public key or certificate") from error
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the platform public key must be an RSA key")
    return key


def generate_key_pair() -> tuple[str, str]:
    """A fresh RSA-2048 pair as (private PEM in PKCS#8, public PEM in SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


# ------------------------------------------------------------------------------------------ RSA


def message(*parts: str) -> bytes:
    """WeChat's signing string: every part followed by a newline (the last one too)."""
    return "".join(f"{part}\n" for part in parts).encode()


def sign(private_key: rsa.RSAPrivateKey, data: bytes) -> str:
    return base64.b64encode(private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key: rsa.RSAPublicKey, data: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except (_CryptoInvalidSignature, binascii.Error, ValueError):
        return False
    return True


def authorization(*, mchid: str, serial_no: str, private_key: rsa.RSAPrivateKey, method: str,
                  path: str, timestamp: int, nonce: str, body: str) -> str:
    """The ``Authorization`` header for one request. ``path`` is the URL's path with its query, as sent;
    ``body`` is the exact JSON text sent ("" for GET)."""
    signature = sign(private_key, message(method.upper(), path, str(timestamp), nonce, body))
    return (f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


@dataclass(frozen=True, slots=True)
class Authorization:
    mchid: str
    nonce: str
    signature: str
    timestamp: int
    serial_no: str


def parse_authorization(header: str) -> Authorization:
    """The fields of an ``Authorization`` header (the sandbox's side of request signing)."""
    schema, _, rest = header.strip().partition(" ")
    if schema != SCHEMA:
        raise InvalidSignature("the Authorization schema is not WECHATPAY2-SHA256-RSA2048")
    fields = dict(_AUTH_FIELD.findall(rest))
    try:
        return Authorization(mchid=fields["mchid"], nonce=fields["nonce_str"], signature=fields["signature"],
                             timestamp=int(fields["timestamp"]), serial_no=fields["serial_no"])
    except (KeyError, ValueError) as error:
        raise InvalidSignature("the Authorization header is incomplete") from error


def verify_request(public_key: rsa.RSAPublicKey, *, header: str, method: str, path: str, body: str,
                   now: datetime, max_skew: timedelta = MAX_SKEW) -> Authorization:
    """Check a merchant's signed request (the sandbox plays WeChat Pay here)."""
    auth = parse_authorization(header)
    _check_fresh(auth.timestamp, now, max_skew)
    if not verify(public_key, message(method.upper(), path, str(auth.timestamp), auth.nonce, body), auth.signature):
        raise InvalidSignature("the request signature does not verify")
    return auth


# ------------------------------------------------------------------------------------------ replies and notifications


def signed_headers(private_key: rsa.RSAPrivateKey, *, serial: str, timestamp: int, nonce: str,
                   body: bytes) -> dict[str, str]:
    """The headers WeChat Pay puts on a reply or a notification it sends."""
    signature = sign(private_key, message(str(timestamp), nonce, body.decode()))
    return {HEADER_TIMESTAMP: str(timestamp), HEADER_NONCE: nonce, HEADER_SIGNATURE: signature,
            HEADER_SERIAL: serial}


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    raise InvalidSignature(f"the {name} header is missing")


def _check_fresh(timestamp: int, now: datetime, max_skew: timedelta) -> None:
    at = datetime.fromtimestamp(timestamp, UTC)
    if abs(now - at) > max_skew:
        raise InvalidSignature("the signed timestamp is outside the allowed clock skew")


def verify_signed(public_key: rsa.RSAPublicKey, *, headers: Mapping[str, str], body: bytes, expected_serial: str,
                  now: datetime, max_skew: timedelta = MAX_SKEW) -> None:
    """Accept a reply or notification signed by the platform key we hold, or raise ``InvalidSignature``."""
    serial = _header(headers, HEADER_SERIAL)
    if serial != expected_serial:
        raise InvalidSignature("the message is signed with a platform key we do not hold")
    raw_timestamp = _header(headers, HEADER_TIMESTAMP)
    try:
        timestamp = int(raw_timestamp)
    except ValueError as error:
        raise InvalidSignature("the signed timestamp is not a number") from error
    _check_fresh(timestamp, now, max_skew)
    nonce = _header(headers, HEADER_NONCE)
    signature = _header(headers, HEADER_SIGNATURE)
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        raise InvalidSignature("the signed body is not UTF-8") from error
    if not verify(public_key, message(raw_timestamp, nonce, text), signature):
        raise InvalidSignature("the platform signature does not verify")


# ------------------------------------------------------------------------------------------ AEAD_AES_256_GCM


def _aead_key(api_v3_key: str) -> AESGCM:
    key = api_v3_key.encode()
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    return AESGCM(key)


def encrypt(api_v3_key: str, *, nonce: str, associated_data: str, plaintext: bytes) -> str:
    """base64(ciphertext || tag), as WeChat Pay puts it in ``resource.ciphertext``."""
    sealed = _aead_key(api_v3_key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return base64.b64encode(sealed).decode()


def decrypt(api_v3_key: str, *, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return _aead_key(api_v3_key).decrypt(nonce.encode(), sealed, associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError) as error:
        raise InvalidSignature("the encrypted resource does not decrypt with our APIv3 key") from error


# ------------------------------------------------------------------------------------------ client invoke payloads


def app_pay_sign(private_key: rsa.RSAPrivateKey, *, appid: str, timestamp: int, nonce: str, prepay_id: str) -> str:
    """``sign`` of the APP invoke payload (appid, timestamp, noncestr, prepayid)."""
    return sign(private_key, message(appid, str(timestamp), nonce, prepay_id))


def jsapi_pay_sign(private_key: rsa.RSAPrivateKey, *, appid: str, timestamp: int, nonce: str, package: str) -> str:
    """``paySign`` of the JSAPI / mini program ``requestPayment`` parameters."""
    return sign(private_key, message(appid, str(timestamp), nonce, package))
