"""The outbox dispatcher through the real stack (SPEC §5, §2.4 step 9):
enroll through nginx -> bulk-enrolld, then watch the pool's dispatcher
deliver the outbox rows to a fake order service and a fake SMTP server
(tests/integration/receivers.py) on stack.ORDER_PORT / stack.SMTP_PORT.

The pool is restarted with a short poll interval and retry base for these
tests, and restarted with the stack's own configuration afterwards.
Data: tests/fixtures/demo.sql (alice = user 2, frank = user 7; DemoX is a
verified course, AuditOnly an audit one).
"""

import email
import email.policy
import hashlib
import os
import re
import time
import unittest

import receivers
import stack

DEMOX = "course-v1:edX+DemoX+2026"
AUDIT = "course-v1:edX+AuditOnly+2026"
LIC1 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
LIC2 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5b"
LIC3 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5c"
ENTERPRISE_HYPHENATED = "e1a2b3c4-d5e6-478f-9a0b-1c2d3e4f5a6b"
PENDING_EMAIL = "new.learner@example.com"

FAST = {"outbox_poll_ms": 100, "outbox_retry_base_ms": 100}


def _daemon_runs_dispatchers():
    """Whether the daemon under test calls dispatch_run: only then is
    src/dispatch.c linked in (a static library member), with its log text."""
    with open(stack.ENV["BULK_DAEMON"], "rb") as f:
        return b"dispatch: started" in f.read()


def batch_key(req):
    """The Idempotency-Key a batch must carry: SHA-256 of its lines' keys."""
    keys = "".join(l["idempotency_key"] + "\n" for l in req.json["enrollments"])
    return hashlib.sha256(keys.encode()).hexdigest()


def order_token():
    with open(os.path.join(stack.STACK_DIR, "secrets", "order-token"), encoding="utf-8") as f:
        return f.read().strip()


def parts(message_bytes):
    """(headers message, text part, html part) of a received message."""
    msg = email.message_from_bytes(message_bytes, policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return msg, text.get_content() if text else None, html.get_content() if html else None


class OutboxCase(unittest.TestCase):
    """Receivers up (unless a test says otherwise), data reset."""

    overrides = FAST

    @classmethod
    def setUpClass(cls):
        if not _daemon_runs_dispatchers():
            raise unittest.SkipTest("this bulk-enrolld's pool does not start the outbox "
                                    "dispatcher (dispatch_run is not linked in)")
        stack.restart_pool(**cls.overrides)

    @classmethod
    def tearDownClass(cls):
        stack.restart_pool()

    def setUp(self):
        stack.reset_data()
        self.token = stack.token()
        self.conn = stack.db()
        self.orders = receivers.OrderService(stack.ORDER_PORT)
        self.smtp = receivers.SmtpServer(stack.SMTP_PORT).start()

    def tearDown(self):
        self.orders.stop()
        self.smtp.stop()
        self.conn.close()

    def enroll(self, items, **extra):
        body = {"enrollments_info": items}
        body.update(extra)
        status, _, data = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                                        body=body, token=self.token)
        self.assertIn(status, (201, 202), data)
        return status

    def outbox(self, kind=None):
        """{idempotency_key: (kind, state, attempts, last_error)}"""
        with self.conn.cursor() as cur:
            if kind:
                cur.execute("SELECT idempotency_key, kind, state, attempts, last_error "
                            "FROM bulk_enroll_outbox WHERE kind = %s", (kind,))
            else:
                cur.execute("SELECT idempotency_key, kind, state, attempts, last_error "
                            "FROM bulk_enroll_outbox")
            return {r[0]: tuple(r[1:]) for r in cur.fetchall()}

    def wait_states(self, want, timeout=15, kind=None):
        """Waits until every outbox row (of kind) is in a state of `want`."""
        def settled():
            rows = self.outbox(kind)
            return rows if rows and all(r[1] in want for r in rows.values()) else None
        return stack.wait_until(settled, timeout, "outbox rows in %s" % (want,))

    def fulfillment_uuid(self, user_id, course):
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT l.uuid FROM enterprise_licensedenterprisecourseenrollment l "
                "JOIN enterprise_enterprisecourseenrollment e "
                "ON e.id = l.enterprise_course_enrollment_id "
                "JOIN enterprise_enterprisecustomeruser u ON u.id = e.enterprise_customer_user_id "
                "WHERE u.user_id = %s AND e.course_id = %s", (user_id, course))
            return cur.fetchone()[0]

    def metric(self, kind, result):
        status, _, body = stack.request("GET", "/metrics")
        self.assertEqual(status, 200)
        m = re.search(r'^bulk_enroll_outbox_deliveries_total\{kind="%s",result="%s"\} (\d+)$'
                      % (kind, result), body.decode(), re.M)
        self.assertIsNotNone(m, "no delivery counter for %s/%s" % (kind, result))
        return int(m.group(1))


