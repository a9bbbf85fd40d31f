"""The fault catalogue, process part (issue 7), through the real stack.

- A responder SIGKILLed in the middle of a 10,000-item request: nginx
  answers 502 (JSON), the master replaces the responder, the database
  holds whole chunks only (each chunk is one transaction), the next
  request succeeds, and re-sending the request converges.
- The dispatcher SIGKILLed mid-delivery (the fake receiver is slow, so the
  kill lands while it holds the batch): after the lease the rows are
  delivered again with the same idempotency keys, and the deduplicating
  receiver creates each order / keeps each message exactly once.  Short
  leases come from configuration (restart_pool overrides).
- A burst of the signals the master handles (SIGHUP, SIGCHLD) while it
  keeps replacing its children: afterwards the pool has exactly its
  configured children and every one of them answers; none was left
  behind having eaten its SIGTERM in the master's handler.
"""

import json
import os
import re
import signal
import threading
import time
import unittest

import receivers
import stack

DEMOX = "course-v1:edX+DemoX+2026"
AUDIT = "course-v1:edX+AuditOnly+2026"
LIC1 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
LIC2 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5b"
BIG = 10000


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])   # utime + stime


def _dispatcher_pid():
    """The dispatcher the master started last (its log line names it)."""
    pids = [int(p) for p in re.findall(r"dispatcher (\d+) started", stack.logs())]
    live = set(stack.responder_pids())
    for pid in reversed(pids):
        if pid in live:
            return pid
    return None


def _big_body(n):
    return {"enrollments_info": [
        {"email": "fault.%05d@example.com" % i, "course_run_key": DEMOX,
         "license_uuid": "5b8e0000-0000-4000-8000-%012x" % i} for i in range(n)]}


class ResponderKilledTest(unittest.TestCase):
    """No dispatcher here: every child of the master is a responder."""

    @classmethod
    def setUpClass(cls):
        # (the test stack's body limit is 1 MiB; 10,000 items take 1.4 MB)
        stack.restart_pool(outbox_dispatchers=0, limits_max_body_bytes=32 * 1024 * 1024)

    @classmethod
    def tearDownClass(cls):
        stack.restart_pool()

    def setUp(self):
        stack.reset_data()
        self.conn = stack.db()
        self.blocker = None

    def tearDown(self):
        if self.blocker is not None:
            self.blocker.close()
        self.conn.close()

    def count(self, table):
        with self.conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM %s" % table)
            return cur.fetchone()[0]

    def test_responder_killed_mid_request(self):
        body = _big_body(BIG)
        # Another session holds the unique key of item 5000's pending learner
        # (an uncommitted insert): the request commits its first chunks and
        # then waits on that lock, so the kill lands mid-request for sure.
        self.blocker = stack.db()
        self.blocker.autocommit(False)
        with self.blocker.cursor() as cur:
            cur.execute("INSERT INTO enterprise_pendingenterprisecustomeruser "
                        "(user_email, enterprise_customer_id, created, modified) "
                        "VALUES (%s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                        (body["enrollments_info"][5000]["email"], stack.ENTERPRISE_UUID))
        before = set(stack.responder_pids())
        result = {}

        def post():
            result["answer"] = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                                             body=body, token=stack.token(), timeout=120)
        t = threading.Thread(target=post)
        t.start()

        def stalled():
            if "answer" in result:
                self.fail("answered before the kill: %r" % (result["answer"][::2],))
            n = self.count("enterprise_pendingenrollment")
            time.sleep(0.3)
            return n > 0 and n == self.count("enterprise_pendingenrollment")
        stack.wait_until(stalled, 60, "the request to commit chunks and wait on the lock")
        busiest = max(before, key=_cpu_ticks)
        os.kill(busiest, signal.SIGKILL)
        t.join(60)
        self.assertFalse(t.is_alive(), "no answer after the responder died")
        self.blocker.rollback()

        status, headers, data = result["answer"]
        self.assertEqual(status, 502, data)
        self.assertIn("application/json", headers.get("content-type", ""))
        self.assertIn("detail", json.loads(data))
        # Whole chunks only: each pending learner with its enrollment, none
        # of the killed chunk, and not the whole request.
        users = self.count("enterprise_pendingenterprisecustomeruser")
        enrollments = self.count("enterprise_pendingenrollment")
        self.assertEqual(users, enrollments)
        self.assertGreater(enrollments, 0)
        self.assertLess(enrollments, BIG)

        # The master replaces it; the next request succeeds, and the same
        # request again converges on every item written once.
        stack.wait_until(lambda: len(stack.responder_pids()) == len(before)
                         and busiest not in stack.responder_pids(),
                         15, "a replacement responder")
        self.assertNotIn(busiest, stack.responder_pids())
        status, _, data = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                                        body=body, token=stack.token(), timeout=120)
        self.assertIn(status, (201, 202), data[:300])
        self.assertEqual(len(json.loads(data)["pending"]), BIG)
        self.assertEqual(self.count("enterprise_pendingenterprisecustomeruser"), BIG)
        self.assertEqual(self.count("enterprise_pendingenrollment"), BIG)
        self.assertIn("killed by signal 9", stack.logs())


