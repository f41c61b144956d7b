"""The ``/v1`` REST client: every call the gateway serves, plain dicts in and out."""
import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

from . import __version__
from .errors import SwitchboardConnectionError, SwitchboardError, error_for

Json = Dict[str, Any]
Params = Optional[Mapping[str, Any]]

#: Statuses worth another try: the gateway asks to come back later.
RETRY_STATUSES = frozenset({429, 503})
#: Methods that change something; each logical call carries one ``Idempotency-Key``.
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def _segment(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _query(params: Params) -> str:
    """Encodes query parameters; ``meta={"k": "v"}`` becomes ``meta[k]=v``, ``None`` values are left out."""
    if not params:
        return ""
    pairs: List[tuple] = []
    for name, value in params.items():
        if value is None:
            continue
        if name == "meta" and isinstance(value, Mapping):
            for k, v in value.items():
                pairs.append((f"meta[{k}]", _scalar(v)))
        else:
            pairs.append((name, _scalar(value)))
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _body(**fields: Any) -> Json:
    """A request body without the fields left as ``None``."""
    return {k: v for k, v in fields.items() if v is not None}


def _retry_after(value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: fall back to the backoff
    return max(0.0, seconds)


class Client:
    """A client for one gateway.

    ``base_url`` is the gateway's address (``http://localhost:3000``; a trailing ``/v1`` is accepted),
    ``api_key`` one of its ``API_KEYS`` or a key made with :meth:`create_key`. ``timeout`` bounds each attempt in seconds. Connection errors,
    ``429`` and ``503`` are retried up to ``max_retries`` times with jittered exponential backoff
    (``backoff_base`` seconds doubling up to ``backoff_max``), waiting at least the ``Retry-After`` the
    gateway sent (capped at ``max_retry_after``). Answers are plain dicts (lists are
    ``{"items": [...], "cursor": ...}``); failures raise :class:`~switchboard.SwitchboardError`
    subclasses.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        max_retries: int = 3,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        user_agent: Optional[str] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        base = base_url.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        self.base_url = base
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent or f"switchboard-python/{__version__}"
        self._sleep = sleep

    def __repr__(self) -> str:
        # Never the key.
        return f"Client(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ transport

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json_body: Optional[Any] = None,
        raw: bool = False,
        idempotency_key: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Any:
        """One logical call to ``/v1{path}``, with its retries. Returns the parsed JSON (``None`` for an
        empty body), or the raw bytes with ``raw=True``. ``headers`` are sent besides the client's own
        (e.g. ``If-Match``)."""
        method = method.upper()
        url = f"{self.base_url}/v1{path}{_query(params)}"
        extra = dict(headers or {})
        headers = {
            **extra,
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json, application/problem+json",
            "User-Agent": self.user_agent,
        }
        data = None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if method in WRITE_METHODS:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        attempt = 0
        while True:
            try:
                return self._attempt(method, url, headers, data, raw)
            except SwitchboardError as err:
                retryable = isinstance(err, SwitchboardConnectionError) or err.status in RETRY_STATUSES
                if not retryable or attempt >= self.max_retries:
                    raise
                self._sleep(self._delay(attempt, err.retry_after))
                attempt += 1

    def _delay(self, attempt: int, retry_after: Optional[float]) -> float:
        """Seconds before retry ``attempt`` (0-based): "equal jitter" on a doubling ceiling, and never
        less than the ``Retry-After`` the gateway sent (capped), plus up to 10 % so that clients told
        the same time do not all come back at once."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        jittered = random.uniform(ceiling / 2, ceiling)
        if retry_after is None or retry_after <= 0:
            return jittered
        wait = min(retry_after, self.max_retry_after)
        return wait + random.uniform(0, 0.1 * wait)

    def _attempt(self, method: str, url: str, headers: Mapping[str, str], data: Optional[bytes], raw: bool) -> Any:
        req = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                body = res.read()
                if raw:
                    return body
                return json.loads(body.decode("utf-8")) if body else None
        except urllib.error.HTTPError as res:
            try:
                body = res.read()
            except (OSError, ValueError):
                body = b""
            problem: Json = {}
            try:
                parsed = json.loads(body.decode("utf-8")) if body else {}
                if isinstance(parsed, dict):
                    problem = parsed
            except (UnicodeDecodeError, ValueError):
                problem = {}
            raise error_for(
                res.code,
                problem,
                res.headers.get("X-Request-Id") if res.headers else None,
                _retry_after(res.headers.get("Retry-After") if res.headers else None),
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            # The URL is safe to show (the key is never in it); the headers are not shown.
            raise SwitchboardConnectionError(f"{method} {url.split('?', 1)[0]}: {reason}") from None

    def _pages(self, path: str, params: Params) -> Iterator[Json]:
        query = dict(params or {})
        while True:
            page = self.request("GET", path, params=query)
            yield from page.get("items", [])
            cursor = page.get("cursor", page.get("nextCursor"))
            if not cursor:
                return
            query["cursor"] = cursor

    # ------------------------------------------------------------------ chatbot API

    def create_session(self, user: Optional[Json] = None, meta: Optional[Json] = None) -> Json:
        """``POST /v1/sessions`` → ``{"sessionId", "conversationId"}``."""
        return self.request("POST", "/sessions", json_body=_body(user=user, meta=meta))

    def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        meta: Optional[Json] = None,
        client_message_id: Optional[str] = None,
        wait: Optional[float] = None,
    ) -> Json:
        """``POST /v1/messages``: a user message into an ``api`` conversation. ``{"message", "replies"}``
        when the bot answered within ``wait`` seconds, else ``{"status": "queued", "message"}``."""
        body = _body(conversationId=conversation_id, text=text, meta=meta, clientMessageId=client_message_id, wait=wait)
        return self.request("POST", "/messages", json_body=body)

    def send(
        self,
        conversation_id: str,
        text: str,
        *,
        name: Optional[str] = None,
        attachments: Optional[List[Json]] = None,
        quick_replies: Optional[List[Any]] = None,
        meta: Optional[Json] = None,
        from_agent: Optional[str] = None,
    ) -> Json:
        """``POST /v1/conversations/:id/send``: a message out through the conversation's channel. With
        ``from_agent`` (an agent participant's id) it is that agent's message (``type: "agent"``); an
        ``open`` conversation then goes to handoff, assigned to that agent."""
        body = _body(
            text=text,
            name=name,
            attachments=attachments,
            quickReplies=quick_replies,
            meta=meta,
            **({"from": {"id": from_agent}} if from_agent is not None else {}),
        )
        return self.request("POST", f"/conversations/{_segment(conversation_id)}/send", json_body=body)

    # ------------------------------------------------------------------ conversations

    def create_conversation(
        self, *, channel: Optional[str] = None, participants: Optional[List[Json]] = None, meta: Optional[Json] = None
    ) -> Json:
        """``POST /v1/conversations``."""
        return self.request("POST", "/conversations", json_body=_body(channel=channel, participants=participants, meta=meta))

    def list_conversations(self, **params: Any) -> Json:
        """``GET /v1/conversations``: one page. Parameters: ``take``, ``order``, ``cursor``, ``channel``,
        ``status``, ``meta`` (a dict of ``meta[...]`` filters)."""
        return self.request("GET", "/conversations", params=params)

    def iter_conversations(self, **params: Any) -> Iterator[Json]:
        """Every conversation, following ``cursor`` page by page."""
        return self._pages("/conversations", params)

    def get_conversation(self, conversation_id: str) -> Json:
        """``GET /v1/conversations/:id``."""
        return self.request("GET", f"/conversations/{_segment(conversation_id)}")

    def update_conversation(self, conversation_id: str, *, status: Optional[str] = None, meta: Optional[Json] = None) -> Json:
        """``PATCH /v1/conversations/:id``: ``status`` and/or a ``meta`` merge (``None`` inside ``meta``
        removes a key)."""
        body: Json = {}
        if status is not None:
            body["status"] = status
        if meta is not None:
            body["meta"] = meta
        return self.request("PATCH", f"/conversations/{_segment(conversation_id)}", json_body=body)

    def delete_conversation(self, conversation_id: str) -> Json:
        """``DELETE /v1/conversations/:id``: erases it with all its messages."""
        return self.request("DELETE", f"/conversations/{_segment(conversation_id)}")

    def export_conversation(self, conversation_id: str, format: str = "jsonl") -> bytes:
        """``GET /v1/conversations/:id/export``: the transcript, ``jsonl`` or ``text``, as bytes."""
        path = f"/conversations/{_segment(conversation_id)}/export"
        return self.request("GET", path, params={"format": format}, raw=True)

    # ------------------------------------------------------------------ messages

    def list_messages(self, conversation_id: str, **params: Any) -> Json:
        """``GET /v1/conversations/:id/messages``: one page (``take``, ``order``, ``cursor``, ``type``, ``meta``)."""
        return self.request("GET", f"/conversations/{_segment(conversation_id)}/messages", params=params)

    def iter_messages(self, conversation_id: str, **params: Any) -> Iterator[Json]:
        """The whole history in ``seq`` order, following ``cursor``."""
        return self._pages(f"/conversations/{_segment(conversation_id)}/messages", params)

    def create_message(
        self,
        conversation_id: str,
        type: str,
        text: str,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        meta: Optional[Json] = None,
    ) -> Json:
        """``POST /v1/conversations/:id/messages``: stores a message without running the bot."""
        body = _body(type=type, text=text, name=name, description=description, meta=meta)
        return self.request("POST", f"/conversations/{_segment(conversation_id)}/messages", json_body=body)

    def get_message(self, conversation_id: str, message_id: str) -> Json:
        """``GET /v1/conversations/:id/messages/:mid``."""
        return self.request("GET", f"/conversations/{_segment(conversation_id)}/messages/{_segment(message_id)}")

    def update_message(self, conversation_id: str, message_id: str, **fields: Any) -> Json:
        """``PATCH /v1/conversations/:id/messages/:mid`` with ``text``, ``name``, ``description``, ``meta``."""
        path = f"/conversations/{_segment(conversation_id)}/messages/{_segment(message_id)}"
        return self.request("PATCH", path, json_body=fields)

    def delete_message(self, conversation_id: str, message_id: str) -> Json:
        """``DELETE /v1/conversations/:id/messages/:mid``."""
        return self.request("DELETE", f"/conversations/{_segment(conversation_id)}/messages/{_segment(message_id)}")

    # ------------------------------------------------------------------ handoff

    def request_handoff(self, conversation_id: str, *, reason: Optional[str] = None, assignee: Optional[str] = None) -> Json:
        """``POST /v1/conversations/:id/handoff``: hands the conversation to human agents."""
        body = _body(reason=reason, assignee=assignee)
        return self.request("POST", f"/conversations/{_segment(conversation_id)}/handoff", json_body=body)

    def assign_handoff(self, conversation_id: str, agent: Json) -> Json:
        """``POST /v1/conversations/:id/handoff/assign`` with ``agent`` = ``{"name", "id"?, "address"?}``."""
        path = f"/conversations/{_segment(conversation_id)}/handoff/assign"
        return self.request("POST", path, json_body={"agent": agent})

    def release_handoff(self, conversation_id: str) -> Json:
        """``DELETE /v1/conversations/:id/handoff``: the bot gets the conversation back
        (``409 GW_ERR_NOT_IN_HANDOFF`` when it is not in handoff)."""
        return self.request("DELETE", f"/conversations/{_segment(conversation_id)}/handoff")

    # ------------------------------------------------------------------ participants and agents

    def list_participants(self, conversation_id: str) -> Json:
        """``GET /v1/conversations/:id/participants``: ``{"items": [...]}``."""
        return self.request("GET", f"/conversations/{_segment(conversation_id)}/participants")

    def add_participant(
        self,
        conversation_id: str,
        role: str,
        name: str,
        *,
        address: Optional[str] = None,
        id: Optional[str] = None,
    ) -> Json:
        """``POST /v1/conversations/:id/participants``: a user or agent joins (an ``activity`` message
        records it); adding the same participant again changes nothing."""
        body = _body(role=role, name=name, address=address, id=id)
        return self.request("POST", f"/conversations/{_segment(conversation_id)}/participants", json_body=body)

    def remove_participant(self, conversation_id: str, participant_id: str) -> Json:
        """``DELETE /v1/conversations/:id/participants/:pid``: ``{"id"}``; the leave is recorded."""
        path = f"/conversations/{_segment(conversation_id)}/participants/{_segment(participant_id)}"
        return self.request("DELETE", path)

    def typing(self, conversation_id: str, agent_id: str, on: bool = True) -> None:
        """``POST /v1/conversations/:id/typing``: the agent is typing (relayed to web chat)."""
        body = {"from": {"id": agent_id}, "on": on}
        self.request("POST", f"/conversations/{_segment(conversation_id)}/typing", json_body=body)

    # ------------------------------------------------------------------ attachments

    def download_attachment(self, attachment_id: str) -> bytes:
        """``GET /v1/attachments/:id``: an inbound attachment's bytes (served while the email channel
        is on; 404 once expired)."""
        return self.request("GET", f"/attachments/{_segment(attachment_id)}", raw=True)

    # ------------------------------------------------------------------ contacts

    def list_contacts(self, **params: Any) -> Json:
        """``GET /v1/contacts``: one page (``take``, ``order``, ``cursor``, ``q``, ...)."""
        return self.request("GET", "/contacts", params=params)

    def iter_contacts(self, **params: Any) -> Iterator[Json]:
        """Every contact, following ``cursor``."""
        return self._pages("/contacts", params)

    def contact_suggestions(self) -> Json:
        """``GET /v1/contacts/suggestions``: possible duplicates to merge."""
        return self.request("GET", "/contacts/suggestions")

    def get_contact(self, contact_id: str) -> Json:
        """``GET /v1/contacts/:id``."""
        return self.request("GET", f"/contacts/{_segment(contact_id)}")

    def update_contact(self, contact_id: str, **fields: Any) -> Json:
        """``PATCH /v1/contacts/:id`` with ``name`` and/or ``meta``."""
        return self.request("PATCH", f"/contacts/{_segment(contact_id)}", json_body=fields)

    def delete_contact(self, contact_id: str) -> Json:
        """``DELETE /v1/contacts/:id``: erases the contact with all of theirs."""
        return self.request("DELETE", f"/contacts/{_segment(contact_id)}")

    def list_contact_conversations(self, contact_id: str, **params: Any) -> Json:
        """``GET /v1/contacts/:id/conversations``: one page."""
        return self.request("GET", f"/contacts/{_segment(contact_id)}/conversations", params=params)

    def iter_contact_conversations(self, contact_id: str, **params: Any) -> Iterator[Json]:
        """Every conversation of the contact, following ``cursor``."""
        return self._pages(f"/contacts/{_segment(contact_id)}/conversations", params)

    def contact_timeline(self, contact_id: str, **params: Any) -> Json:
        """``GET /v1/contacts/:id/timeline``: one page."""
        return self.request("GET", f"/contacts/{_segment(contact_id)}/timeline", params=params)

    def iter_contact_timeline(self, contact_id: str, **params: Any) -> Iterator[Json]:
        """The contact's whole timeline, following ``cursor``."""
        return self._pages(f"/contacts/{_segment(contact_id)}/timeline", params)

    def merge_contacts(self, contact_id: str, from_id: str, *, by: Optional[str] = None, reason: Optional[str] = None) -> Json:
        """``POST /v1/contacts/:id/merge``: merges ``from_id`` into ``contact_id``."""
        body = _body(**{"from": from_id, "by": by, "reason": reason})
        return self.request("POST", f"/contacts/{_segment(contact_id)}/merge", json_body=body)

    def unmerge_contact(
        self, contact_id: str, channel: str, address: str, *, by: Optional[str] = None, reason: Optional[str] = None
    ) -> Json:
        """``POST /v1/contacts/:id/unmerge``: splits one identity off into a contact of its own."""
        body = _body(channel=channel, address=address, by=by, reason=reason)
        return self.request("POST", f"/contacts/{_segment(contact_id)}/unmerge", json_body=body)

    # ------------------------------------------------------------------ outbound webhooks

    def create_webhook(self, url: str, events: List[str], *, description: Optional[str] = None) -> Json:
        """``POST /v1/webhooks`` → the subscription with its ``secret`` (shown this once)."""
        return self.request("POST", "/webhooks", json_body=_body(url=url, events=events, description=description))

    def list_webhooks(self, **params: Any) -> Json:
        """``GET /v1/webhooks``: one page."""
        return self.request("GET", "/webhooks", params=params)

    def iter_webhooks(self, **params: Any) -> Iterator[Json]:
        """Every subscription, following ``cursor``."""
        return self._pages("/webhooks", params)

    def get_webhook(self, webhook_id: str) -> Json:
        """``GET /v1/webhooks/:id`` (never the secret)."""
        return self.request("GET", f"/webhooks/{_segment(webhook_id)}")

    def update_webhook(
        self,
        webhook_id: str,
        *,
        url: Optional[str] = None,
        events: Optional[List[str]] = None,
        description: Optional[str] = None,
        enabled: Optional[bool] = None,
        rotate_secret: bool = False,
    ) -> Json:
        """``PATCH /v1/webhooks/:id``; ``rotate_secret=True`` answers with the new ``secret``."""
        body = _body(url=url, events=events, description=description, enabled=enabled, rotateSecret=rotate_secret or None)
        return self.request("PATCH", f"/webhooks/{_segment(webhook_id)}", json_body=body)

    def delete_webhook(self, webhook_id: str) -> Json:
        """``DELETE /v1/webhooks/:id``, with its queue and delivery log."""
        return self.request("DELETE", f"/webhooks/{_segment(webhook_id)}")

    def test_webhook(self, webhook_id: str) -> Json:
        """``POST /v1/webhooks/:id/test``: queues a ``ping`` → the delivery."""
        return self.request("POST", f"/webhooks/{_segment(webhook_id)}/test")

    def list_deliveries(self, webhook_id: str, **params: Any) -> Json:
        """``GET /v1/webhooks/:id/deliveries``: one page (``status``, ``take``, ``order``, ``cursor``)."""
        return self.request("GET", f"/webhooks/{_segment(webhook_id)}/deliveries", params=params)

    def iter_deliveries(self, webhook_id: str, **params: Any) -> Iterator[Json]:
        """The whole delivery log, following ``cursor``."""
        return self._pages(f"/webhooks/{_segment(webhook_id)}/deliveries", params)

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Json:
        """``GET /v1/webhooks/:id/deliveries/:did``."""
        return self.request("GET", f"/webhooks/{_segment(webhook_id)}/deliveries/{_segment(delivery_id)}")

    def replay_delivery(self, webhook_id: str, delivery_id: str, *, again: bool = False) -> Json:
        """``POST /v1/webhooks/:id/deliveries/:did/replay`` → the new delivery."""
        path = f"/webhooks/{_segment(webhook_id)}/deliveries/{_segment(delivery_id)}/replay"
        return self.request("POST", path, params={"again": True} if again else None)

    def replay_dead(self, webhook_id: str, since: Union[str, Any]) -> Json:
        """``POST /v1/webhooks/:id/replay?since=``: replays every delivery dead-lettered since then
        (an ISO 8601 string or an aware ``datetime``) → ``{"replayed", "items"}``."""
        since_text = since if isinstance(since, str) else since.isoformat()
        return self.request("POST", f"/webhooks/{_segment(webhook_id)}/replay", params={"since": since_text})

    # ------------------------------------------------------------------ API keys (scope admin)

    def create_key(self, name: str, scopes: List[str], *, rate_limit_per_min: Optional[int] = None) -> Json:
        """``POST /v1/keys`` → the key's record with ``key``, the API key itself, shown this once.

        ``scopes`` are among ``messages``, ``conversations:read``, ``conversations:write``, ``contacts``,
        ``webhooks``, ``admin`` and ``console``; ``rate_limit_per_min`` is the key's own limit (``0`` = none).
        If the first answer was lost and the retry replays it, ``key`` is ``None``: the gateway never keeps
        the key, so revoke that ``id`` and create another."""
        body = _body(name=name, scopes=scopes, rateLimitPerMin=rate_limit_per_min)
        return self.request("POST", "/keys", json_body=body)

    def list_keys(self, **params: Any) -> Json:
        """``GET /v1/keys``: one page (never the keys themselves)."""
        return self.request("GET", "/keys", params=params)

    def iter_keys(self, **params: Any) -> Iterator[Json]:
        """Every managed key, following ``cursor``."""
        return self._pages("/keys", params)

    def get_key(self, key_id: str) -> Json:
        """``GET /v1/keys/:id`` (never the key itself)."""
        return self.request("GET", f"/keys/{_segment(key_id)}")

    def revoke_key(self, key_id: str) -> Json:
        """``DELETE /v1/keys/:id``: refused by every gateway process within a second → ``{"id"}``."""
        return self.request("DELETE", f"/keys/{_segment(key_id)}")

    # ------------------------------------------------------------------ bot configuration

    def get_bot_config(self) -> Json:
        """``GET /v1/bot``: the bot configuration in force (never the secret: ``secretSet`` says whether
        one is set). Its ``version`` is what the ``ETag`` carries; pass it as ``if_version`` to a write."""
        return self.request("GET", "/bot")

    def replace_bot_config(self, config: Json, *, if_version: Optional[int] = None) -> Json:
        """``PUT /v1/bot``: replaces the stored configuration (fields left out are the environment's).
        With ``if_version``, only if it is still that version (``PreconditionFailedError`` otherwise)."""
        return self.request("PUT", "/bot", json_body=config, headers=_if_match(if_version))

    def update_bot_config(self, patch: Json, *, if_version: Optional[int] = None) -> Json:
        """``PATCH /v1/bot``: a JSON merge patch of the stored configuration (``None`` removes a value,
        back to the environment's). ``if_version`` as for :meth:`replace_bot_config`."""
        return self.request("PATCH", "/bot", json_body=patch, headers=_if_match(if_version))

    def bot_health(self) -> Json:
        """``GET /v1/bot/health``: breaker state, last error and recent latency of the process that answers."""
        return self.request("GET", "/bot/health")

    def test_bot(self, text: Optional[str] = None) -> Json:
        """``POST /v1/bot/test``: one signed test request to the bot → ``{"ok", "status", "latencyMs",
        "response" | "error"}``."""
        return self.request("POST", "/bot/test", json_body=_body(text=text))


def _if_match(version: Optional[int]) -> Optional[Dict[str, str]]:
    """The ``If-Match`` header for a configuration version (its ``ETag`` is the version, quoted)."""
    return None if version is None else {"If-Match": f'"{int(version)}"'}