class DeliveryTest(OutboxCase):
    def test_orders_and_emails_are_delivered(self):
        self.orders.start()
        delivered_orders = self.metric("order", "delivered")
        delivered_emails = self.metric("email", "delivered")
        status = self.enroll([
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": PENDING_EMAIL, "course_run_key": DEMOX, "license_uuid": LIC2},
        ], notify=True, salesforce_id="SF-0042", discount="12.5")
        self.assertEqual(status, 202)
        rows = self.wait_states({"done"})
        self.assertEqual(sorted(r[0] for r in rows.values()), ["email", "email", "order"])

        # exactly one POST with alice's line (the pending learner has no order)
        reqs = self.orders.wait_for_requests(1)
        time.sleep(0.5)
        self.assertEqual(len(self.orders.requests), 1)
        req = reqs[0]
        self.assertEqual(req.path, receivers.ORDER_PATH)
        self.assertEqual(req.headers["content-type"], "application/json")
        self.assertEqual(req.headers["authorization"], "JWT " + order_token())
        fulfillment = self.fulfillment_uuid(2, DEMOX)
        key = "order:%s:%s" % (fulfillment, LIC1.replace("-", ""))
        self.assertEqual(req.json, {"enrollments": [{
            "lms_user_id": 2, "username": "alice", "email": "Alice@Example.com",
            "course_run_key": DEMOX, "mode": "verified", "discount_percentage": 12.5,
            "enterprise_customer_name": "Demo Corp",
            "enterprise_customer_uuid": ENTERPRISE_HYPHENATED,
            "sales_force_id": "SF-0042", "idempotency_key": key}]})
        self.assertEqual(req.headers["idempotency-key"],
                         hashlib.sha256((key + "\n").encode()).hexdigest())
        self.assertEqual(rows[key][1:3], ("done", 1))

        # one message per created item, text and HTML naming course and enterprise
        msgs = self.smtp.wait_for_messages(2)
        self.assertEqual(sorted(r for m in msgs for r in m.rcpts),
                         ["Alice@Example.com", PENDING_EMAIL])
        for m in msgs:
            self.assertEqual(m.mail_from, "bulk-enroll@example.com")
            head, text, html = parts(m.data)
            self.assertIn(m.rcpts[0], head["To"])
            self.assertTrue(text and html, "both a text and an HTML part")
            for part in (text, html):
                self.assertIn("Demonstration Course", part)
                self.assertIn("Demo Corp", part)
            if m.rcpts[0] == PENDING_EMAIL:
                self.assertIn("http://localhost:8734/demo-corp", text)
            else:
                self.assertIn("http://localhost:18000/courses/%s/course/" % DEMOX, text)
            self.assertRegex(head["Message-ID"], r"^<email(-pending)?\.[0-9a-f]{32}\.\w+@")
        self.assertEqual(self.metric("order", "delivered"), delivered_orders + 1)
        self.assertEqual(self.metric("email", "delivered"), delivered_emails + 2)

        # Re-sending the same request delivers nothing new.
        self.enroll([
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": PENDING_EMAIL, "course_run_key": DEMOX, "license_uuid": LIC2},
        ], notify=True, salesforce_id="SF-0042", discount="12.5")
        time.sleep(1.5)
        self.assertEqual(len(self.orders.requests), 1)
        self.assertEqual(len(self.smtp.messages), 2)
        self.assertEqual(self.outbox(), rows)

    def test_order_service_down_then_up(self):
        # nothing listens on the order port: transport errors, retried with back-off
        self.enroll([
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": "frank@example.com", "course_run_key": DEMOX, "license_uuid": LIC2},
        ])

        def retried_enough():
            rows = self.outbox("order")
            return len(rows) == 2 and all(r[1] == "pending" and r[2] >= 3 and r[3]
                                          for r in rows.values())
        stack.wait_until(retried_enough, 15, "order rows retried three times")
        for r in self.outbox("order").values():
            self.assertIn("order service", r[3])
        before = self.metric("order", "retried")
        self.assertGreaterEqual(before, 6)

        self.orders.start()
        rows = self.wait_states({"done"}, timeout=20, kind="order")
        self.assertEqual(set(self.orders.keys_seen()), set(rows))
        # each line delivered (at least once; the receiver dedupes on the key)
        self.assertEqual(set(self.orders.delivered_keys()), set(rows))
        # each request's Idempotency-Key is derived from its own lines
        for req in self.orders.requests:
            self.assertEqual(req.headers["idempotency-key"], batch_key(req))

    def test_failure_line_is_parked_and_500_is_retried(self):
        self.orders.fail_line = lambda line: (
            "No seats left in this course." if line["username"] == "frank" else None)
        self.orders.script(500)
        self.orders.start()
        self.enroll([
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": "frank@example.com", "course_run_key": DEMOX, "license_uuid": LIC2},
        ])
        rows = self.wait_states({"done", "failed"}, kind="order")
        alice = "order:%s:%s" % (self.fulfillment_uuid(2, DEMOX), LIC1.replace("-", ""))
        frank = "order:%s:%s" % (self.fulfillment_uuid(7, DEMOX), LIC2.replace("-", ""))
        # the 500 made the first attempt a retry; the second got answers
        self.assertEqual(rows[alice][1:3], ("done", 2))
        self.assertEqual(rows[frank][1:], ("failed", 2, "No seats left in this course."))
        # (the retries may come in one request or two: each row has its own
        # jittered back-off; a batch's key is always derived from its lines)
        self.assertIn(len(self.orders.requests), (2, 3))
        self.assertEqual(len(self.orders.requests[0].json["enrollments"]), 2)
        for req in self.orders.requests:
            self.assertEqual(req.headers["idempotency-key"], batch_key(req))
        # final: not sent again
        time.sleep(1.5)
        self.assertEqual(self.orders.keys_seen()[frank], 2)
        self.assertEqual(self.outbox("order")[frank][1:3], ("failed", 2))

    def test_unparseable_response_is_retried(self):
        self.orders.script("garbage", "short")
        self.orders.start()
        self.enroll([{"email": "alice@example.com", "course_run_key": DEMOX,
                      "license_uuid": LIC1}])
        rows = self.wait_states({"done"}, kind="order")
        self.assertEqual([r[1:3] for r in rows.values()], [("done", 3)])
        self.assertIn("response", list(rows.values())[0][3])

    def test_smtp_refusal_fails_that_row_only(self):
        self.smtp.reject_rcpt = {"frank@example.com"}
        self.enroll([
            {"email": "alice@example.com", "course_run_key": AUDIT, "license_uuid": LIC1},
            {"email": "frank@example.com", "course_run_key": AUDIT, "license_uuid": LIC2},
            {"email": PENDING_EMAIL, "course_run_key": AUDIT, "license_uuid": LIC3},
        ], notify=True)
        rows = self.wait_states({"done", "failed"}, kind="email")
        self.assertEqual(len(rows), 3)
        by_state = sorted((r[1], r[2]) for r in rows.values())
        self.assertEqual(by_state, [("done", 1), ("done", 1), ("failed", 1)])
        failed = [r for r in rows.values() if r[1] == "failed"][0]
        self.assertIn("550", failed[3])
        self.assertEqual(sorted(r for m in self.smtp.messages for r in m.rcpts),
                         ["Alice@Example.com", PENDING_EMAIL])
        time.sleep(1)
        self.assertEqual(len(self.smtp.messages), 2)   # the refused row is not retried

    def test_unparseable_payload_is_failed_not_looped(self):
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO bulk_enroll_outbox (kind, idempotency_key, payload) VALUES "
                        "('email', 'email:broken', '{\"email\": 42}'), "
                        "('order', 'order:broken', '[1, 2]')")
        rows = self.wait_states({"failed"})
        self.assertEqual(rows["email:broken"][1:3], ("failed", 1))
        self.assertIn("payload", rows["email:broken"][3])
        self.assertEqual(rows["order:broken"][1:3], ("failed", 1))
        self.assertIn("payload", rows["order:broken"][3])
        self.assertEqual(self.orders.requests, [])


