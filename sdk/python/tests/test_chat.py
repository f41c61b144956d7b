"""Sessions, messages and the bot's reply, pagination and the other calls, against the live gateway."""
import json
import unittest
import uuid

from support import live_client


class ChatTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = live_client()

    def test_session_message_and_reply(self) -> None:
        session = self.client.create_session(user={"name": "Ann"})
        self.assertTrue(session["conversationId"].startswith("conv_"))
        answer = self.client.send_message(session["conversationId"], "hello there", wait=10)
        self.assertEqual(answer["message"]["text"], "hello there")
        self.assertEqual([r["text"] for r in answer["replies"]], ["You said: hello there"])
        history = list(self.client.iter_messages(session["conversationId"]))
        self.assertEqual([m["text"] for m in history], ["hello there", "You said: hello there"])

    def test_client_message_id_is_deduplicated(self) -> None:
        conv = self.client.create_session()["conversationId"]
        first = self.client.send_message(conv, "once", client_message_id="c-1", wait=10)
        again = self.client.send_message(conv, "once", client_message_id="c-1", wait=10)
        self.assertTrue(again.get("duplicate"))
        self.assertEqual(again["message"]["id"], first["message"]["id"])

    def test_pagination_follows_the_cursor_across_pages(self) -> None:
        conv = self.client.create_conversation(meta={"suite": "sdk"})["id"]
        for i in range(7):
            self.client.create_message(conv, "context", f"note {i}")
        page = self.client.list_messages(conv, take=3)
        self.assertEqual(len(page["items"]), 3)
        self.assertIsInstance(page["cursor"], str)
        texts = [m["text"] for m in self.client.iter_messages(conv, take=3)]
        self.assertEqual(texts, [f"note {i}" for i in range(7)])
        newest_first = [m["text"] for m in self.client.iter_messages(conv, take=2, order="desc")]
        self.assertEqual(newest_first, [f"note {i}" for i in reversed(range(7))])

        run = uuid.uuid4().hex
        made = [self.client.create_conversation(meta={"run": run})["id"] for _ in range(5)]
        listed = [c["id"] for c in self.client.iter_conversations(take=2, meta={"run": run})]
        self.assertEqual(listed, made)

    def test_conversation_and_message_lifecycle(self) -> None:
        conv = self.client.create_conversation(
            participants=[{"role": "user", "name": "Bo", "address": "bo@example.com"}], meta={"crmId": "1"}
        )
        cid = conv["id"]
        self.assertEqual(self.client.get_conversation(cid)["meta"], {"crmId": "1"})
        updated = self.client.update_conversation(cid, meta={"crmId": None, "tier": "gold"})
        self.assertEqual(updated["meta"], {"tier": "gold"})
        msg = self.client.create_message(cid, "user", "mail me at bo@example.com", name="Bo")
        self.assertEqual(self.client.get_message(cid, msg["id"])["text"], "mail me at bo@example.com")
        self.assertEqual(self.client.update_message(cid, msg["id"], text="redacted")["id"], msg["id"])
        exported = self.client.export_conversation(cid)
        self.assertEqual(json.loads(exported.decode().splitlines()[0])["text"], "redacted")
        self.assertIn(b"redacted", self.client.export_conversation(cid, format="text"))
        self.assertEqual(self.client.delete_message(cid, msg["id"]), {"id": msg["id"]})
        self.assertEqual(self.client.delete_conversation(cid), {"id": cid})

    def test_handoff_request_assign_release(self) -> None:
        cid = self.client.create_conversation()["id"]
        self.assertEqual(self.client.request_handoff(cid, reason="billing")["status"], "handoff")
        assigned = self.client.assign_handoff(cid, {"name": "Agent Kim"})
        self.assertEqual(assigned["status"], "handoff")
        self.assertEqual(self.client.release_handoff(cid)["status"], "open")

    def test_send_on_an_api_conversation(self) -> None:
        conv = self.client.create_session()["conversationId"]
        sent = self.client.send(conv, "An agent here", name="Kim")
        self.assertEqual(sent["text"], "An agent here")

    def test_agent_joins_types_answers_and_leaves(self) -> None:
        conv = self.client.create_session()["conversationId"]
        agent = self.client.add_participant(conv, "agent", "Agent Ana", address="ana@example.com")
        self.assertEqual(agent["role"], "agent")
        ids = [p["id"] for p in self.client.list_participants(conv)["items"]]
        self.assertIn(agent["id"], ids)
        self.client.typing(conv, agent["id"])
        sent = self.client.send(conv, "Ana here, I can help", from_agent=agent["id"])
        self.assertEqual((sent["type"], sent["participantId"]), ("agent", agent["id"]))
        # An agent's message takes an open conversation over, assigned to that agent.
        conversation = self.client.get_conversation(conv)
        self.assertEqual(conversation["status"], "handoff")
        self.assertEqual(conversation["handoff"]["assignee"], agent["id"])
        self.assertEqual(self.client.remove_participant(conv, agent["id"]), {"id": agent["id"]})
        texts = [m["text"] for m in self.client.iter_messages(conv, type="activity")]
        self.assertEqual(len(texts), 2, texts)

    def test_a_retried_write_takes_effect_once(self) -> None:
        key = f"py-{uuid.uuid4()}"
        first = self.client.request("POST", "/conversations", json_body={}, idempotency_key=key)
        again = self.client.request("POST", "/conversations", json_body={}, idempotency_key=key)
        self.assertEqual(first["id"], again["id"])

    def test_contacts_calls(self) -> None:
        page = self.client.list_contacts(take=5)
        self.assertIn("items", page)
        self.assertIn("items", self.client.contact_suggestions())
        list(self.client.iter_contacts(take=2))


if __name__ == "__main__":
    unittest.main()
