"""Every error class from real gateway answers (and, for what the gateway cannot be made to answer on
demand, from a local server), and retries with one Idempotency-Key per logical call."""
import json
import socket
import time
import unittest

import switchboard
from support import API_KEY, URL, LocalServer, live_client

NO_SUCH_CONV = "conv_" + "0" * 26
NO_SUCH_CONTACT = "ct_" + "0" * 26


def problem(status: int, code: str, headers=None):
    body = {"type": f"https://switchboard.dev/errors/{code}", "status": status, "code": code, "detail": code}
    return status, {"Content-Type": "application/problem+json", "X-Request-Id": "req-1", **(headers or {})}, (
        json.dumps(body).encode()
    )


class GatewayErrorsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = live_client()

    def test_401_wrong_key(self) -> None:
        bad = switchboard.Client(URL, "wrong-key-0123456789abcdef", max_retries=0)
        with self.assertRaises(switchboard.UnauthorizedError) as ctx:
            bad.list_conversations()
        err = ctx.exception
        self.assertEqual((err.status, err.code), (401, "GW_ERR_UNAUTHORIZED"))
        self.assertTrue(err.request_id)
        self.assertIsInstance(err, switchboard.SwitchboardError)

    def test_404_unknown_conversation(self) -> None:
        with self.assertRaises(switchboard.NotFoundError) as ctx:
            self.client.get_conversation(NO_SUCH_CONV)
        self.assertEqual(ctx.exception.code, "GW_ERR_NOT_FOUND")
        self.assertIn(NO_SUCH_CONV, ctx.exception.detail)

    def test_400_validation_names_the_field(self) -> None:
        cid = self.client.create_conversation()["id"]
        with self.assertRaises(switchboard.BadRequestError) as ctx:
            self.client.create_message(cid, "bogus", "text")
        err = ctx.exception
        self.assertEqual((err.status, err.code), (400, "GW_ERR_VALIDATION"))
        self.assertIn("type", err.fields)
        with self.assertRaises(switchboard.BadRequestError) as ctx:
            self.client.list_messages(cid, take=500)
        self.assertIn("take", ctx.exception.fields)
        with self.assertRaises(switchboard.BadRequestError) as ctx:
            self.client.list_conversations(cursor="not-a-cursor")
        self.assertEqual(ctx.exception.code, "GW_ERR_INVALID_CURSOR")

    def test_409_release_outside_handoff(self) -> None:
        cid = self.client.create_conversation()["id"]
        with self.assertRaises(switchboard.ConflictError) as ctx:
            self.client.release_handoff(cid)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (409, "GW_ERR_NOT_IN_HANDOFF"))
        # A chatbot message into a conversation that is not an API session.
        other = self.client.create_conversation(channel="sms")["id"]
        with self.assertRaises(switchboard.ConflictError) as ctx:
            self.client.send_message(other, "hi")
        self.assertEqual(ctx.exception.code, "GW_ERR_CONFLICT")

    def test_422_merge_into_itself(self) -> None:
        with self.assertRaises(switchboard.UnprocessableError) as ctx:
            self.client.merge_contacts(NO_SUCH_CONTACT, NO_SUCH_CONTACT)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (422, "GW_ERR_MERGE_SELF"))

    def test_the_key_never_shows(self) -> None:
        self.assertNotIn(API_KEY, repr(self.client))
        try:
            self.client.get_conversation(NO_SUCH_CONV)
        except switchboard.SwitchboardError as err:
            self.assertNotIn(API_KEY, repr(err) + str(err) + json.dumps(err.problem))