class DispatcherKilledTest(unittest.TestCase):
    """Short, configured leases: order.timeout_ms 2 s (two POSTs per batch)
    and mail.timeout_ms 3 s per message, plus a 1 s margin."""

    OVERRIDES = dict(outbox_poll_ms=100, outbox_retry_base_ms=100, outbox_lease_ms=1000,
                     order_timeout_ms=2000, mail_timeout_ms=3000)

    @classmethod
    def setUpClass(cls):
        with open(stack.ENV["BULK_DAEMON"], "rb") as f:
            if b"dispatch: started" not in f.read():
                raise unittest.SkipTest("this bulk-enrolld has no dispatcher")
        stack.restart_pool(**cls.OVERRIDES)

    @classmethod
    def tearDownClass(cls):
        stack.restart_pool()

    def setUp(self):
        stack.reset_data()
        self.conn = stack.db()
        self.orders = receivers.OrderService(stack.ORDER_PORT)
        self.smtp = receivers.SmtpServer(stack.SMTP_PORT)

    def tearDown(self):
        self.orders.stop()
        self.smtp.stop()
        self.conn.close()

    def enroll(self, course, notify):
        status, _, data = stack.request(
            "POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), token=stack.token(),
            body={"enrollments_info": [
                {"email": "alice@example.com", "course_run_key": course, "license_uuid": LIC1},
                {"email": "frank@example.com", "course_run_key": course, "license_uuid": LIC2}],
                "notify": notify})
        self.assertIn(status, (201, 202), data)

    def rows(self, kind):
        with self.conn.cursor() as cur:
            cur.execute("SELECT idempotency_key, state, attempts FROM bulk_enroll_outbox "
                        "WHERE kind = %s", (kind,))
            return {r[0]: (r[1], r[2]) for r in cur.fetchall()}

    def kill_dispatcher(self):
        pid = _dispatcher_pid()
        self.assertIsNotNone(pid, "no live dispatcher")
        os.kill(pid, signal.SIGKILL)
        stack.wait_until(lambda: _dispatcher_pid() not in (None, pid), 15,
                         "a replacement dispatcher")

    def test_orders_redelivered_once_after_the_lease(self):
        self.orders.script("slow:1.5")
        self.orders.start()
        self.enroll(DEMOX, False)
        self.orders.wait_for_requests(1)
        self.kill_dispatcher()            # while the service sits on the batch
        rows = stack.wait_until(
            lambda: (lambda r: r if r and all(s == "done" for s, _ in r.values()) else None)(
                self.rows("order")), 30, "the order rows delivered after the lease")
        self.assertEqual(len(rows), 2)
        # The killed claim counted one attempt, the new claim the second.
        self.assertEqual(sorted(a for _, a in rows.values()), [2, 2])
        reqs = self.orders.requests
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[0].headers["idempotency-key"], reqs[1].headers["idempotency-key"])
        self.assertEqual(self.orders.created(), {k: 1 for k in rows})
        self.assertEqual(self.orders.duplicates, 2)     # both lines came twice, deduped

    def test_emails_redelivered_once_after_the_lease(self):
        self.orders.start()
        self.smtp.data_delay = 2
        self.smtp.start()
        self.enroll(AUDIT, True)
        self.smtp.wait_for_messages(1)
        self.kill_dispatcher()            # before the server's 250 for the first message
        self.smtp.data_delay = 0
        rows = stack.wait_until(
            lambda: (lambda r: r if len(r) == 2 and all(s == "done" for s, _ in r.values())
                     else None)(self.rows("email")), 30, "the e-mail rows delivered")
        ids = self.smtp.by_message_id()
        self.assertEqual(len(ids), 2, ids)                # each message kept once ...
        self.assertEqual(self.smtp.duplicates(), 1)       # ... the interrupted one seen twice
        self.assertEqual(sorted(a for _, a in rows.values()), [2, 2])


class SignalBurstTest(unittest.TestCase):
    def tearDown(self):
        stack.restart_pool()

    def test_sighup_and_sigchld_burst_leaves_exactly_the_pool(self):
        master = stack.master_pid()
        expected = len(stack.responder_pids())
        self.assertGreater(expected, 0)
        deadline = time.monotonic() + 3
        sent = 0
        while time.monotonic() < deadline and sent < 300:
            os.kill(master, signal.SIGHUP if sent % 3 else signal.SIGCHLD)
            sent += 1
            time.sleep(0.01)

        # Every retired child exits (its SIGTERM reached its own handler),
        # leaving exactly one generation.
        stack.wait_until(lambda: len(stack.responder_pids(master)) == expected, 60,
                         "the pool to settle on %d children" % expected)
        time.sleep(1)
        self.assertEqual(len(stack.responder_pids(master)), expected)
        self.assertEqual(stack.master_pid(), master)
        for _ in range(2 * stack.WORKERS):
            status, _, _ = stack.request("GET", "/healthz")
            self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