CLIENT_SECRET = "s3cr&t=+/ %"


def _client_secret_file():
    """The OAuth2 client secret, readable by the daemon (group nogroup)."""
    path = os.path.join(stack.STACK_DIR, "secrets", "order-client-secret")
    with open(path, "w", encoding="utf-8") as f:
        f.write(CLIENT_SECRET + "\n")
    os.chmod(path, 0o640)
    try:
        import grp
        os.chown(path, 0, grp.getgrnam("nogroup").gr_gid)
    except (KeyError, PermissionError):
        pass
    return path


class OAuthTest(OutboxCase):
    """order.oauth_url instead of order.token_file; a short order.timeout_ms."""

    @classmethod
    def setUpClass(cls):
        cls.overrides = dict(
            FAST, order_token_file="", order_timeout_ms=1000,
            order_oauth_url="http://127.0.0.1:%d" % stack.ORDER_PORT,
            order_client_id="bulk-enroll-client", order_client_secret_file=_client_secret_file())
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.orders.oauth = True
        self.orders.start()

    def enroll_and_deliver(self, email, lic):
        self.enroll([{"email": email, "course_run_key": DEMOX, "license_uuid": lic}])
        return self.wait_states({"done", "failed"}, kind="order")

    def auth_headers(self):
        return [r.headers.get("authorization") for r in self.orders.requests]

    def test_token_is_fetched_once_and_reused(self):
        # (the dispatcher may hold a token from another test's server: that
        # first request is refused with a 401 and a token fetched)
        self.enroll_and_deliver("alice@example.com", LIC1)
        self.assertEqual(self.orders.token_requests, [{
            "grant_type": "client_credentials", "client_id": "bulk-enroll-client",
            "client_secret": CLIENT_SECRET, "token_type": "jwt"}])
        token = self.auth_headers()[-1]
        self.assertRegex(token, r"^JWT tok-[0-9a-f]{8}-1$")
        before = len(self.orders.requests)
        rows = self.enroll_and_deliver("frank@example.com", LIC2)
        self.assertEqual(sorted(r[1:3] for r in rows.values()), [("done", 1), ("done", 1)])
        # the cached token is used again, no new fetch
        self.assertEqual(len(self.orders.token_requests), 1)
        self.assertEqual(self.auth_headers()[before:], [token])

    def test_401_fetches_a_new_token_once(self):
        self.enroll_and_deliver("alice@example.com", LIC1)
        old = self.auth_headers()[-1]
        fetched = len(self.orders.token_requests)
        before = len(self.orders.requests)
        self.orders.revoke_tokens()
        rows = self.enroll_and_deliver("frank@example.com", LIC2)
        # one delivery: refused with the old token, sent again with a new one
        self.assertEqual(sorted(r[1:3] for r in rows.values()), [("done", 1), ("done", 1)])
        self.assertEqual(len(self.orders.token_requests), fetched + 1)
        new = self.auth_headers()[-1]
        self.assertNotEqual(new, old)
        self.assertEqual(self.auth_headers()[before:], [old, new])

    def test_timeout_is_retried(self):
        self.orders.script("slow:2")
        rows = self.enroll_and_deliver("alice@example.com", LIC1)
        (row,) = rows.values()
        self.assertEqual(row[1:3], ("done", 2))
        self.assertIn("order service", row[3])
        planned = self.orders.planned_requests
        self.assertEqual(len(planned), 2)
        # the same line again: the same batch key, so the service can dedupe
        self.assertEqual(planned[0].headers["idempotency-key"], batch_key(planned[0]))
        self.assertEqual(planned[0].headers["idempotency-key"], planned[1].headers["idempotency-key"])


