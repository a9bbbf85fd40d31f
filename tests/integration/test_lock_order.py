"""Row-lock order of the multi-row writes (issue 9) through the real stack.

Two requests that write the same keys lock them in one order, whatever
the item order, the request size and the responder: pairs of concurrent,
overlapping requests (the same learners and e-mails, one request a
superset of the other, the items in opposite orders) end without a single
deadlock in the daemon's log (`enroll: database waits: N deadlocks`), and
the rows are the ones serial requests would write.  Before the rows were
sorted, they followed hash-slot order (per-process seed, table size), and
such pairs deadlocked in most rounds.
"""

import concurrent.futures
import json
import re
import time
import unittest
import uuid

import stack

COURSES = ("course-v1:edX+DemoX+2026", "course-v1:edX+AuditOnly+2026")
ROUNDS = 6              # pairs of concurrent requests, each on fresh learners
KNOWN = 24              # known learners per round (by user_id and by e-mail)
EXTRA = 8               # learners only the larger request of a pair names
FIRST_ID = 70000
ANSWER_WITHIN_S = 20    # the whole test stays well inside 30 s
WAITS = re.compile(r"enroll: database waits: (\d+) deadlocks, (\d+) lock-wait timeouts")


def lic(user, course):
    return str(uuid.UUID(int=(0x50f7 << 112) | (user << 8) | course))


def learner_id(rnd, i):
    return FIRST_ID + rnd * 100 + i


def unknown_email(rnd, i):
    # Mixed case and an underscore: the stored key is lower-cased.
    return "Sort_Round%d.Learner%02d@Example.com" % (rnd, i)


def items(rnd, n):
    """The items of round rnd's first n learners of each kind, every course."""
    out = []
    for i in range(n):
        for k, course in enumerate(COURSES):
            uid = learner_id(rnd, i)
            # Half by user_id, half by e-mail: both lookups.
            who = {"user_id": uid} if i % 2 == 0 else {"email": "sort%d@example.com" % uid}
            out.append(dict(who, course_run_key=course, license_uuid=lic(uid, k)))
            out.append({"email": unknown_email(rnd, i), "course_run_key": course,
                        "license_uuid": lic(rnd * 100 + i, 16 + k)})
    return out


class LockOrderTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()
        self.conn = stack.db()
        rows = [(learner_id(r, i), "sort%d" % learner_id(r, i), "Sort", "L%d" % i,
                 "sort%d@example.com" % learner_id(r, i))
                for r in range(ROUNDS) for i in range(KNOWN + EXTRA)]
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO auth_user (id, username, first_name, last_name, email, is_staff, "
                "is_active, is_superuser, password, date_joined) "
                "VALUES (%s, %s, %s, %s, %s, 0, 1, 0, '', UTC_TIMESTAMP(6))", rows)
        self.token = stack.token()

    def tearDown(self):
        self.conn.close()

    def post(self, body):
        return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body=body,
                             token=self.token, timeout=ANSWER_WITHIN_S)

    def scalar(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]

    def test_overlapping_requests_in_opposite_orders_do_not_deadlock(self):
        log_start = len(stack.logs())
        started = time.monotonic()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2 * stack.WORKERS)
        answers = []
        try:
            for rnd in range(ROUNDS):
                small = items(rnd, KNOWN)
                large = list(reversed(items(rnd, KNOWN + EXTRA)))
                # Two of each: with two responders, each side meets both.
                futures = [pool.submit(self.post, {"enrollments_info": b})
                           for b in (small, large, large, small)]
                for f in futures:
                    answers.append(f.result(timeout=ANSWER_WITHIN_S))
        finally:
            pool.shutdown()
        self.assertLess(time.monotonic() - started, ANSWER_WITHIN_S * 1.5)

        for status, _, data in answers:
            self.assertIn(status, (201, 202), data)
            body = json.loads(data)
            self.assertEqual(body["failures"], [], data)

        log = stack.logs()[log_start:]
        deadlocks = sum(int(m.group(1)) for m in WAITS.finditer(log))
        lock_waits = sum(int(m.group(2)) for m in WAITS.finditer(log))
        self.assertEqual((deadlocks, lock_waits), (0, 0),
                         "concurrent overlapping requests deadlocked:\n%s"
                         % "\n".join(m.group(0) for m in WAITS.finditer(log)))

        # The rows serial requests would write: one of each per pair.
        learners = ROUNDS * (KNOWN + EXTRA)
        pairs = learners * len(COURSES)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM student_courseenrollment WHERE user_id >= %s AND is_active = 1",
            FIRST_ID), pairs)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_enterprisecustomeruser WHERE user_id >= %s "
            "AND active = 1 AND linked = 1", FIRST_ID), learners)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_enterprisecourseenrollment ece "
            "JOIN enterprise_enterprisecustomeruser ecu ON ecu.id = ece.enterprise_customer_user_id "
            "WHERE ecu.user_id >= %s", FIRST_ID), pairs)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_licensedenterprisecourseenrollment l "
            "JOIN enterprise_enterprisecourseenrollment ece ON ece.id = l.enterprise_course_enrollment_id "
            "JOIN enterprise_enterprisecustomeruser ecu ON ecu.id = ece.enterprise_customer_user_id "
            "WHERE ecu.user_id >= %s", FIRST_ID), pairs)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser "
            "WHERE user_email LIKE 'sort\\_round%%'"), learners)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_pendingenrollment pe "
            "JOIN enterprise_pendingenterprisecustomeruser pu ON pu.id = pe.user_id "
            "WHERE pu.user_email LIKE 'sort\\_round%%'"), pairs)
        # Each pending e-mail once, lower-cased.
        self.assertEqual(self.scalar(
            "SELECT COUNT(DISTINCT BINARY user_email) FROM enterprise_pendingenterprisecustomeruser "
            "WHERE user_email LIKE 'sort\\_round%%' AND BINARY user_email = LOWER(user_email)"),
            learners)


if __name__ == "__main__":
    unittest.main()
