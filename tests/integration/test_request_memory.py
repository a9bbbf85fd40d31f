"""limits.max_request_memory caps all of a request's memory (issue 9).

The responder runs with the smallest limit the configuration accepts
(1 MiB).  A 500-item request needs about 0.3 MiB in the request arena
itself, which fits, but more than 1 MiB with the chunk's scratch arena, its
SQL texts and the response's pieces.  Before the budget covered all of them
(only the request arena counted), that request was answered 202 and
written; now it gets the documented 500 for a request over the limit,
writes nothing, and the responder goes on serving: a small request right
after succeeds."""

import json
import os
import re
import unittest
import uuid

import stack

DEMOX = "course-v1:edX+DemoX+2026"
LIC = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
LIMIT = 1 << 20     # conf.c's minimum for limits.max_request_memory
OVER = 500          # items: request arena < LIMIT < the whole request
SMALL = 10

_EMPTY_SQL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "fixtures", "empty.sql")


def written_tables():
    """Every table the service (or a test) writes: those empty.sql empties."""
    with open(_EMPTY_SQL, encoding="utf-8") as f:
        return re.findall(r"^TRUNCATE TABLE (\w+);", f.read(), re.M)


class RequestMemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        stack.restart_pool(limits_max_request_memory=LIMIT)

    @classmethod
    def tearDownClass(cls):
        stack.restart_pool()

    def setUp(self):
        stack.reset_data()
        self.conn = stack.db()
        self.tables = written_tables()
        self.assertIn("enterprise_pendingenrollment", self.tables)

    def tearDown(self):
        self.conn.close()

    def counts(self):
        with self.conn.cursor() as cur:
            out = {}
            for t in self.tables:
                cur.execute("SELECT COUNT(*) FROM `%s`" % t)
                out[t] = cur.fetchone()[0]
            return out

    def enroll(self, n, tag):
        """n items: unknown e-mails (pending, with a license) and the demo's
        alice (an existing learner), so most of the tables are written."""
        items = [{"email": "%s.%04d@example.com" % (tag, i), "course_run_key": DEMOX,
                  "license_uuid": LIC} for i in range(n - 1)]
        items.append({"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LIC})
        rid = uuid.uuid4().hex
        status, headers, data = stack.request(
            "POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), token=stack.token(), timeout=60,
            headers={"X-Request-ID": rid}, body={"enrollments_info": items})
        return status, headers, data, rid

    def log_line(self, rid, text):
        """The daemon's last line for request rid that contains text."""
        def line():
            found = [l for l in stack.logs().splitlines() if rid in l and text in l]
            return found[-1] if found else None
        stack.wait_until(lambda: line() is not None, timeout=10, what="a log line with " + text)
        return line()

    def test_a_request_over_the_whole_budget_is_a_500_and_writes_nothing(self):
        before = self.counts()
        pids = stack.responder_pids()
        status, headers, data, rid = self.enroll(OVER, "over")
        self.assertEqual(status, 500, data[:300])
        self.assertEqual(json.loads(data), {"detail": "A server error occurred."})
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(self.counts(), before)
        # The premise: the request arena alone stayed under the limit (on
        # its own it would have let this request through).
        m = re.search(r"-> 500 in [0-9.]+ ms \((\d+) bytes of request memory",
                      self.log_line(rid, "bytes of request memory"))
        self.assertIsNotNone(m)
        self.assertLess(int(m.group(1)), LIMIT)
        self.assertIn("out of memory", self.log_line(rid, "answering 500"))
        # The same responders go on serving.
        status, _, data, _ = self.enroll(SMALL, "after")
        self.assertEqual(status, 202, data[:300])
        self.assertEqual(stack.responder_pids(), pids)

    def test_a_request_within_the_budget_succeeds(self):
        before = self.counts()
        status, _, data, rid = self.enroll(SMALL, "small")
        self.assertEqual(status, 202, data[:300])
        body = json.loads(data)
        self.assertEqual(len(body["pending"]), SMALL - 1)
        self.assertEqual([s["email"] for s in body["successes"]], ["Alice@Example.com"])
        after = self.counts()
        self.assertEqual(after["enterprise_pendingenrollment"],
                         before["enterprise_pendingenrollment"] + SMALL - 1)
        self.assertEqual(after["enterprise_enterprisecourseenrollment"],
                         before["enterprise_enterprisecourseenrollment"] + 1)
        self.assertRegex(self.log_line(rid, "bytes of request memory"), r"-> 202 in ")


if __name__ == "__main__":
    unittest.main()
