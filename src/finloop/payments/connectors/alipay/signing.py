"""Alipay's RSA2 signatures: what is signed, how, and how a reply is checked.

Invariants owned here:
- the signed content is the parameters sorted by key (byte order), ``k=v`` joined by ``&``, with empty
  values and ``sign`` left out (notifications also leave out ``sign_type``); values are signed as they
  are, never URL-encoded;
- the signature is base64(RSA PKCS#1 v1.5 over SHA-256) — deterministic, so fixtures can pin it;
- a gateway reply is verified over the exact raw text of its ``<method>_response`` value, never over a
  re-serialisation (key order and number formatting would differ);
- anything that does not verify raises ``InvalidSignature``; no caller gets unverified content.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from finloop.payments.connectors.base import InvalidSignature

REQUEST_EXCLUDED = frozenset({"sign"})
NOTIFICATION_EXCLUDED = frozenset({"sign", "sign_type"})


def _pem(text: str, kind: str) -> bytes:
    """Accept a full PEM or the bare base64 body Alipay's console hands out."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped.encode()
    body = "".join(stripped.split())
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


@functools.lru_cache(maxsize=64)
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """Parse (and check) an RSA private key; cached, since checking one costs ~0.1 s and a connector may be
    built per call."""
    key = serialization.load_pem_private_key(_pem(text, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("Alipay RSA2 needs an RSA private key")
    return key


@functools.lru_cache(maxsize=64)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Alipay RSA2 needs an RSA public key")
    return key


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign_content(params: Mapping[str, str], excluded: Iterable[str] = REQUEST_EXCLUDED) -> str:
    """The string Alipay signs: sorted ``k=v`` pairs joined by ``&``; empty values and excluded keys dropped."""
    skip = frozenset(excluded)
    return "&".join(f"{key}={params[key]}" for key in sorted(params)
                    if key not in skip and params[key] not in ("", None))


def rsa2_sign(content: str, key: rsa.RSAPrivateKey) -> str:
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except _CryptoInvalidSignature:
        return False
    return True


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    return rsa2_sign(sign_content(params, REQUEST_EXCLUDED), key)


def verify_params(params: Mapping[str, str], key: rsa.RSAPublicKey,
                  excluded: Iterable[str] = NOTIFICATION_EXCLUDED) -> None:
    """Verify a signed parameter set (a notification, or a request at the sandbox); raise if it fails."""
    signature = params.get("sign")
    if not signature:
        raise InvalidSignature("alipay parameters carry no sign")
    if params.get("sign_type", "RSA2") != "RSA2":
        raise InvalidSignature("only RSA2 signatures are accepted")
    if not rsa2_verify(sign_content(params, excluded), signature, key):
        raise InvalidSignature("alipay signature does not verify")


def top_level_spans(raw: str) -> dict[str, str]:
    """The exact raw text of each top-level value of a JSON object, by key.

    Walks the object with ``raw_decode`` so braces inside strings cannot confuse it (a brace counter would).
    """
    decoder = json.JSONDecoder()
    spans: dict[str, str] = {}
    text = raw
    index = _skip(text, 0)
    if index >= len(text) or text[index] != "{":
        raise ValueError("not a JSON object")
    index = _skip(text, index + 1)
    if index < len(text) and text[index] == "}":
        return spans
    while True:
        key, index = decoder.raw_decode(text, index)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        index = _skip(text, index)
        if text[index] != ":":
            raise ValueError("expected ':'")
        start = _skip(text, index + 1)
        _, end = decoder.raw_decode(text, start)
        spans[key] = text[start:end]
        index = _skip(text, end)
        if text[index] == ",":
            index = _skip(text, index + 1)
            continue
        if text[index] == "}":
            return spans
        raise ValueError("expected ',' or '}'")


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


def verify_response(raw: str, method: str, key: rsa.RSAPublicKey) -> dict[str, Any]:
    """Return the decoded ``<method>_response`` object of a gateway reply once its sign verifies."""
    try:
        spans = top_level_spans(raw)
        document = json.loads(raw)
    except (ValueError, IndexError) as error:
        raise InvalidSignature("alipay reply is not a JSON object") from error
    content = spans.get(response_key(method))
    signature = document.get("sign")
    if content is None or not isinstance(signature, str) or not signature:
        raise InvalidSignature("alipay reply carries no signed response object")
    if not rsa2_verify(content, signature, key):
        raise InvalidSignature("alipay reply signature does not verify")
    value = json.loads(content)
    if not isinstance(value, dict):
        raise InvalidSignature("alipay response object is not an object")
    return value


def signed_response(method: str, body: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    """Build a gateway reply the way Alipay does: the response object's text, then its sign (sandbox side)."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    signature = rsa2_sign(content, key)
    return f'{{"{response_key(method)}":{content},"sign":"{signature}"}}'