MAIL_PASSWORD = "mail-pw-%s" % os.urandom(6).hex()


def _mail_password_file():
    """The SMTP password, readable by the daemon (group nogroup)."""
    path = os.path.join(stack.STACK_DIR, "secrets", "mail-password")
    with open(path, "w", encoding="utf-8") as f:
        f.write(MAIL_PASSWORD + "\n")
    os.chmod(path, 0o640)
    try:
        import grp
        os.chown(path, 0, grp.getgrnam("nogroup").gr_gid)
    except (KeyError, PermissionError):
        pass
    return path


class SmtpCredentialsTest(OutboxCase):
    """mail.username and mail.password_file set, and a server that offers
    AUTH but no STARTTLS (as when an attacker strips it): the dispatcher
    must not send, so the password never reaches the server."""

    @classmethod
    def setUpClass(cls):
        cls.overrides = dict(FAST, outbox_max_attempts=2, mail_username="mailer",
                             mail_password_file=_mail_password_file())
        super().setUpClass()

    def test_no_starttls_no_send(self):
        self.orders.start()
        self.smtp.offer_auth = True
        self.enroll([{"email": "alice@example.com", "course_run_key": AUDIT,
                      "license_uuid": LIC1}], notify=True)
        rows = self.wait_states({"failed"}, kind="email")
        (row,) = rows.values()
        self.assertEqual(row[1:3], ("failed", 2))      # retried, then parked
        self.assertIn("STARTTLS", row[3])
        self.assertIn("gave up after 2 attempts", row[3])
        # the dispatcher did reach the server: and said nothing secret to it
        self.assertTrue(any(c.upper().startswith("EHLO") for c in self.smtp.commands))
        self.assertEqual(self.smtp.auth_lines, [])
        self.assertEqual(self.smtp.messages, [])
        import base64
        for c in self.smtp.commands:
            self.assertNotIn(MAIL_PASSWORD, c)
            self.assertNotIn(base64.b64encode(MAIL_PASSWORD.encode()).decode()[:12], c)
        self.assertNotIn(MAIL_PASSWORD, stack.logs())


