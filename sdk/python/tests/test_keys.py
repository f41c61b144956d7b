"""Managed API keys against the live gateway: create, use within the scopes, list, revoke."""
import unittest

import switchboard
from support import URL, live_client
from switchboard import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError


class KeysTest(unittest.TestCase):
    def setUp(self) -> None:
        self.sb = live_client()

    def test_create_use_list_revoke(self) -> None:
        made = self.sb.create_key("python reader", ["conversations:read"], rate_limit_per_min=100)
        self.assertTrue(made["id"].startswith("key_"))
        self.assertTrue(made["key"].startswith("sbk_"))
        self.assertEqual(made["scopes"], ["conversations:read"])
        self.assertEqual(made["rateLimitPerMin"], 100)

        reader = switchboard.Client(URL, made["key"], timeout=10)
        self.assertIn("items", reader.list_conversations(take=1))
        with self.assertRaises(ForbiddenError) as refused:
            reader.list_contacts()
        self.assertEqual(refused.exception.code, "GW_ERR_INSUFFICIENT_SCOPE")
        self.assertEqual(refused.exception.scope, "contacts")
        with self.assertRaises(ForbiddenError) as no_admin:
            reader.list_keys()
        self.assertEqual(no_admin.exception.scope, "admin")

        listed = [k for k in self.sb.iter_keys(take=2) if k["id"] == made["id"]]
        self.assertEqual(len(listed), 1)
        self.assertNotIn("key", listed[0])
        self.assertEqual(self.sb.get_key(made["id"])["name"], "python reader")
        self.assertNotIn(made["key"], repr(reader))

        self.assertEqual(self.sb.revoke_key(made["id"]), {"id": made["id"]})
        with self.assertRaises(UnauthorizedError):
            reader.list_conversations()
        with self.assertRaises(NotFoundError):
            self.sb.get_key(made["id"])

    def test_validation_names_the_field(self) -> None:
        with self.assertRaises(BadRequestError) as bad:
            self.sb.create_key("x", ["conversations:read"], rate_limit_per_min=-1)
        self.assertEqual(bad.exception.fields, ["rateLimitPerMin"])
        with self.assertRaises(BadRequestError) as unknown:
            self.sb.create_key("x", ["everything"])
        self.assertEqual(unknown.exception.fields, ["scopes.0"])


if __name__ == "__main__":
    unittest.main()
