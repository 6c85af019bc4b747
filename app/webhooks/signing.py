"""Delivery signatures: the Standard Webhooks scheme (https://www.standardwebhooks.com), and the
body-only `X-Signature` that webhooks created before it keep receiving for a transition.

Standard Webhooks, symmetric (`v1`):
- the secret is `whsec_` + base64 (standard alphabet, padded) of the key bytes: 32 random bytes;
- `webhook-id`: the message id, `msg_` + the delivery's id: the same on every attempt of one
  delivery (the receiver's idempotency key), never containing a `.`;
- `webhook-timestamp`: when this attempt was signed, in integer Unix seconds;
- `webhook-signature`: `v1,` + base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}").
Receivers refuse a timestamp far from their clock (the reference libraries: 5 minutes), and the
signature binds the timestamp, so a captured delivery cannot be replayed later.

Secrets of webhooks created before this scheme were shown as `whsec_` + URL-safe base64 without
padding (`secrets.token_urlsafe(32)`). Their key is the same 32 bytes, decoded from that alphabet
(`secret_key` reads both forms). `X-Signature` (legacy) is
HMAC-SHA256 of the body alone, keyed with the UTF-8 bytes of the whole secret string, as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
MESSAGE_ID_PREFIX = "msg_"
KEY_BYTES = 32
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def new_secret() -> str:
    """A fresh signing secret, in the Standard Webhooks serialisation."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for: the base64 after `whsec_` decoded (URL-safe and
    unpadded base64, as older secrets were shown, decodes to the same bytes). ValueError if it
    is not base64 or is empty."""
    encoded = secret.removeprefix(SECRET_PREFIX).translate(_URLSAFE_TO_STANDARD)
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def message_id(delivery_id: int) -> str:
    return f"{MESSAGE_ID_PREFIX}{delivery_id}"


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def legacy_signature(secret: str, body: bytes) -> str:
    """The `X-Signature` value of webhooks created before Standard Webhooks signatures."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_headers(
    secret: str,
    *,
    message_id: str,
    body: bytes,
    legacy: bool = False,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The signing headers of one attempt (signed now unless `timestamp` is given)."""
    when = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(when),
        "webhook-signature": sign(secret, message_id=message_id, timestamp=when, body=body),
    }
    if legacy:
        headers["X-Signature"] = legacy_signature(secret, body)
    return headers