class LostSettleTest(OutboxCase):
    """A row re-claimed by another dispatcher while this one still delivers
    it (the lease ran out under a stall) is not settled by this one: the
    settle is guarded by the attempts of its own claim, and logged."""

    def test_settle_after_reclaim_is_dropped(self):
        self.orders.script("slow:2")
        self.orders.start()
        seen = len(stack.logs())
        self.enroll([{"email": "alice@example.com", "course_run_key": DEMOX,
                      "license_uuid": LIC1}])
        self.orders.wait_for_requests(1)
        with self.conn.cursor() as cur:   # what a second claim would write
            cur.execute("UPDATE bulk_enroll_outbox SET attempts = attempts + 1 "
                        "WHERE kind = 'order' AND state = 'sending'")
            self.assertEqual(cur.rowcount, 1)
        stack.wait_until(lambda: "order settles lost" in stack.logs()[seen:], 15,
                         "the lost settle in the log")
        (row,) = self.outbox("order").values()
        self.assertEqual(row[1:3], ("sending", 2))     # the other claim's, untouched


class TwoDispatchersTest(OutboxCase):
    """Two dispatchers and a slow receiver: the lease covers the batch's
    worst case (timeouts from configuration, plus a 1 s margin), so the
    second dispatcher never re-claims rows the first is still delivering.
    (A fixed 1 s lease let it send every row twice.)"""

    overrides = dict(FAST, outbox_dispatchers=2, outbox_lease_ms=1000,
                     order_timeout_ms=5000, mail_timeout_ms=5000)

    def test_slow_batches_are_sent_once(self):
        self.orders.script("slow:2.5")
        self.orders.start()
        self.smtp.data_delay = 2.5
        self.enroll([
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": "frank@example.com", "course_run_key": DEMOX, "license_uuid": LIC2},
        ], notify=True)
        rows = self.wait_states({"done"}, timeout=30)
        self.assertEqual(len(rows), 4)
        self.assertEqual(sorted(r[2] for r in rows.values()), [1, 1, 1, 1])
        # The two dispatchers may split the rows between them (SKIP LOCKED),
        # so count lines, not requests: each line is sent exactly once.
        self.assertEqual(len(self.orders.lines()), 2)
        self.assertEqual(self.orders.duplicates, 0)
        self.assertEqual(len(self.smtp.messages), 2)
        self.assertEqual(self.smtp.duplicates(), 0)


