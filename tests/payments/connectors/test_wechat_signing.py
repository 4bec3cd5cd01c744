"""WeChat Pay v3 signatures and AEAD against golden fixtures made with openssl, plus tampering and an
independent verifier (the ``wechatpayv3`` SDK, when installed)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from finloop.payments.connectors.base import InvalidSignature
from finloop.payments.connectors.wechat import signing
from tests.payments.connectors.test_wechat_support import GOLDEN_AT, load, settings, text

NATIVE = load("native_pay.json")
PAID = load("notification_transaction_success.json")


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return signing.load_private_key(text("merchant_private_key.pem"))


@pytest.fixture(scope="module")
def platform_public() -> rsa.RSAPublicKey:
    return signing.load_public_key(text("platform_public_key.pem"))


def _verify_reply(public: rsa.RSAPublicKey, headers: dict[str, str], body: str,
                  now: datetime = GOLDEN_AT) -> None:
    signing.verify_signed(public, headers=headers, body=body.encode(), expected_serial=settings()["platform_serial"],
                          now=now)


# ------------------------------------------------------------------------------------------ request signing


def test_authorization_header_equals_golden_fixture(merchant_key: rsa.RSAPrivateKey) -> None:
    request = NATIVE["request"]
    header = signing.authorization(mchid=settings()["mchid"], serial_no=settings()["serial_no"],
                                   private_key=merchant_key, method="POST", path=request["path"],
                                   timestamp=request["timestamp"], nonce=request["nonce"], body=request["body"])
    assert header == request["authorization"]


def test_signing_string_has_a_trailing_newline_per_part() -> None:
    assert signing.message("GET", "/v3/x?a=1", "1", "N", "") == b"GET\n/v3/x?a=1\n1\nN\n\n"


def test_parse_authorization_reads_every_field() -> None:
    auth = signing.parse_authorization(NATIVE["request"]["authorization"])
    assert (auth.mchid, auth.nonce, auth.timestamp, auth.serial_no) == (
        "1900000109", NATIVE["request"]["nonce"], NATIVE["request"]["timestamp"], settings()["serial_no"])
    assert auth.signature == NATIVE["request"]["signature"]


def test_parse_authorization_refuses_another_schema() -> None:
    with pytest.raises(InvalidSignature):
        signing.parse_authorization('WECHATPAY2-SM2-WITH-SM3 mchid="1"')


@pytest.mark.parametrize("field", ["body", "path", "timestamp", "method"])
def test_verify_request_refuses_tampered_request(field: str) -> None:
    merchant_public = signing.load_public_key(text("merchant_public_key.pem"))
    request = NATIVE["request"]
    values = {"method": "POST", "path": request["path"], "body": request["body"]}
    header = request["authorization"]
    if field == "timestamp":
        header = header.replace(f'timestamp="{request["timestamp"]}"', f'timestamp="{request["timestamp"] + 1}"')
    elif field == "method":
        values["method"] = "PUT"
    else:
        values[field] = values[field].replace("1234", "1235") if field == "body" else values[field] + "/x"
    with pytest.raises(InvalidSignature):
        signing.verify_request(merchant_public, header=header, now=GOLDEN_AT, **values)


def test_verify_request_accepts_golden_request() -> None:
    merchant_public = signing.load_public_key(text("merchant_public_key.pem"))
    request = NATIVE["request"]
    auth = signing.verify_request(merchant_public, header=request["authorization"], method="POST",
                                  path=request["path"], body=request["body"], now=GOLDEN_AT)
    assert auth.mchid == "1900000109"


# ------------------------------------------------------------------------------------------ reply verification


def test_golden_reply_verifies(platform_public: rsa.RSAPublicKey) -> None:
    response = NATIVE["response"]
    _verify_reply(platform_public, response["headers"], response["body"])


@pytest.mark.parametrize("tamper", ["body", "timestamp", "nonce", "signature", "serial"])
def test_tampered_reply_fails_verification(platform_public: rsa.RSAPublicKey, tamper: str) -> None:
    response = NATIVE["response"]
    headers = dict(response["headers"])
    body = response["body"]
    if tamper == "body":
        body = body.replace("p4lpSuKzz", "p4lpSuKzZ")
    elif tamper == "timestamp":
        headers["Wechatpay-Timestamp"] = str(int(headers["Wechatpay-Timestamp"]) + 1)
    elif tamper == "nonce":
        headers["Wechatpay-Nonce"] = headers["Wechatpay-Nonce"].lower()
    elif tamper == "signature":
        raw = bytearray(base64.b64decode(headers["Wechatpay-Signature"]))
        raw[0] ^= 1
        headers["Wechatpay-Signature"] = base64.b64encode(bytes(raw)).decode()
    else:
        headers["Wechatpay-Serial"] = "PUB_KEY_ID_SOMEONE_ELSE"
    with pytest.raises(InvalidSignature):
        _verify_reply(platform_public, headers, body)


@pytest.mark.parametrize("offset", [timedelta(minutes=5, seconds=2), -timedelta(minutes=5, seconds=2)])
def test_stale_or_future_reply_is_refused(platform_public: rsa.RSAPublicKey, offset: timedelta) -> None:
    response = NATIVE["response"]
    signed_at = datetime.fromtimestamp(int(response["headers"]["Wechatpay-Timestamp"]), UTC)
    with pytest.raises(InvalidSignature, match="clock skew"):
        _verify_reply(platform_public, response["headers"], response["body"], now=signed_at + offset)


def test_reply_inside_the_skew_window_verifies(platform_public: rsa.RSAPublicKey) -> None:
    response = NATIVE["response"]
    signed_at = datetime.fromtimestamp(int(response["headers"]["Wechatpay-Timestamp"]), UTC)
    _verify_reply(platform_public, response["headers"], response["body"], now=signed_at + timedelta(minutes=5))


def test_header_names_are_case_insensitive(platform_public: rsa.RSAPublicKey) -> None:
    response = NATIVE["response"]
    lowered = {key.lower(): value for key, value in response["headers"].items()}
    _verify_reply(platform_public, lowered, response["body"])


def test_missing_signature_header_is_refused(platform_public: rsa.RSAPublicKey) -> None:
    headers = dict(NATIVE["response"]["headers"])
    del headers["Wechatpay-Signature"]
    with pytest.raises(InvalidSignature, match="missing"):
        _verify_reply(platform_public, headers, NATIVE["response"]["body"])


def test_signed_headers_round_trip() -> None:
    platform_private = signing.load_private_key(text("platform_private_key.pem"))
    body = b'{"code":"ORDERPAID"}'
    headers = signing.signed_headers(platform_private, serial=settings()["platform_serial"],
                                     timestamp=int(GOLDEN_AT.timestamp()), nonce="N1", body=body)
    signing.verify_signed(signing.load_public_key(text("platform_public_key.pem")), headers=headers, body=body,
                          expected_serial=settings()["platform_serial"], now=GOLDEN_AT)


# ------------------------------------------------------------------------------------------ AEAD_AES_256_GCM


def test_golden_notification_resource_decrypts_to_stored_plaintext() -> None:
    resource = json.loads(PAID["body"])["resource"]
    plaintext = signing.decrypt(settings()["api_v3_key"], nonce=resource["nonce"],
                                associated_data=resource["associated_data"], ciphertext=resource["ciphertext"])
    assert plaintext.decode() == PAID["plaintext"]


def test_encrypt_reproduces_golden_ciphertext() -> None:
    resource = json.loads(PAID["body"])["resource"]
    ciphertext = signing.encrypt(settings()["api_v3_key"], nonce=resource["nonce"],
                                 associated_data=resource["associated_data"], plaintext=PAID["plaintext"].encode())
    assert ciphertext == resource["ciphertext"]


@pytest.mark.parametrize("tamper", ["ciphertext", "tag", "nonce", "associated_data", "key"])
def test_tampered_resource_does_not_decrypt(tamper: str) -> None:
    resource = dict(json.loads(PAID["body"])["resource"])
    key = settings()["api_v3_key"]
    sealed = bytearray(base64.b64decode(resource["ciphertext"]))
    if tamper == "ciphertext":
        sealed[3] ^= 0x40
    elif tamper == "tag":
        sealed[-1] ^= 0x01
    elif tamper == "nonce":
        resource["nonce"] = resource["nonce"][::-1]
    elif tamper == "associated_data":
        resource["associated_data"] = "refund"
    else:
        key = key[::-1]
    with pytest.raises(InvalidSignature):
        signing.decrypt(key, nonce=resource["nonce"], associated_data=resource["associated_data"],
                        ciphertext=base64.b64encode(bytes(sealed)).decode())


def test_api_v3_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        signing.encrypt("short", nonce="123456789012", associated_data="", plaintext=b"x")


@given(st.binary(max_size=512), st.text(max_size=20))
def test_encrypt_then_decrypt_is_identity(plaintext: bytes, associated_data: str) -> None:
    key = settings()["api_v3_key"]
    sealed = signing.encrypt(key, nonce="abcdefghijkl", associated_data=associated_data, plaintext=plaintext)
    assert signing.decrypt(key, nonce="abcdefghijkl", associated_data=associated_data, ciphertext=sealed) == plaintext


# ------------------------------------------------------------------------------------------ an independent SDK


def test_independent_sdk_agrees_with_signatures_and_decryption(merchant_key: rsa.RSAPrivateKey,
                                                               platform_public: rsa.RSAPublicKey) -> None:
    utils = pytest.importorskip("wechatpayv3.utils")
    request = NATIVE["request"]
    sign_string = f"POST\n{request['path']}\n{request['timestamp']}\n{request['nonce']}\n{request['body']}\n"
    assert utils.rsa_sign(merchant_key, sign_string) == request["signature"]
    response = NATIVE["response"]
    assert utils.rsa_verify(response["headers"]["Wechatpay-Timestamp"], response["headers"]["Wechatpay-Nonce"],
                            response["body"], response["headers"]["Wechatpay-Signature"], platform_public)
    resource = json.loads(PAID["body"])["resource"]
    ours = signing.encrypt(settings()["api_v3_key"], nonce="zyxwvutsrqpo", associated_data="transaction",
                           plaintext=b'{"trade_state":"SUCCESS"}')
    decrypted = utils.aes_decrypt("zyxwvutsrqpo", ours, "transaction", settings()["api_v3_key"])
    assert decrypted == '{"trade_state":"SUCCESS"}'
    assert utils.aes_decrypt(resource["nonce"], resource["ciphertext"], resource["associated_data"],
                             settings()["api_v3_key"]) == PAID["plaintext"]


# ------------------------------------------------------------------------------------------ client invoke payloads


def test_app_and_jsapi_pay_signs_verify_with_the_merchant_public_key(merchant_key: rsa.RSAPrivateKey) -> None:
    merchant_public = signing.load_public_key(text("merchant_public_key.pem"))
    app_sign = signing.app_pay_sign(merchant_key, appid="wx1", timestamp=1772442000, nonce="N", prepay_id="wx2")
    assert signing.verify(merchant_public, b"wx1\n1772442000\nN\nwx2\n", app_sign)
    js_sign = signing.jsapi_pay_sign(merchant_key, appid="wx1", timestamp=1772442000, nonce="N",
                                     package="prepay_id=wx2")
    assert signing.verify(merchant_public, b"wx1\n1772442000\nN\nprepay_id=wx2\n", js_sign)


def test_load_keys_refuse_garbage() -> None:
    with pytest.raises(ValueError):
        signing.load_private_key("not a key")
    with pytest.raises(ValueError):
        signing.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