class LocalAnswersTest(unittest.TestCase):
    """Statuses the gateway gives only under load or failure, served by a local stand-in."""

    def serve(self, answers):
        server = LocalServer(lambda rec, i: answers[min(i, len(answers) - 1)])
        self.addCleanup(server.close)
        return server

    def test_each_status_maps_to_its_class(self) -> None:
        cases = [
            (400, switchboard.BadRequestError),
            (401, switchboard.UnauthorizedError),
            (403, switchboard.ForbiddenError),
            (404, switchboard.NotFoundError),
            (409, switchboard.ConflictError),
            (422, switchboard.UnprocessableError),
            (429, switchboard.RateLimitedError),
            (503, switchboard.ServiceUnavailableError),
            (500, switchboard.SwitchboardError),
        ]
        by_status = {status: problem(status, f"GW_ERR_{status}", {"Retry-After": "7"}) for status, _ in cases}
        server = LocalServer(lambda rec, i: by_status[int(rec.path.rsplit("_", 1)[1])])
        self.addCleanup(server.close)
        client = switchboard.Client(server.url, "sk_local_0123456789", max_retries=0)
        for status, cls in cases:
            with self.subTest(status=status):
                with self.assertRaises(cls) as ctx:
                    client.get_conversation(f"conv_{status}")
                err = ctx.exception
                self.assertIs(type(err), cls)
                self.assertEqual((err.status, err.code, err.request_id), (status, f"GW_ERR_{status}", "req-1"))
                self.assertEqual(err.retry_after, 7.0)

    def test_503_with_retry_after_is_retried_with_the_same_idempotency_key(self) -> None:
        server = self.serve(
            [
                problem(503, "GW_ERR_QUEUE_FULL", {"Retry-After": "1"}),
                (201, {"Content-Type": "application/json"}, b'{"sessionId":"s","conversationId":"c"}'),
            ]
        )
        client = switchboard.Client(server.url, "sk_local_0123456789", max_retries=2)
        started = time.monotonic()
        self.assertEqual(client.create_session()["conversationId"], "c")
        elapsed = time.monotonic() - started
        self.assertEqual(len(server.requests), 2)
        keys = [r.headers.get("idempotency-key") for r in server.requests]
        self.assertTrue(keys[0])
        self.assertEqual(keys[0], keys[1])
        self.assertGreaterEqual(elapsed, 1.0, "Retry-After: 1 was not honoured")
        self.assertLess(elapsed, 5.0)
        self.assertEqual(server.requests[0].headers["authorization"], "Bearer sk_local_0123456789")
        self.assertNotIn("sk_local", server.requests[0].path)
        # The next logical call gets a key of its own.
        client.create_session()
        self.assertNotEqual(server.requests[2].headers["idempotency-key"], keys[0])

    def test_get_sends_no_idempotency_key_and_429_is_retried(self) -> None:
        server = self.serve(
            [
                problem(429, "GW_ERR_RATE_LIMITED", {"Retry-After": "0"}),
                (200, {"Content-Type": "application/json"}, b'{"items":[],"cursor":null}'),
            ]
        )
        client = switchboard.Client(server.url, "sk_local_0123456789", backoff_base=0.01)
        self.assertEqual(client.list_conversations(), {"items": [], "cursor": None})
        self.assertEqual(len(server.requests), 2)
        self.assertNotIn("idempotency-key", server.requests[0].headers)

    def test_retries_are_bounded(self) -> None:
        server = self.serve([problem(503, "GW_ERR_SHUTTING_DOWN", {"Retry-After": "0"})])
        client = switchboard.Client(server.url, "sk_local_0123456789", max_retries=2, backoff_base=0.01)
        with self.assertRaises(switchboard.ServiceUnavailableError) as ctx:
            client.delete_conversation("conv_x")
        self.assertEqual(ctx.exception.code, "GW_ERR_SHUTTING_DOWN")
        self.assertEqual(len(server.requests), 3)
        self.assertEqual(len({r.headers["idempotency-key"] for r in server.requests}), 1)

    def test_400_is_not_retried(self) -> None:
        server = self.serve([problem(400, "GW_ERR_VALIDATION")])
        client = switchboard.Client(server.url, "sk_local_0123456789", backoff_base=0.01)
        with self.assertRaises(switchboard.BadRequestError):
            client.create_conversation()
        self.assertEqual(len(server.requests), 1)

    def test_connection_errors_are_retried_then_raised(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        slept = []
        client = switchboard.Client(
            f"http://127.0.0.1:{port}", "sk_local_0123456789", timeout=2, max_retries=2, sleep=slept.append
        )
        with self.assertRaises(switchboard.SwitchboardConnectionError) as ctx:
            client.list_conversations()
        self.assertIsNone(ctx.exception.status)
        self.assertEqual(len(slept), 2)
        self.assertTrue(all(0 < s <= client.backoff_max for s in slept))
        self.assertNotIn("sk_local", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
