"""The enrollment contract through nginx -> bulk-enrolld -> MariaDB
(SPEC §2.3-§2.5, issue 4): each case asserts the full response body and the
rows it leaves.  Data: tests/fixtures/demo.sql (users 1-7, see its header).
"""

import decimal
import json
import unittest

import pymysql

import stack

DEMOX = "course-v1:edX+DemoX+2026"
AUDIT = "course-v1:edX+AuditOnly+2026"
CLOSED = "course-v1:edX+Closed+2020"
LIC1 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
LIC1_HEX = LIC1.replace("-", "")
LIC2 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5b"
TXN1 = "9c1a0000-0000-4000-8000-000000000001"
TXN1_HEX = TXN1.replace("-", "")
ERIN_FULFILLMENT = "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf"


def hyphenate(h):
    return "-".join([h[0:8], h[8:12], h[12:16], h[16:20], h[20:]])


def dumps(obj):
    """Python's default json.dumps layout: what the service writes."""
    return json.dumps(obj).encode("utf-8")


class EnrollTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()
        self.token = stack.token()
        self.conn = stack.db()

    def tearDown(self):
        self.conn.close()

    def post(self, body):
        return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body=body,
                             token=self.token)

    def rows(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(r) for r in cur.fetchall()]

    def scalar(self, sql, *args):
        r = self.rows(sql, *args)
        return r[0][0] if r else None

    # -- 400s -------------------------------------------------------------

    def test_empty_object_is_400(self):
        status, _, body = self.post({})
        self.assertEqual(status, 400)
        self.assertEqual(body, b'{"non_field_errors": ["Must include the `enrollment_info` '
                               b'parameter in request."]}')

    def test_licenses_info_dict_is_400(self):
        status, _, body = self.post({"licenses_info": {"email": "a@example.com"}})
        self.assertEqual(status, 400)
        self.assertEqual(body, b'{"licenses_info": {"non_field_errors": ["Expected a list of '
                               b'items but got type \\"dict\\"."]}}')

    def test_item_errors_are_400_with_exact_strings(self):
        status, _, body = self.post({"licenses_info": [
            {"email": "a@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": "a@example.com", "course_run_key": DEMOX},
            {"email": "a@example.com", "course_run_key": DEMOX, "license_uuid": LIC1,
             "transaction_id": TXN1},
            {"course_run_key": DEMOX, "license_uuid": LIC1},
        ]})
        self.assertEqual(status, 400)
        self.assertEqual(body, dumps({"licenses_info": [
            {},
            {"non_field_errors": ["At least one subsidy info field [license_uuid or "
                                  "transaction_id] required."]},
            {"non_field_errors": ["Enrollment info contains conflicting subsidy information: "
                                  "`license_uuid` and `transaction_id` found"]},
            {"non_field_errors": ["At least one user identifier field [user_id or email] "
                                  "required."]},
        ]}))
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 0)

    # -- processing ---------------------------------------------------------

    def test_one_unknown_email_is_pending_202(self):
        status, _, body = self.post({"enrollments_info": [
            {"email": "New.Learner@Example.com", "course_run_key": DEMOX, "license_uuid": LIC1}],
            "notify": True})
        self.assertEqual(status, 202)
        self.assertEqual(body, dumps({"successes": [], "pending": [
            {"email": "new.learner@example.com", "course_run_key": DEMOX, "created": True,
             "activation_link": None}], "failures": []}))
        self.assertEqual(self.rows(
            "SELECT u.user_email, e.course_id, e.course_mode, e.discount_percentage, e.license_uuid "
            "FROM enterprise_pendingenrollment e JOIN enterprise_pendingenterprisecustomeruser u "
            "ON u.id = e.user_id"),
            [("new.learner@example.com", DEMOX, "verified", decimal.Decimal("100.00000"),
              LIC1_HEX)])
        self.assertEqual(self.rows("SELECT kind, state FROM bulk_enroll_outbox"), [("email", "pending")])

    def test_badly_formatted_email_is_409_without_rows(self):
        status, _, body = self.post({"enrollments_info": [
            {"email": "not-an-email", "course_run_key": DEMOX, "license_uuid": LIC1}]})
        self.assertEqual(status, 409)
        self.assertEqual(body, dumps({"successes": [], "pending": [], "failures": [],
                                      "invalid_email_addresses": ["not-an-email"]}))
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser"), 0)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 0)

    def test_pending_resend_rewrites_only_what_changed(self):
        item = {"email": "again@example.com", "course_run_key": DEMOX, "license_uuid": LIC1}
        q = ("SELECT discount_percentage, sales_force_id, modified FROM enterprise_pendingenrollment")
        self.assertEqual(self.post({"enrollments_info": [item]})[0], 202)
        (first,) = self.rows(q)
        self.assertEqual(first[:2], (decimal.Decimal("100.00000"), None))

        # Identical: nothing is rewritten, not even `modified`.
        status, _, body = self.post({"enrollments_info": [item]})
        self.assertEqual(status, 202)
        self.assertFalse(json.loads(body)["pending"][0]["created"])
        self.assertEqual(self.rows(q), [first])

        # A new discount and Salesforce id: the row follows the request.
        status, _, body = self.post({"enrollments_info": [item], "discount": "12.5",
                                     "salesforce_id": "SF-0042"})
        self.assertEqual(status, 202)
        self.assertFalse(json.loads(body)["pending"][0]["created"])
        (after,) = self.rows(q)
        self.assertEqual(after[:2], (decimal.Decimal("12.50000"), "SF-0042"))
        self.assertGreater(after[2], first[2])

    def _two_by_two(self, list_name):
        items = [{"email": e, "course_run_key": c, "license_uuid": LIC1}
                 for e in ("p1@example.com", "p2@example.com") for c in (DEMOX, AUDIT)]
        status, _, body = self.post({list_name: items})
        self.assertEqual(status, 202)
        self.assertEqual(body, dumps({"successes": [], "pending": [
            {"email": i["email"], "course_run_key": i["course_run_key"], "created": True,
             "activation_link": None} for i in items], "failures": []}))
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 4)

    def test_two_learners_two_courses_pending_enrollments_info(self):
        self._two_by_two("enrollments_info")

    def test_two_learners_two_courses_pending_licenses_info(self):
        self._two_by_two("licenses_info")

    def test_two_existing_users_by_id_and_email_201(self):
        status, _, body = self.post({"enrollments_info": [
            {"user_id": 2, "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": "BOB@example.com", "course_run_key": DEMOX, "transaction_id": TXN1}]})
        self.assertEqual(status, 201)
        lic = self.scalar("SELECT uuid FROM enterprise_licensedenterprisecourseenrollment")
        lc = self.scalar("SELECT uuid FROM enterprise_learnercreditenterprisecourseenrollment "
                         "WHERE transaction_id = %s", TXN1_HEX)
        self.assertEqual(body, dumps({"successes": [
            {"user_id": 2, "email": "Alice@Example.com", "course_run_key": DEMOX, "created": True,
             "activation_link": None, "enterprise_fulfillment_source_uuid": hyphenate(lic)},
            {"user_id": 3, "email": "bob@example.com", "course_run_key": DEMOX, "created": True,
             "activation_link": None, "enterprise_fulfillment_source_uuid": hyphenate(lc)}],
            "pending": [], "failures": []}))
        self.assertEqual(self.rows("SELECT user_id, mode, is_active FROM student_courseenrollment "
                                   "WHERE user_id IN (2, 3) ORDER BY user_id"),
                         [(2, "verified", 1), (3, "verified", 1)])
        # Two orders (verified is paid), no e-mails (notify false).
        self.assertEqual(self.rows("SELECT kind, COUNT(*) FROM bulk_enroll_outbox GROUP BY kind"),
                         [("order", 2)])

    def test_shared_email_resolves_to_the_oldest_account(self):
        # Where the LMS does not enforce unique e-mails, the lowest id wins,
        # however the address is cased, as the set-based lookup promises.
        # The real schema (tests/fixtures/lms/) has a unique, case-insensitive
        # auth_user.email: there two such accounts cannot exist.
        try:
            with self.conn.cursor() as cur:
                cur.execute("INSERT INTO auth_user (id, password, is_superuser, username, "
                            "first_name, last_name, email, is_staff, is_active, date_joined) VALUES "
                            "(50, '!', 0, 'dup_new', 'New', 'Dup', 'Shared@Example.com', 0, 1, "
                            "UTC_TIMESTAMP()), "
                            "(40, '!', 0, 'dup_old', 'Old', 'Dup', 'shared@example.com', 0, 1, "
                            "UTC_TIMESTAMP())")
        except pymysql.err.IntegrityError as e:
            if e.args[0] != 1062:
                raise
            self.skipTest("auth_user.email is unique on this schema: no two accounts share an address")
        status, _, body = self.post({"enrollments_info": [
            {"email": "SHARED@example.com", "course_run_key": DEMOX, "license_uuid": LIC1}]})
        self.assertEqual(status, 201, body)
        success = json.loads(body)["successes"][0]
        self.assertEqual((success["user_id"], success["email"]), (40, "shared@example.com"))
        self.assertEqual(self.rows("SELECT user_id FROM student_courseenrollment WHERE user_id >= 40"),
                         [(40,)])

    def test_unknown_user_ids_409(self):
        status, _, body = self.post({"enrollments_info": [
            {"user_id": 9998, "course_run_key": DEMOX, "license_uuid": LIC1},
            {"user_id": 9999, "course_run_key": DEMOX, "license_uuid": LIC1}]})
        self.assertEqual(status, 409)
        self.assertEqual(body, dumps({"successes": [], "pending": [], "failures": [],
                                      "invalid_user_ids": [9998, 9999]}))

    def test_negative_user_id_is_an_invalid_user_id(self):
        # Only 0 counts as absent: -5 names no user (SPEC §2.4 step 2).
        status, _, body = self.post({"enrollments_info": [
            {"user_id": -5, "course_run_key": DEMOX, "license_uuid": LIC1},
            {"user_id": -7, "email": "someone@example.com", "course_run_key": DEMOX,
             "license_uuid": LIC1}]})
        self.assertEqual(status, 409)
        self.assertEqual(body, dumps({"successes": [], "pending": [], "failures": [],
                                      "invalid_user_ids": [-5, -7]}))
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser"), 0)

    def test_cancelled_learner_credit_is_reactivated(self):
        status, _, body = self.post({"enrollments_info": [
            {"user_id": 6, "course_run_key": DEMOX, "transaction_id": TXN1}]})
        self.assertEqual(status, 201)
        self.assertEqual(body, dumps({"successes": [
            {"user_id": 6, "email": "erin@example.com", "course_run_key": DEMOX, "created": True,
             "activation_link": None, "enterprise_fulfillment_source_uuid": ERIN_FULFILLMENT}],
            "pending": [], "failures": []}))
        self.assertEqual(self.rows("SELECT is_revoked, transaction_id FROM "
                                   "enterprise_learnercreditenterprisecourseenrollment"),
                         [(0, TXN1_HEX)])
        self.assertEqual(self.rows("SELECT saved_for_later, unenrolled, unenrolled_at FROM "
                                   "enterprise_enterprisecourseenrollment WHERE id = 1"),
                         [(0, 0, None)])

    def test_force_enrollment_on_closed_course(self):
        item = {"user_id": 7, "course_run_key": CLOSED, "license_uuid": LIC1}
        status, _, body = self.post({"enrollments_info": [item]})
        self.assertEqual(status, 409)
        self.assertEqual(body, dumps({"successes": [], "pending": [], "failures": [
            {"user_id": 7, "email": "frank@example.com", "course_run_key": CLOSED}]}))
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM student_courseenrollment WHERE user_id = 7"), 0)
        item["force_enrollment"] = True
        status, _, body = self.post({"enrollments_info": [item]})
        self.assertEqual(status, 201)
        self.assertEqual(json.loads(body)["successes"][0]["created"], True)
        self.assertEqual(self.rows("SELECT course_id, mode FROM student_courseenrollment "
                                   "WHERE user_id = 7"), [(CLOSED, "verified")])

    def test_permanently_unlinked_user(self):
        status, _, body = self.post({"enrollments_info": [
            {"email": "carol@example.com", "course_run_key": DEMOX, "license_uuid": LIC1}]})
        self.assertEqual(status, 409)
        self.assertEqual(body, dumps({"successes": [], "pending": [], "failures": [],
                                      "invalid_email_addresses": ["carol@example.com"]}))
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM student_courseenrollment WHERE user_id = 4"), 0)

    def test_default_enrollment_realization(self):
        status, _, body = self.post({"enrollments_info": [
            {"user_id": 7, "course_run_key": AUDIT, "license_uuid": LIC1,
             "is_default_auto_enrollment": True}]})
        self.assertEqual(status, 201)
        self.assertEqual(self.rows(
            "SELECT r.intended_enrollment_id, e.course_id FROM "
            "enterprise_defaultenterpriseenrollmentrealization r JOIN "
            "enterprise_enterprisecourseenrollment e ON e.id = r.realized_enrollment_id"),
            [("d1e2f3a4b5c6470890abcdef12345678", AUDIT)])

    def test_same_request_twice(self):
        req = {"enrollments_info": [
            {"user_id": 2, "course_run_key": DEMOX, "license_uuid": LIC1},
            {"email": "p1@example.com", "course_run_key": DEMOX, "license_uuid": LIC1}],
            "notify": True}
        status, _, first = self.post(req)
        self.assertEqual(status, 202)
        tables = ["student_courseenrollment", "enterprise_enterprisecourseenrollment",
                  "enterprise_licensedenterprisecourseenrollment", "enterprise_pendingenrollment",
                  "bulk_enroll_outbox"]
        before = {t: self.rows("SELECT * FROM " + t) for t in tables}
        status, _, second = self.post(req)
        self.assertEqual(status, 202)
        expected = json.loads(first)
        for k in ("successes", "pending"):
            for i in expected[k]:
                i["created"] = False
        self.assertEqual(second, dumps(expected))
        for t in tables:
            self.assertEqual(self.rows("SELECT * FROM " + t), before[t], t)
        # One order (alice, verified) and two e-mails, once.
        self.assertEqual(self.rows("SELECT kind, COUNT(*) FROM bulk_enroll_outbox GROUP BY kind "
                                   "ORDER BY kind"), [("order", 1), ("email", 2)])

    def test_concurrent_identical_requests_all_succeed(self):
        # SPEC §2.4 step 8: deadlocks and lock waits are retried so that
        # concurrent identical requests all succeed, and converge on one
        # set of rows, one order per enrollment and one e-mail per item.
        import concurrent.futures
        items = []
        for i in range(60):
            items.append({"email": "c%d@example.com" % i, "course_run_key": DEMOX,
                          "license_uuid": LIC1})
        for uid in (2, 3, 5, 7):
            for course in (DEMOX, AUDIT):
                items.append({"user_id": uid, "course_run_key": course, "license_uuid": LIC1})
        body = {"enrollments_info": items, "notify": True}
        with concurrent.futures.ThreadPoolExecutor(max_workers=stack.WORKERS) as ex:
            results = list(ex.map(lambda _: self.post(body), range(stack.WORKERS * 2)))
        for status, _, got in results:
            self.assertEqual(status, 202, got)
            got = json.loads(got)
            self.assertEqual(got["failures"], [])
            self.assertEqual(len(got["successes"]), 8)
            self.assertEqual(len(got["pending"]), 60)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 60)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM student_courseenrollment "
                                     "WHERE user_id IN (2, 3, 5, 7)"), 8)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM "
                                     "enterprise_licensedenterprisecourseenrollment"), 8)
        # Orders for the four verified (DemoX) enrollments; e-mails for 60 + 8.
        self.assertEqual(self.rows("SELECT kind, COUNT(*) FROM bulk_enroll_outbox GROUP BY kind "
                                   "ORDER BY kind"), [("order", 4), ("email", 68)])
        # Every request reports the same fulfillment uuid for an enrollment.
        uuids = {json.dumps(sorted((s["user_id"], s["course_run_key"],
                                    s["enterprise_fulfillment_source_uuid"])
                                   for s in json.loads(b)["successes"])) for _, _, b in results}
        self.assertEqual(len(uuids), 1)

    def test_thousand_items_mixing_every_outcome(self):
        items, want = [], {"successes": [], "pending": [], "failures": []}
        bad_ids, bad_emails = [], []
        for i in range(1000):
            k = i % 5
            if k == 0:
                uid = (2, 3, 5, 7)[i // 5 % 4]
                items.append({"user_id": uid, "course_run_key": DEMOX, "license_uuid": LIC1})
            elif k == 1:
                items.append({"email": "L%d@Example.com" % i, "course_run_key": DEMOX,
                              "license_uuid": LIC1})
                want["pending"].append({"email": "l%d@example.com" % i, "course_run_key": DEMOX,
                                        "created": True, "activation_link": None})
            elif k == 2:
                items.append({"user_id": 100000 + i, "course_run_key": DEMOX, "license_uuid": LIC1})
                bad_ids.append(100000 + i)
            elif k == 3:
                items.append({"email": "bad%d@" % i, "course_run_key": DEMOX, "license_uuid": LIC1})
                bad_emails.append("bad%d@" % i)
            else:
                items.append({"user_id": 7, "course_run_key": CLOSED, "license_uuid": LIC1})
                want["failures"].append({"user_id": 7, "email": "frank@example.com",
                                         "course_run_key": CLOSED})
        status, _, body = self.post({"enrollments_info": items})
        self.assertEqual(status, 409)
        got = json.loads(body)
        self.assertEqual(list(got.keys()), ["successes", "pending", "failures", "invalid_user_ids",
                                            "invalid_email_addresses"])
        self.assertEqual(len(got["successes"]), 200)
        self.assertEqual(sum(1 for s in got["successes"] if s["created"]), 4)
        self.assertEqual(got["pending"], want["pending"])
        self.assertEqual(got["failures"], want["failures"])
        self.assertEqual(got["invalid_user_ids"], bad_ids)
        self.assertEqual(got["invalid_email_addresses"], bad_emails)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 200)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'order'"), 4)


if __name__ == "__main__":
    unittest.main()
