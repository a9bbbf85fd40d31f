"""What the LMS's own code writes beside our rows (issue 8, SPEC §4.1),
through nginx -> bulk-enrolld -> MariaDB: the enterprise_learner role row
(edx-enterprise's post_save signal) and django-simple-history's historical
twins, and the endpoint's real callers with their exact payloads.

These need the real LMS tables (the history tables and the role tables exist
only in the real DDL, which the test stack loads); on a stack without them
the class is skipped, saying so.  Data: tests/fixtures/demo.sql (users 1-7).
"""

import datetime
import json
import os
import re
import subprocess
import time
import unittest

import stack

DEMOX = "course-v1:edX+DemoX+2026"
AUDIT = "course-v1:edX+AuditOnly+2026"
CLOSED = "course-v1:edX+Closed+2020"
LIC1 = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
TXN2 = "9c1a0000-0000-4000-8000-000000000002"
ERIN_FULFILLMENT = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
CALLER = "demo_admin"            # auth_user.id 1 in the demo data
CALLER_ID = 1

# Each table we write and its django-simple-history twin.
TRACKED = {
    "student_courseenrollment": "student_courseenrollment_history",
    "enterprise_enterprisecustomeruser": "enterprise_historicalenterprisecustomeruser",
    "enterprise_pendingenterprisecustomeruser": "enterprise_historicalpendingenterprisecustomeruser",
    "enterprise_pendingenrollment": "enterprise_historicalpendingenrollment",
    "enterprise_enterprisecourseenrollment": "enterprise_historicalenterprisecourseenrollment",
    "enterprise_licensedenterprisecourseenrollment":
        "enterprise_historicallicensedenterprisecourseenrollment",
    "enterprise_learnercreditenterprisecourseenrollment":
        "enterprise_historicallearnercreditenterprisecourseenrollment",
    "enterprise_defaultenterpriseenrollmentrealization":
        "enterprise_historicaldefaultenterpriseenrollmentrealization",
    "enterprise_systemwideenterpriseuserroleassignment":
        "enterprise_historicalsystemwideenterpriseuserroleassignment",
}
ROLES = "enterprise_systemwideenterpriseuserroleassignment"


def hyphenate(h):
    return "-".join([h[0:8], h[8:12], h[12:16], h[16:20], h[20:]])


def mariadb_root(sql):
    """Runs one statement as the database's root (SET GLOBAL needs it)."""
    subprocess.run(["mariadb", "--no-defaults", "--socket=" + stack.ENV["BULK_DB_SOCKET"],
                    "-uroot", "-e", sql], check=True, capture_output=True)


def missing_tables():
    conn = stack.db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = DATABASE()")
            have = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    want = set(TRACKED) | set(TRACKED.values()) | {"enterprise_systemwideenterpriserole"}
    return sorted(want - have)


class LmsRowsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = missing_tables()
        if missing:
            raise unittest.SkipTest("the stack's database lacks the real LMS tables %s "
                                    "(they come with the real DDL)" % ", ".join(missing))

    def setUp(self):
        stack.reset_data()
        self.conn = stack.db(dict_cursor=True)
        # A real LMS has its four roles; reset_data empties every table.
        self.exec("INSERT IGNORE INTO enterprise_systemwideenterpriserole "
                  "(created, modified, name, description) VALUES "
                  "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 'enterprise_learner', NULL)")
        self.role_id = self.scalar("SELECT id FROM enterprise_systemwideenterpriserole "
                                   "WHERE name = 'enterprise_learner'")
        self.token = stack.token(preferred_username=CALLER)

    def tearDown(self):
        self.conn.close()

    # -- helpers ------------------------------------------------------------

    def exec(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def rows(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def scalar(self, sql, *args):
        r = self.rows(sql, *args)
        return list(r[0].values())[0] if r else None

    def post(self, body, token=None, timeout=30):
        status, _, raw = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                                       body=body, token=token or self.token, timeout=timeout)
        return status, json.loads(raw)

    def columns(self, table):
        return [r["column_name"] for r in self.rows(
            "SELECT column_name AS column_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position",
            table)]

    def snapshot(self):
        """Every tracked table's rows, by id."""
        return {t: {r["id"]: r for r in self.rows("SELECT * FROM `%s`" % t)} for t in TRACKED}

    def history(self, table):
        return self.rows("SELECT * FROM `%s`" % TRACKED[table])

    def history_count(self):
        return {t: len(self.history(t)) for t in TRACKED}

    def assert_history_follows(self, before, after, user_id=CALLER_ID):
        """Every row inserted or changed between the snapshots has exactly one
        history row, '+' or '~', carrying every column as it is now, the
        caller, no change reason, history_date = the row's write time; an
        unchanged row has none, and so has a link to another enterprise that
        the request deactivated (a queryset update() in edx-enterprise).
        Returns {table: {'+': n, '~': n}}."""
        counts = {}
        for table, twin in TRACKED.items():
            shared = [c for c in self.columns(twin)
                      if c in self.columns(table) and not c.startswith("history_")]
            hist = self.history(table)
            by_id = {}
            for h in hist:
                by_id.setdefault(h["id"], []).append(h)
            counts[table] = {"+": 0, "~": 0}
            for rid, row in after[table].items():
                old = before[table].get(rid)
                if old == row or (table == "enterprise_enterprisecustomeruser" and
                                  row["enterprise_customer_id"] != stack.ENTERPRISE_UUID):
                    self.assertNotIn(rid, by_id, "%s %s: no save, but history" % (table, rid))
                    continue
                self.assertEqual(len(by_id.get(rid, [])), 1,
                                 "%s %s written: want one history row" % (table, rid))
                h = by_id[rid][0]
                want_type = "+" if old is None else "~"
                self.assertEqual(h["history_type"], want_type, "%s %s" % (table, rid))
                counts[table][want_type] += 1
                self.assertEqual({c: h[c] for c in shared}, {c: row[c] for c in shared},
                                 "%s %s: history copies every column" % (table, rid))
                self.assertIsNone(h["history_change_reason"])
                self.assertEqual(h["history_user_id"], user_id)
                stamp = row.get("modified") or row.get("created")
                if "modified" in row or want_type == "+":
                    self.assertEqual(h["history_date"], stamp, "%s %s" % (table, rid))
                if table == "student_courseenrollment":
                    self.assertRegex(h["history_id"], r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$",
                                     "history_id is a UUID4 in char(32)")
            self.assertEqual(len(hist), sum(counts[table].values()),
                             "%s: history rows only for written rows" % twin)
        return counts

    def roles_of(self, user_id):
        return self.rows("SELECT role_id, enterprise_customer_id, applies_to_all_contexts "
                         "FROM " + ROLES + " WHERE user_id = %s", user_id)

    # -- the enterprise_learner role ----------------------------------------

    def test_new_and_relinked_learners_get_one_role_each_and_a_resend_none(self):
        items = [{"email": "Alice@Example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
                 {"user_id": 5, "course_run_key": DEMOX, "license_uuid": LIC1}]
        status, _ = self.post({"enrollments_info": items})
        self.assertEqual(status, 201)
        want = [{"role_id": self.role_id, "enterprise_customer_id": stack.ENTERPRISE_UUID,
                 "applies_to_all_contexts": 0}]
        self.assertEqual(self.roles_of(2), want)       # alice: a new link
        self.assertEqual(self.roles_of(5), want)       # dave: relinked
        self.assertEqual(self.roles_of(1), [])         # already linked: not saved, no signal
        before = self.history_count()

        status, _ = self.post({"enrollments_info": items})
        self.assertEqual(status, 201)
        self.assertEqual(self.roles_of(2), want)
        self.assertEqual(self.roles_of(5), want)
        self.assertEqual(self.history_count(), before)

    def test_a_link_reactivated_from_another_enterprise_gets_the_role(self):
        # bob is active in Other Corp; his Demo Corp link exists, inactive.
        self.exec("INSERT INTO enterprise_enterprisecustomeruser (created, modified, user_id, "
                  "enterprise_customer_id, active, linked, is_relinkable, "
                  "should_inactivate_other_customers) VALUES ('2024-01-01', '2024-01-01', 3, "
                  "%s, 0, 1, 1, 1)", stack.ENTERPRISE_UUID)
        before = self.snapshot()
        status, _ = self.post({"enrollments_info": [
            {"user_id": 3, "course_run_key": DEMOX, "license_uuid": LIC1}]})
        self.assertEqual(status, 201)
        self.assertEqual(len(self.roles_of(3)), 1)
        counts = self.assert_history_follows(before, self.snapshot())
        # The Demo Corp link is saved ('~'); Other Corp's is deactivated by a
        # queryset update(), which simple-history does not see.
        self.assertEqual(counts["enterprise_enterprisecustomeruser"], {"+": 0, "~": 1})
        hist = self.history("enterprise_enterprisecustomeruser")
        self.assertEqual([h["enterprise_customer_id"] for h in hist], [stack.ENTERPRISE_UUID])
        self.assertEqual(self.rows(
            "SELECT active, modified FROM enterprise_enterprisecustomeruser "
            "WHERE user_id = 3 AND enterprise_customer_id <> %s", stack.ENTERPRISE_UUID),
            [{"active": 0, "modified": datetime.datetime(2024, 1, 1)}])

    # -- history --------------------------------------------------------------

    def test_every_row_written_has_its_history_row_and_a_resend_adds_none(self):
        body = {"enrollments_info": [
            {"email": "Alice@Example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"user_id": 5, "course_run_key": AUDIT, "license_uuid": LIC1,
             "is_default_auto_enrollment": True},
            {"email": "new.learner@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
            {"user_id": 6, "course_run_key": DEMOX, "transaction_id": TXN2},
        ], "notify": True}
        before = self.snapshot()
        status, _ = self.post(body)
        self.assertEqual(status, 202)
        after = self.snapshot()
        counts = self.assert_history_follows(before, after)
        self.assertEqual(counts, {
            "student_courseenrollment": {"+": 2, "~": 1},
            "enterprise_enterprisecustomeruser": {"+": 1, "~": 1},
            "enterprise_pendingenterprisecustomeruser": {"+": 1, "~": 0},
            "enterprise_pendingenrollment": {"+": 1, "~": 0},
            "enterprise_enterprisecourseenrollment": {"+": 2, "~": 1},
            "enterprise_licensedenterprisecourseenrollment": {"+": 2, "~": 0},
            "enterprise_learnercreditenterprisecourseenrollment": {"+": 0, "~": 1},
            "enterprise_defaultenterpriseenrollmentrealization": {"+": 1, "~": 0},
            "enterprise_systemwideenterpriseuserroleassignment": {"+": 2, "~": 0},
        })

        # The same again: nothing changes, so no history, not even `modified`.
        hist = self.history_count()
        status, _ = self.post(body)
        self.assertEqual(status, 202)
        self.assertEqual(self.snapshot(), after)
        self.assertEqual(self.history_count(), hist)

    def test_reactivated_and_upgraded_enrollments_get_change_rows_with_new_values(self):
        # alice audits DemoX already (her link and enterprise enrollment are
        # made by the request); erin's learner credit was reversed.
        self.exec("INSERT INTO student_courseenrollment (course_id, created, is_active, mode, "
                  "user_id) VALUES (%s, '2024-05-01 00:00:00', 1, 'audit', 2)", DEMOX)
        status, _ = self.post({"enrollments_info": [
            {"user_id": 2, "course_run_key": DEMOX, "license_uuid": LIC1},
            {"user_id": 6, "course_run_key": DEMOX, "transaction_id": TXN2}]})
        self.assertEqual(status, 201)
        sce = {h["user_id"]: h for h in self.history("student_courseenrollment")}
        self.assertEqual((sce[2]["history_type"], sce[2]["mode"], sce[2]["is_active"]),
                         ("~", "verified", 1))
        self.assertEqual(sce[2]["created"], datetime.datetime(2024, 5, 1))
        self.assertEqual((sce[6]["history_type"], sce[6]["mode"], sce[6]["is_active"]),
                         ("~", "verified", 1))
        (credit,) = self.history("enterprise_learnercreditenterprisecourseenrollment")
        self.assertEqual((credit["history_type"], credit["uuid"], credit["is_revoked"],
                          credit["transaction_id"]),
                         ("~", ERIN_FULFILLMENT, 0, TXN2.replace("-", "")))
        ece = [h for h in self.history("enterprise_enterprisecourseenrollment") if h["id"] == 1]
        self.assertEqual([(h["history_type"], h["unenrolled"], h["unenrolled_at"],
                           h["saved_for_later"]) for h in ece], [("~", 0, None, 0)])

    def test_a_caller_without_auth_user_row_leaves_history_user_null(self):
        before = self.snapshot()
        status, _ = self.post({"enrollments_info": [
            {"email": "frank@example.com", "course_run_key": DEMOX, "license_uuid": LIC1}]},
            token=stack.token(preferred_username="license_manager_worker"))
        self.assertEqual(status, 201)
        self.assert_history_follows(before, self.snapshot(), user_id=None)
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM auth_user WHERE username = %s",
                                     "license_manager_worker"), 0)

    def test_timestamps_are_utc_whatever_the_time_zones(self):
        """The daemon under TZ=Asia/Tokyo and the server's default zone at
        +09:00: created, modified and history_date are still UTC."""
        mariadb_root("SET GLOBAL time_zone = '+09:00'")
        os.environ["TZ"] = "Asia/Tokyo"
        try:
            stack.restart_pool()
            t0 = datetime.datetime.utcnow().replace(microsecond=0) - datetime.timedelta(seconds=2)
            status, _ = self.post({"enrollments_info": [
                {"email": "frank@example.com", "course_run_key": DEMOX, "license_uuid": LIC1},
                {"email": "new.tz@example.com", "course_run_key": DEMOX, "license_uuid": LIC1}]})
            t1 = datetime.datetime.utcnow() + datetime.timedelta(seconds=2)
        finally:
            del os.environ["TZ"]
            mariadb_root("SET GLOBAL time_zone = 'SYSTEM'")
            stack.restart_pool()
        self.assertEqual(status, 202)
        stamps = []
        for table in TRACKED:
            for r in self.rows("SELECT * FROM `%s`" % table):
                stamps += [r[c] for c in ("created", "modified") if r.get(c) and r[c] > t0]
            stamps += [h["history_date"] for h in self.history(table)]
        self.assertGreaterEqual(len(stamps), 10)
        for s in stamps:
            self.assertTrue(t0 <= s <= t1, "%s not within UTC [%s, %s]" % (s, t0, t1))

    # -- the endpoint's real callers -------------------------------------------

    def test_license_manager_625_learners_by_email_with_notify(self):
        emails = ["lm%03d@example.com" % i for i in range(622)] + [
            "Alice@Example.com", "bob@example.com", "frank@example.com"]
        items = [{"email": e, "course_run_key": DEMOX, "license_uuid": LIC1} for e in emails]
        before = self.snapshot()
        status, body = self.post({"licenses_info": items, "notify": True}, timeout=60)
        self.assertEqual(status, 202)
        self.assertEqual(len(body["pending"]), 622)
        self.assertEqual(len(body["successes"]), 3)
        self.assertTrue(all(p["created"] for p in body["pending"] + body["successes"]))
        counts = self.assert_history_follows(before, self.snapshot())
        self.assertEqual(counts["enterprise_pendingenrollment"], {"+": 622, "~": 0})
        self.assertEqual(counts["enterprise_pendingenterprisecustomeruser"], {"+": 622, "~": 0})
        self.assertEqual(counts["enterprise_systemwideenterpriseuserroleassignment"],
                         {"+": 3, "~": 0})
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'email'"),
                         625)

    def test_enterprise_subsidy_redemption_answers_2xx_with_its_ledger_reference(self):
        t = time.monotonic()
        status, body = self.post({"enrollments_info": [
            {"user_id": 7, "course_run_key": CLOSED,
             "transaction_id": "7d2c0000-0000-4000-8000-00000000abcd",
             "force_enrollment": True}]}, timeout=20)
        self.assertLess(time.monotonic() - t, 20)
        self.assertTrue(200 <= status < 300, status)
        (success,) = body["successes"]
        uuid = self.scalar(
            "SELECT f.uuid FROM enterprise_learnercreditenterprisecourseenrollment f "
            "JOIN enterprise_enterprisecourseenrollment e ON e.id = f.enterprise_course_enrollment_id "
            "JOIN enterprise_enterprisecustomeruser u ON u.id = e.enterprise_customer_user_id "
            "WHERE u.user_id = 7 AND e.course_id = %s", CLOSED)
        self.assertEqual(success["enterprise_fulfillment_source_uuid"], hyphenate(uuid))
        (h,) = self.history("enterprise_learnercreditenterprisecourseenrollment")
        self.assertEqual((h["history_type"], h["uuid"], h["history_user_id"]), ("+", uuid, CALLER_ID))

    def test_enterprise_access_default_auto_enrollment_without_notify(self):
        before = self.snapshot()
        status, body = self.post({"enrollments_info": [
            {"user_id": 7, "course_run_key": AUDIT, "license_uuid": LIC1,
             "is_default_auto_enrollment": True}]})
        self.assertEqual(status, 201)
        self.assertTrue(body["successes"][0]["created"])
        counts = self.assert_history_follows(before, self.snapshot())
        self.assertEqual(counts["enterprise_defaultenterpriseenrollmentrealization"],
                         {"+": 1, "~": 0})
        self.assertEqual(self.scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'email'"),
                         0)


if __name__ == "__main__":
    unittest.main()
