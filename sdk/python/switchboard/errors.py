"""Typed exceptions for the gateway's problem+json answers (RFC 9457)."""
from typing import Any, Dict, List, Optional


class SwitchboardError(Exception):
    """A request the gateway refused, or one that never got an answer.

    ``status`` is the HTTP status (``None`` when no answer arrived), ``code`` the stable problem code
    (``GW_ERR_...``) to branch on, ``detail`` the text for people, ``request_id`` the
    ``X-Request-Id`` to quote when asking about it, ``retry_after`` the seconds the gateway asked to
    wait (429/503), ``errors`` the ``[{field, message}]`` of a validation error and ``problem`` the
    whole problem document.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        detail: Optional[str] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        errors: Optional[List[Dict[str, Any]]] = None,
        problem: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after
        self.errors = errors or []
        self.problem = problem or {}

    @property
    def fields(self) -> List[str]:
        """The fields a validation error names (dotted paths, query parameters or ``(body)``)."""
        return [e.get("field", "") for e in self.errors if isinstance(e, dict)]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"detail={self.detail!r}, request_id={self.request_id!r})"
        )


class SwitchboardConnectionError(SwitchboardError):
    """No answer: the connection was refused, reset or timed out (after the retries)."""


class BadRequestError(SwitchboardError):
    """400: validation (``GW_ERR_VALIDATION``, see ``errors``), bad JSON, bad cursor, refused target."""


class UnauthorizedError(SwitchboardError):
    """401: missing or wrong API key."""


class ForbiddenError(SwitchboardError):
    """403: the API key lacks the scope of the route (``GW_ERR_INSUFFICIENT_SCOPE``; see ``scope``)."""

    @property
    def scope(self) -> Optional[str]:
        """The scope the key would need, when the gateway named one."""
        value = self.problem.get("scope")
        return value if isinstance(value, str) else None


class NotFoundError(SwitchboardError):
    """404: the conversation, message, contact, webhook or delivery does not exist."""


class ConflictError(SwitchboardError):
    """409: the request conflicts with the current state (e.g. ``GW_ERR_NOT_IN_HANDOFF``)."""


class PreconditionFailedError(SwitchboardError):
    """412: ``If-Match`` named a version that is no longer the current one (``GW_ERR_PRECONDITION_FAILED``);
    read again and retry."""


class UnprocessableError(SwitchboardError):
    """422: understood but refused (e.g. ``GW_ERR_MERGE_SELF``)."""


class RateLimitedError(SwitchboardError):
    """429: too many requests; ``retry_after`` says when to come back."""


class ServiceUnavailableError(SwitchboardError):
    """503: queue full, store unavailable or shutting down; ``retry_after`` says when to come back."""


STATUS_ERRORS = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: UnprocessableError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_for(
    status: int,
    problem: Dict[str, Any],
    request_id: Optional[str],
    retry_after: Optional[float],
) -> SwitchboardError:
    """Builds the exception for one non-2xx answer."""
    cls = STATUS_ERRORS.get(status, SwitchboardError)
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    if retry_after is None and isinstance(problem.get("retryAfter"), (int, float)):
        retry_after = float(problem["retryAfter"])
    rid = request_id or (problem.get("requestId") if isinstance(problem.get("requestId"), str) else None)
    errors = problem.get("errors") if isinstance(problem.get("errors"), list) else None
    message = f"{status} {code or 'HTTP error'}" + (f": {detail}" if detail else "")
    return cls(
        message,
        status=status,
        code=code,
        detail=detail,
        request_id=rid,
        retry_after=retry_after,
        errors=errors,
        problem=problem,
    )
