"""The outbox's upkeep through the real stack (issue 11): the operator's
command `bulk-enrolld outbox list|requeue|purge` against the stack's
database with the stack's configuration, and the dispatcher's retention
purge of delivered rows, with /metrics' depth and oldest-due gauges.

Data: tests/fixtures/demo.sql (alice = user 2; DemoX is a verified course,
so enrolling her creates one order row).
"""

import json
import re
import subprocess
import time
import unittest

import stack
from test_outbox import OutboxCase, DEMOX, LIC1


def outbox_cmd(*args):
    """Runs `bulk-enrolld --config <stack's> outbox ARGS`: (rc, stdout, stderr)."""
    p = subprocess.run([stack.ENV["BULK_DAEMON"], "--config", stack.ENV["BULK_CONFIG"],
                        "outbox"] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def gauge(name, labels):
    status, _, body = stack.request("GET", "/metrics")
    assert status == 200, status
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)),
                  body.decode(), re.M)
    assert m, "no %s{%s} in /metrics" % (name, labels)
    return float(m.group(1))


class RequeueTest(OutboxCase):
    """One attempt only, and the order service down: the row is parked."""

    overrides = dict(OutboxCase.overrides, outbox_max_attempts=1)

    def park_one_order(self):
        self.enroll([{"user_id": 2, "course_run_key": DEMOX, "license_uuid": LIC1}])
        rows = self.wait_states({"failed"}, kind="order")
        self.assertEqual(len(rows), 1)
        with self.conn.cursor() as cur:
            cur.execute("SELECT id FROM bulk_enroll_outbox WHERE kind = 'order'")
            return cur.fetchone()[0]

    def test_requeue_turns_a_failed_row_into_a_delivered_one(self):
        row_id = self.park_one_order()

        rc, out, err = outbox_cmd("list")
        self.assertEqual(rc, 0, err)
        listed = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([r["id"] for r in listed], [row_id])
        self.assertEqual(listed[0]["state"], "failed")
        self.assertEqual(listed[0]["attempts"], 1)
        self.assertTrue(listed[0]["last_error"])

        # Nothing to name, or the wrong state: refused, nothing changed.
        self.assertEqual(outbox_cmd("requeue")[0], 2)
        self.assertEqual(outbox_cmd("requeue", "--state", "done", "--all")[0], 2)

        self.orders.start()
        rc, out, err = outbox_cmd("requeue", "--dry-run", row_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("would have requeued 1 rows", out)
        time.sleep(0.5)   # a few dispatcher rounds: the row must stay parked
        self.assertEqual(self.outbox("order")[listed[0]["idempotency_key"]][1], "failed")
        self.assertEqual(self.orders.requests, [])

        rc, out, err = outbox_cmd("requeue", row_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("requeued 1 rows", out)
        rows = self.wait_states({"done"}, kind="order")
        self.assertEqual(list(rows.values())[0][2], 1)   # attempts counted afresh
        self.assertEqual([l["idempotency_key"] for l in self.orders.lines()],
                         [listed[0]["idempotency_key"]])

        # Requeue acts on failed rows only: a second one changes nothing.
        rc, out, _ = outbox_cmd("requeue", "--all")
        self.assertEqual((rc, out.strip()), (0, "requeued 0 rows"))

    def test_purge_failed_rows_and_never_undelivered_ones(self):
        row_id = self.park_one_order()
        self.assertEqual(outbox_cmd("purge", "--state", "pending", "--all")[0], 2)
        self.assertEqual(outbox_cmd("purge", "--state", "failed")[0], 2)
        rc, out, err = outbox_cmd("purge", "--state", "failed", "--dry-run", "--all")
        self.assertEqual((rc, out.strip()), (0, "would have deleted 1 rows (dry run: nothing changed)"), err)
        self.assertEqual(len(self.outbox()), 1)
        rc, out, err = outbox_cmd("purge", "--state", "failed", row_id)
        self.assertEqual((rc, out.strip()), (0, "deleted 1 rows"), err)
        self.assertEqual(self.outbox(), {})


class RetentionTest(OutboxCase):
    """The dispatcher deletes delivered rows older than outbox.retention_days."""

    overrides = dict(OutboxCase.overrides, outbox_retention_days=30)

    def test_old_delivered_rows_are_gone_after_a_dispatcher_round(self):
        self.orders.start()
        self.enroll([{"user_id": 2, "course_run_key": DEMOX, "license_uuid": LIC1}])
        rows = self.wait_states({"done"}, kind="order")
        self.assertEqual(len(rows), 1)
        old_key = list(rows)[0]
        with self.conn.cursor() as cur:
            # The delivered row made 31 days old, another delivered one 29
            # days old, and a failed row 31 days old, which retention leaves
            # to the operator.
            cur.execute("UPDATE bulk_enroll_outbox SET modified = UTC_TIMESTAMP(6) - "
                        "INTERVAL 31 DAY WHERE idempotency_key = %s", (old_key,))
            for i, key in enumerate(("old-done-29d", "old-failed-31d")):
                cur.execute(
                    "INSERT INTO bulk_enroll_outbox (kind, idempotency_key, payload, state, "
                    "attempts, next_attempt_at, created, modified) VALUES ('order', %s, '{}', "
                    "%s, 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) - "
                    "INTERVAL %s DAY)", (key, ("done", "failed")[i], (29, 31)[i]))

        def purged():
            return old_key not in self.outbox()
        stack.wait_until(purged, 10, "the 31-day-old delivered row to be purged")
        rows = self.outbox()
        self.assertIn("old-done-29d", rows)
        self.assertEqual(rows["old-failed-31d"][1], "failed")
        self.assertIn("outbox: retention: deleted 1 delivered rows older than 30 days",
                      stack.logs())

        # The operator's purge of delivered rows uses the same retention
        # unless told otherwise.
        rc, out, err = outbox_cmd("purge", "--dry-run")
        self.assertEqual((rc, out.strip()), (0, "would have deleted 0 rows (dry run: nothing changed)"), err)
        rc, out, err = outbox_cmd("purge", "--older-than", 28)
        self.assertEqual((rc, out.strip()), (0, "deleted 1 rows"), err)
        self.assertNotIn("old-done-29d", self.outbox())


class DepthMetricsTest(OutboxCase):
    """Depth of undelivered rows and the age of the oldest due one; no
    dispatcher, so the rows stay as written."""

    overrides = dict(OutboxCase.overrides, outbox_dispatchers=0)

    def test_depth_and_oldest_due_age(self):
        with self.conn.cursor() as cur:
            for i, (state, ago) in enumerate((("pending", 120), ("pending", -3600),
                                               ("failed", 9999))):
                cur.execute(
                    "INSERT INTO bulk_enroll_outbox (kind, idempotency_key, payload, state, "
                    "attempts, next_attempt_at, created, modified) VALUES ('email', %s, '{}', "
                    "%s, 0, UTC_TIMESTAMP(6) - INTERVAL %s SECOND, UTC_TIMESTAMP(6), "
                    "UTC_TIMESTAMP(6))", ("metrics-%d" % i, state, ago))
        self.assertEqual(gauge("bulk_enroll_outbox_messages", 'kind="email",state="failed"'), 1)
        self.assertEqual(gauge("bulk_enroll_outbox_messages", 'kind="order",state="sending"'), 0)
        self.assertEqual(gauge("bulk_enroll_outbox_messages", 'kind="email",state="pending"'), 2)
        # The row due 120 s ago, not the one due in an hour nor the failed one.
        age = gauge("bulk_enroll_outbox_oldest_due_seconds", 'kind="email"')
        self.assertGreaterEqual(age, 119)
        self.assertLess(age, 3600)
        self.assertEqual(gauge("bulk_enroll_outbox_oldest_due_seconds", 'kind="order"'), 0)
        _, _, body = stack.request("GET", "/metrics")
        self.assertNotIn('state="done"', body.decode())


if __name__ == "__main__":
    unittest.main()
