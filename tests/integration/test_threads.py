"""Request threads in one responder (issue 9; `threads` key) through the
real stack: a single responder overlaps requests, each on its own database
connection, and every answer and row is what serial requests would give.
"""

import concurrent.futures
import threading
import unittest

import stack

DEMOX = "course-v1:edX+DemoX+2026"
LIC = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
HELD = "held.learner@example.com"
OTHERS = 6          # concurrent requests while one is held
ITEMS = 20          # unknown e-mails per concurrent request
ANSWER_WITHIN_S = 15


def body(emails):
    return {"enrollments_info": [{"email": e, "course_run_key": DEMOX, "license_uuid": LIC}
                                 for e in emails]}


class ThreadedResponderTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()
        # One responder process, so any overlap comes from its threads.
        stack.restart_pool(workers=1, threads=4)
        self.token = stack.token()
        self.conn = stack.db()

    def tearDown(self):
        self.conn.close()
        stack.restart_pool()

    def post(self, emails):
        return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body=body(emails),
                             token=self.token, timeout=60)

    def pending_emails(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT pu.user_email, pe.course_id FROM enterprise_pendingenrollment pe "
                        "JOIN enterprise_pendingenterprisecustomeruser pu ON pu.id = pe.user_id "
                        "WHERE pu.enterprise_customer_id = %s ORDER BY pu.user_email",
                        (stack.ENTERPRISE_UUID.replace("-", ""),))
            return [tuple(r) for r in cur.fetchall()]

    def test_a_request_held_by_a_row_lock_does_not_hold_up_the_others(self):
        # Another session inserts the held learner's pending row and keeps
        # its transaction open: the request enrolling that learner waits on
        # the unique key until we roll back.
        holder = stack.db()
        with holder.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("INSERT INTO enterprise_pendingenterprisecustomeruser "
                        "(created, modified, user_email, enterprise_customer_id) "
                        "VALUES (UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), %s, %s)",
                        (HELD, stack.ENTERPRISE_UUID.replace("-", "")))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=OTHERS + 1)
        try:
            held = pool.submit(self.post, [HELD])
            stack.wait_until(lambda: self.waiting_on_lock(), timeout=10,
                             what="the held request to wait on the row lock")
            batches = [["thread%d.learner%d@example.com" % (k, i) for i in range(ITEMS)]
                       for k in range(OTHERS)]
            others = [pool.submit(self.post, b) for b in batches]
            done, _ = concurrent.futures.wait(others, timeout=ANSWER_WITHIN_S)
            self.assertEqual(len(done), OTHERS,
                             "requests behind a held one were not answered in %d s"
                             % ANSWER_WITHIN_S)
            self.assertFalse(held.done(), "the held request finished while its row was locked")
            for f in others:
                status, _, data = f.result()
                self.assertEqual(status, 202, data)
        finally:
            holder.rollback()
            holder.close()
        status, _, data = held.result(timeout=60)
        pool.shutdown()
        self.assertEqual(status, 202, data)
        self.assertIn(b'"created": true', data)
        want = sorted([(HELD, DEMOX)] + [(e, DEMOX) for b in batches for e in b])
        self.assertEqual(self.pending_emails(), want)

    def waiting_on_lock(self):
        """The service's session is inside its insert of the held row (the
        service's account sees its own sessions without PROCESS)."""
        conn = stack.db_service()
        with conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist "
                        "WHERE id <> CONNECTION_ID() AND command IN ('Execute', 'Query') "
                        "AND info LIKE 'INSERT INTO enterprise_pendingenterprisecustomeruser%%'")
            return cur.fetchone()[0] > 0

    def test_concurrent_requests_give_the_serial_answers_and_rows(self):
        # The same learner in every request, plus one of each request's own:
        # the shared pair is created exactly once, whoever comes first.
        n = 8
        results = [None] * n
        barrier = threading.Barrier(n)

        def send(k):
            barrier.wait(timeout=10)
            results[k] = self.post(["shared@example.com", "own%d@example.com" % k])

        threads = [threading.Thread(target=send, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        created_shared = 0
        for k, r in enumerate(results):
            self.assertIsNotNone(r, "request %d got no answer" % k)
            status, _, data = r
            self.assertEqual(status, 202, data)
            self.assertIn(('"email": "own%d@example.com"' % k).encode(), data)
            created_shared += data.count(b'"email": "shared@example.com", "course_run_key": "%s", '
                                         b'"created": true' % DEMOX.encode())
        self.assertEqual(created_shared, 1)
        want = sorted([("shared@example.com", DEMOX)] +
                      [("own%d@example.com" % k, DEMOX) for k in range(n)])
        self.assertEqual(self.pending_emails(), want)


if __name__ == "__main__":
    unittest.main()