class MaxAttemptsTest(OutboxCase):
    overrides = dict(FAST, outbox_max_attempts=3)

    def test_rows_fail_after_max_attempts(self):
        self.orders.script(*([503] * 10))
        self.orders.start()
        self.enroll([{"email": "alice@example.com", "course_run_key": DEMOX,
                      "license_uuid": LIC1}])
        rows = self.wait_states({"failed"}, kind="order")
        (state_attempts_error,) = [r[1:] for r in rows.values()]
        self.assertEqual(state_attempts_error[:2], ("failed", 3))
        self.assertIn("gave up after 3 attempts", state_attempts_error[2])
        self.assertIn("503", state_attempts_error[2])
        self.assertEqual(len(self.orders.requests), 3)


class CheckConfigTest(unittest.TestCase):
    """--check-config (the daemon's start-up path) refuses an order service
    or token URL over plain http:// to a host other than loopback, naming
    the key; the stack's own http://127.0.0.1 configuration passes."""

    def check(self, **env):
        import subprocess
        full = dict(os.environ)
        full.update({"BULK_ENROLL_" + k.upper(): v for k, v in env.items()})
        return subprocess.run([stack.ENV["BULK_DAEMON"], "--config", stack.ENV["BULK_CONFIG"],
                               "--check-config"], env=full, capture_output=True, text=True,
                              timeout=30)

    def test_plain_http_to_another_host_is_refused(self):
        self.assertEqual(self.check().returncode, 0, self.check().stderr)
        for key, url in (("order_url", "http://orders.example.com"),
                         ("order_url", "http://127.0.0.1@orders.example.com"),
                         ("order_oauth_url", "http://127.0.0.1.evil.example")):
            extra = {key: url}
            if key == "order_oauth_url":
                extra.update(order_token_file="", order_client_id="c",
                             order_client_secret_file=stack.ENV["BULK_CONFIG"])
            proc = self.check(**extra)
            self.assertEqual(proc.returncode, 1, (url, proc.stderr))
            self.assertIn(key.replace("_", ".", 1) + ": plain http://", proc.stderr)
        self.assertEqual(self.check(order_url="HTTP://LOCALHOST:9").returncode, 0)


if __name__ == "__main__":
    unittest.main()
