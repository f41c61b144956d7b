"""Verification of the gateway's outbound webhooks (Standard Webhooks v1, symmetric ``v1`` scheme).

The gateway signs ``{webhook-id}.{webhook-timestamp}.{raw body}`` with HMAC-SHA256, the key being the
base64-decoded part of the ``whsec_...`` secret, and sends ``v1,<base64>`` in ``webhook-signature``.
During a secret rotation the header holds several space-separated entries (new and old secret); one
match is enough.
"""
import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Optional, Union

SECRET_PREFIX = "whsec_"


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh delivery of this subscription: answer it 4xx."""


def _header(headers: Mapping[str, str], name: str) -> str:
    # Header names are case-insensitive; frameworks hand them over in any case.
    value = headers.get(name)
    if value is None:
        for key, v in headers.items():
            if key.lower() == name:
                value = v
                break
    if value is None or value == "":
        raise WebhookVerificationError(f"Missing {name} header")
    return value


def _key(secret: Union[str, bytes]) -> bytes:
    if isinstance(secret, bytes):
        return secret
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("The secret is not whsec_ followed by base64") from err


def sign(secret: Union[str, bytes], msg_id: str, timestamp: int, payload: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery (what the gateway sends; handy for tests)."""
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + payload
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    payload: Union[bytes, str],
    headers: Mapping[str, str],
    secret: Union[str, bytes],
    tolerance_s: int = 300,
    now: Optional[float] = None,
) -> Any:
    """Checks one delivery and returns its parsed JSON event.

    ``payload`` must be the raw body as received (re-serialised JSON does not verify). ``headers`` is any
    mapping of the request headers. Raises :class:`WebhookVerificationError` when a header is missing,
    the timestamp is more than ``tolerance_s`` seconds away from ``now`` (either way), or no ``v1``
    entry of ``webhook-signature`` matches; ``ValueError`` when the secret is malformed.
    """
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    msg_id = _header(headers, "webhook-id")
    ts_text = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    key = _key(secret)
    try:
        timestamp = int(ts_text)
    except ValueError as err:
        raise WebhookVerificationError("Invalid webhook-timestamp header") from err
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise WebhookVerificationError("Message timestamp too old")
    if timestamp > current + tolerance_s:
        raise WebhookVerificationError("Message timestamp too new")
    expected = sign(key, msg_id, timestamp, body).split(",", 1)[1].encode()
    matched = False
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        # Every entry is compared, in constant time, so the position of a match leaks nothing.
        if hmac.compare_digest(value.encode(), expected):
            matched = True
    if not matched:
        raise WebhookVerificationError("No matching signature found")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise WebhookVerificationError("The verified body is not JSON") from err
