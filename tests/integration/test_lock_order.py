"""Row-lock order of the multi-row writes (issue 9) through the real stack.

Two requests that write the same keys lock them in one order, whatever
the item order, the request size and the responder.  Pairs of concurrent,
overlapping requests (the same learners or e-mails, one request a superset
of the other, the items in opposite orders, two of each so that both
responders see both) end without a single deadlock in the daemon's log
(`enroll: database waits: N deadlocks`), and the rows are the ones serial
requests write.  Before the rows were sorted they followed hash-slot order
(per-process seed, table size), and such pairs deadlocked in most rounds.

The first statement of a chunk that locks shared rows serialises the two
transactions, so each test makes a different upsert the first one with
rows to write (a serial request writes everything first, then the rows of
the table under test are deleted).  For known learners that is the links'
upsert, or, when they are linked already, the UPDATE that deactivates
their other enterprises' links: it locks every scanned link (at READ
COMMITTED too, through its user_id index) in index order, so the later
upserts of their enrollments cannot meet each other's locks in these
requests, and are left to the unit tests of their order
(tests/unit/test_enroll_chunk.c).
"""

import concurrent.futures
import json
import re
import time
import unittest
import uuid

import stack

DEMOX = "course-v1:edX+DemoX+2026"
AUDIT = "course-v1:edX+AuditOnly+2026"     # Demo Corp's default intention
COURSES = (DEMOX, AUDIT)
ROUNDS = 5              # pairs of concurrent requests per test, each on fresh learners
# 48 and 80 items: the chunk's maps get 128 and 256 slots, so even one
# responder walks the two requests' slots in different orders.
LEARNERS = 24           # per round in both requests of a pair
EXTRA = 16              # per round in the larger request only
FIRST_ID = 70000
ANSWER_WITHIN_S = 20
WAITS = re.compile(r"enroll: database waits: (\d+) deadlocks, (\d+) lock-wait timeouts")
EMAIL_LIKE = "sort\\_round%"


def learner_id(rnd, i):
    return FIRST_ID + rnd * 100 + i


def unknown_email(rnd, i):
    # Mixed case and an underscore: the stored key is lower-cased.
    return "Sort_Round%d.Learner%02d@Example.com" % (rnd, i)


def lic(n, course):
    return str(uuid.UUID(int=(0x50f7 << 112) | (n << 8) | course))


def items(rnd, n, known):
    """Round rnd's first n learners (known: by user_id and e-mail, else
    unknown e-mails), in every course."""
    out = []
    for i in range(n):
        for k, course in enumerate(COURSES):
            if known:
                uid = learner_id(rnd, i)
                who = {"user_id": uid} if i % 2 == 0 else {"email": "sort%d@example.com" % uid}
                out.append(dict(who, course_run_key=course, license_uuid=lic(uid, k),
                                is_default_auto_enrollment=True))
            else:
                out.append({"email": unknown_email(rnd, i), "course_run_key": course,
                            "license_uuid": lic(rnd * 100 + i, 16 + k)})
    return out


class LockOrderTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()
        self.conn = stack.db()
        rows = [(learner_id(r, i), "sort%d" % learner_id(r, i), "Sort", "L%d" % i,
                 "sort%d@example.com" % learner_id(r, i))
                for r in range(ROUNDS) for i in range(LEARNERS + EXTRA)]
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO auth_user (id, username, first_name, last_name, email, is_staff, "
                "is_active, is_superuser, password, date_joined) "
                "VALUES (%s, %s, %s, %s, %s, 0, 1, 0, '', UTC_TIMESTAMP(6))", rows)
        self.token = stack.token()

    def tearDown(self):
        self.conn.close()

    def post(self, items_):
        return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                             body={"enrollments_info": items_}, token=self.token,
                             timeout=ANSWER_WITHIN_S)

    def execute(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def scalar(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]

    def concurrent_pairs(self, known, prepare=None):
        """ROUNDS rounds: the round's larger request alone (when prepare is
        given; then prepare(rnd)), then the pair, twice, at
        once.  Asserts every answer and a log without deadlocks."""
        log_start = len(stack.logs())
        started = time.monotonic()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        answers = []
        try:
            for rnd in range(ROUNDS):
                small = items(rnd, LEARNERS, known)
                large = list(reversed(items(rnd, LEARNERS + EXTRA, known)))
                if prepare is not None:
                    status, _, data = self.post(large)
                    self.assertIn(status, (201, 202), data)
                    prepare(rnd)
                futures = [pool.submit(self.post, b) for b in (small, large, large, small)]
                answers += [f.result(timeout=ANSWER_WITHIN_S) for f in futures]
        finally:
            pool.shutdown()
        self.assertLess(time.monotonic() - started, ANSWER_WITHIN_S)
        for status, _, data in answers:
            self.assertIn(status, (201, 202), data)
            self.assertEqual(json.loads(data)["failures"], [], data)
        waits = list(WAITS.finditer(stack.logs()[log_start:]))
        self.assertEqual((sum(int(m.group(1)) for m in waits), sum(int(m.group(2)) for m in waits)),
                         (0, 0), "concurrent overlapping requests deadlocked:\n%s"
                         % "\n".join(m.group(0) for m in waits))

    def assert_known_rows(self):
        """One row of each kind per learner / (learner, course), as serial
        requests write them."""
        learners = ROUNDS * (LEARNERS + EXTRA)
        pairs = learners * len(COURSES)
        ecu = ("FROM enterprise_enterprisecourseenrollment ece "
               "JOIN enterprise_enterprisecustomeruser ecu ON ecu.id = ece.enterprise_customer_user_id ")
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM student_courseenrollment WHERE user_id >= %s AND is_active = 1 "
            "AND mode = IF(course_id = %s, 'verified', 'audit')", FIRST_ID, DEMOX), pairs)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_enterprisecustomeruser WHERE user_id >= %s "
            "AND active = 1 AND linked = 1", FIRST_ID), learners)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_systemwideenterpriseuserroleassignment "
            "WHERE user_id >= %s", FIRST_ID), learners)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) " + ecu + "WHERE ecu.user_id >= %s AND ece.saved_for_later = 0",
            FIRST_ID), pairs)
        # Each learner's own license, in each course.
        with self.conn.cursor() as cur:
            cur.execute("SELECT ecu.user_id, ece.course_id, l.license_uuid "
                        "FROM enterprise_licensedenterprisecourseenrollment l "
                        "JOIN enterprise_enterprisecourseenrollment ece "
                        "ON ece.id = l.enterprise_course_enrollment_id "
                        "JOIN enterprise_enterprisecustomeruser ecu "
                        "ON ecu.id = ece.enterprise_customer_user_id "
                        "WHERE ecu.user_id >= %s AND l.is_revoked = 0", (FIRST_ID,))
            got = sorted((u, c, lu) for u, c, lu in cur.fetchall())
        self.assertEqual(got, sorted((learner_id(r, i), c, uuid.UUID(lic(learner_id(r, i), k)).hex)
                                     for r in range(ROUNDS) for i in range(LEARNERS + EXTRA)
                                     for k, c in enumerate(COURSES)))
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_defaultenterpriseenrollmentrealization r "
            "JOIN enterprise_enterprisecourseenrollment ece ON ece.id = r.realized_enrollment_id "
            "JOIN enterprise_enterprisecustomeruser ecu ON ecu.id = ece.enterprise_customer_user_id "
            "WHERE ecu.user_id >= %s AND ece.course_id = %s", FIRST_ID, AUDIT), learners)

    def assert_pending_rows(self):
        learners = ROUNDS * (LEARNERS + EXTRA)
        # Each pending e-mail once, lower-cased, with one row per course.
        self.assertEqual(self.scalar(
            "SELECT COUNT(DISTINCT BINARY user_email) FROM enterprise_pendingenterprisecustomeruser "
            "WHERE user_email LIKE %s AND BINARY user_email = LOWER(user_email)", EMAIL_LIKE), learners)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser WHERE user_email LIKE %s",
            EMAIL_LIKE), learners)
        self.assertEqual(self.scalar(
            "SELECT COUNT(*) FROM enterprise_pendingenrollment pe "
            "JOIN enterprise_pendingenterprisecustomeruser pu ON pu.id = pe.user_id "
            "WHERE pu.user_email LIKE %s AND pe.license_uuid IS NOT NULL", EMAIL_LIKE),
            learners * len(COURSES))

    # ---- known learners: the links are the first rows locked

    def test_links_first(self):
        self.concurrent_pairs(known=True)
        self.assert_known_rows()

    # ---- unknown e-mails: pending learners, then their pending enrollments

    def test_pending_learners_first(self):
        self.concurrent_pairs(known=False)
        self.assert_pending_rows()

    def test_pending_enrollments_first(self):
        def delete(rnd):
            self.execute("DELETE FROM enterprise_pendingenrollment WHERE user_id IN (SELECT id FROM "
                         "enterprise_pendingenterprisecustomeruser WHERE user_email LIKE %s)",
                         "sort\\_round%d.%%" % rnd)
        self.concurrent_pairs(False, delete)
        self.assert_pending_rows()


if __name__ == "__main__":
    unittest.main()
