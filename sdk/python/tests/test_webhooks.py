"""verify_webhook against deliveries signed by the live gateway, and the published vector."""
import base64
import json
import time
import unittest

import switchboard
from support import LocalServer, live_client
from switchboard import WebhookVerificationError, verify_webhook

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(**overrides):
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": VECTOR_SIG}
    headers.update(overrides)
    return headers


class VectorTest(unittest.TestCase):
    """The Standard Webhooks published vector (timestamps pinned with ``now``)."""

    def test_published_vector(self) -> None:
        event = verify_webhook(VECTOR_BODY, vector_headers(), VECTOR_SECRET, now=VECTOR_TS)
        self.assertEqual(event, {"test": 2432232314})

    def test_header_names_in_any_case(self) -> None:
        headers = {k.title(): v for k, v in vector_headers().items()}
        verify_webhook(VECTOR_BODY, headers, VECTOR_SECRET, now=VECTOR_TS)

    def test_refusals(self) -> None:
        cases = {
            "tampered body": (VECTOR_BODY.replace(b"2", b"3"), vector_headers(), VECTOR_SECRET, VECTOR_TS),
            "wrong secret": (VECTOR_BODY, vector_headers(), "whsec_" + base64.b64encode(b"x" * 32).decode(), VECTOR_TS),
            "stale": (VECTOR_BODY, vector_headers(), VECTOR_SECRET, VECTOR_TS + 301),
            "future": (VECTOR_BODY, vector_headers(), VECTOR_SECRET, VECTOR_TS - 301),
            "other id": (VECTOR_BODY, vector_headers(**{"webhook-id": "msg_other"}), VECTOR_SECRET, VECTOR_TS),
            "v1a only": (VECTOR_BODY, vector_headers(**{"webhook-signature": "v1a," + VECTOR_SIG[3:]}), VECTOR_SECRET, VECTOR_TS),
            "no signature": (VECTOR_BODY, {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS)}, VECTOR_SECRET, VECTOR_TS),
            "bad timestamp": (VECTOR_BODY, vector_headers(**{"webhook-timestamp": "soon"}), VECTOR_SECRET, VECTOR_TS),
        }
        for name, (body, headers, secret, now) in cases.items():
            with self.subTest(name):
                with self.assertRaises(WebhookVerificationError):
                    verify_webhook(body, headers, secret, now=now)

    def test_any_entry_of_several_may_match(self) -> None:
        headers = vector_headers(**{"webhook-signature": "v1,bm9wZQ== " + VECTOR_SIG})
        verify_webhook(VECTOR_BODY, headers, VECTOR_SECRET, now=VECTOR_TS)

    def test_tolerance_is_a_parameter(self) -> None:
        verify_webhook(VECTOR_BODY, vector_headers(), VECTOR_SECRET, tolerance_s=600, now=VECTOR_TS + 500)


class GatewaySignedTest(unittest.TestCase):
    """A local receiver subscribed to the live gateway; what arrives is verified as it came."""

    def setUp(self) -> None:
        self.client = live_client()
        self.receiver = LocalServer(lambda rec, i: (204, {}, b""))
        self.addCleanup(self.receiver.close)
        self.hook = self.client.create_webhook(
            f"{self.receiver.url}/hook", ["message.created"], description="python sdk test"
        )
        self.addCleanup(self.client.delete_webhook, self.hook["id"])
        self.assertTrue(self.hook["secret"].startswith("whsec_"))

    def arrival(self, event_type: str, seen=()):
        return self.receiver.wait_for(
            lambda r: r.path == "/hook" and json.loads(r.body)["type"] == event_type and r not in seen
        )

    def test_gateway_deliveries_verify_and_forgeries_do_not(self) -> None:
        secret = self.hook["secret"]
        self.assertEqual(self.client.test_webhook(self.hook["id"])["eventType"], "ping")
        ping = self.arrival("ping")
        event = verify_webhook(ping.body, ping.headers, secret)
        self.assertEqual(event["data"]["webhookId"], self.hook["id"])
        self.assertEqual(ping.headers["webhook-id"], event["id"])

        conv = self.client.create_conversation()["id"]
        self.client.create_message(conv, "context", "signed")
        created = self.arrival("message.created")
        event = verify_webhook(created.body, created.headers, secret)
        self.assertEqual(event["data"]["message"]["text"], "signed")

        with self.assertRaises(WebhookVerificationError):
            verify_webhook(created.body.replace(b"signed", b"SIGNED"), created.headers, secret)
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(created.body, created.headers, "whsec_" + base64.b64encode(b"k" * 32).decode())
        with self.assertRaises(WebhookVerificationError):
            stale = int(created.headers["webhook-timestamp"]) + 301
            verify_webhook(created.body, created.headers, secret, now=stale)
        self.assertLess(abs(int(created.headers["webhook-timestamp"]) - time.time()), 60)

        deliveries = list(self.client.iter_deliveries(self.hook["id"], take=1))
        self.assertGreaterEqual(len(deliveries), 2)
        one = self.client.get_delivery(self.hook["id"], deliveries[0]["id"])
        self.assertEqual(one["id"], deliveries[0]["id"])

    def test_both_secrets_verify_during_a_rotation(self) -> None:
        old = self.hook["secret"]
        rotated = self.client.update_webhook(self.hook["id"], rotate_secret=True)
        new = rotated["secret"]
        self.assertNotEqual(new, old)
        self.assertNotIn("secret", self.client.get_webhook(self.hook["id"]))
        self.client.test_webhook(self.hook["id"])
        ping = self.arrival("ping")
        self.assertEqual(len(ping.headers["webhook-signature"].split(" ")), 2)
        self.assertEqual(verify_webhook(ping.body, ping.headers, new)["type"], "ping")
        self.assertEqual(verify_webhook(ping.body, ping.headers, old)["type"], "ping")

    def test_replay_and_list(self) -> None:
        first = self.client.test_webhook(self.hook["id"])
        self.arrival("ping")
        done = None
        deadline = time.time() + 10
        while time.time() < deadline:
            done = self.client.get_delivery(self.hook["id"], first["id"])
            if done["status"] == "succeeded":
                break
            time.sleep(0.05)
        self.assertEqual(done["status"], "succeeded")
        copy = self.client.replay_delivery(self.hook["id"], first["id"])
        self.assertEqual(copy["replayOf"], first["id"])
        self.assertEqual(self.client.replay_dead(self.hook["id"], "2020-01-01T00:00:00Z")["replayed"], 0)
        ids = [w["id"] for w in self.client.iter_webhooks(take=1)]
        self.assertIn(self.hook["id"], ids)
        self.assertFalse(self.client.update_webhook(self.hook["id"], enabled=False)["enabled"])
        with self.assertRaises(switchboard.NotFoundError):
            self.client.get_webhook("wh_" + "0" * 26)


if __name__ == "__main__":
    unittest.main()
