"""The bot configuration calls against the live gateway: read, merge patch, replace, the version
check (``If-Match``), validation naming the field, health and the test request. Every test leaves the
stored configuration empty again, so the other suites see the environment's bot."""
import unittest

from support import live_client

import switchboard


class BotConfigTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = live_client()

    def tearDown(self) -> None:
        self.client.replace_bot_config({})

    def test_read_patch_replace_with_versions(self) -> None:
        first = self.client.get_bot_config()
        self.assertNotIn("secret", first)
        self.assertIn("secretSet", first)
        self.assertEqual(first["breaker"].keys(), {"threshold", "cooldownMs"})

        patched = self.client.update_bot_config(
            {"greeting": "Hello from the SDK", "breaker": {"threshold": 9}}, if_version=first["version"]
        )
        self.assertEqual(patched["greeting"], "Hello from the SDK")
        self.assertEqual(patched["breaker"]["threshold"], 9)
        self.assertEqual(patched["stored"], ["breaker.threshold", "greeting"])
        self.assertGreater(patched["version"], first["version"])

        # The version read first is stale now: nothing changes.
        with self.assertRaises(switchboard.PreconditionFailedError) as caught:
            self.client.update_bot_config({"greeting": "lost update"}, if_version=first["version"])
        self.assertEqual(caught.exception.status, 412)
        self.assertEqual(caught.exception.code, "GW_ERR_PRECONDITION_FAILED")
        self.assertEqual(self.client.get_bot_config()["greeting"], "Hello from the SDK")

        removed = self.client.update_bot_config({"greeting": None})
        self.assertIsNone(removed["greeting"])
        replaced = self.client.replace_bot_config({"historyLimit": 5}, if_version=removed["version"])
        self.assertEqual(replaced["stored"], ["historyLimit"])
        self.assertEqual(replaced["breaker"]["threshold"], first["breaker"]["threshold"])

    def test_bad_values_name_the_field_and_change_nothing(self) -> None:
        before = self.client.get_bot_config()
        with self.assertRaises(switchboard.BadRequestError) as caught:
            self.client.update_bot_config({"timeoutMs": 999_999, "colour": "blue"})
        self.assertEqual(caught.exception.code, "GW_ERR_VALIDATION")
        self.assertEqual(sorted(caught.exception.fields), ["colour", "timeoutMs"])
        with self.assertRaises(switchboard.BadRequestError) as caught:
            self.client.replace_bot_config({"url": "ftp://bot.example.com/"})
        self.assertEqual(caught.exception.fields, ["url"])
        self.assertEqual(self.client.get_bot_config()["version"], before["version"])

    def test_health_and_test_request(self) -> None:
        health = self.client.bot_health()
        self.assertIn(health["breaker"]["state"], ("closed", "open", "half-open"))
        self.assertEqual(health["scope"], "process")
        answer = self.client.test_bot("ping from python")
        self.assertTrue(answer["ok"])
        # The live suites run against the demo bot.
        self.assertEqual(answer["bot"], "demo")
        self.assertEqual([r["text"] for r in answer["response"]["replies"]], ["You said: ping from python"])


if __name__ == "__main__":
    unittest.main()
