"""Switchboard: a standard-library client for the gateway's ``/v1`` API and a webhook verifier."""

__version__ = "0.1.0"

from .client import Client  # noqa: E402
from .errors import (  # noqa: E402
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    RateLimitedError,
    ServiceUnavailableError,
    SwitchboardConnectionError,
    SwitchboardError,
    UnauthorizedError,
    UnprocessableError,
)
from .webhooks import WebhookVerificationError, sign, verify_webhook  # noqa: E402

__all__ = [
    "BadRequestError",
    "Client",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "PreconditionFailedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "SwitchboardConnectionError",
    "SwitchboardError",
    "UnauthorizedError",
    "UnprocessableError",
    "WebhookVerificationError",
    "sign",
    "verify_webhook",
]
