"""Everything that came from outside is escaped in the daemon's log, in one
place (src/log.c), through the real path: nginx -> bulk-enrolld -> MariaDB.

A course key holding CR/LF reaches the log twice when its item fails on a
database error: as a request field ("item N (<key>) failed") and inside the
database's own error text (the chunk's "redoing it item by item" line),
which echoes values the way "Duplicate entry '...'" does.  The failure is
made real with a trigger (created as root, dropped afterwards) that refuses
enrollments in that course with a message quoting the course key.
"""

import json
import os
import subprocess
import unittest

import stack

FORGED = "2026-01-01T00:00:00.000Z error [1] - FORGED"
KEY = "course-v1:edX+CRLF+2026\r\n" + FORGED
ESCAPED = "course-v1:edX+CRLF+2026\\x0d\\x0a" + FORGED
LIC = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f6a"
TRIGGER = "bulk_enroll_test_refuse_crlf"


def root_sql(sql):
    """Runs sql as the database's root (triggers need more than the
    service's account may do)."""
    subprocess.run(["mariadb", "--no-defaults", "--socket=" + stack.ENV["BULK_DB_SOCKET"],
                    "-uroot", stack.ENV["BULK_DB_NAME"]], input=sql.encode(), check=True,
                   capture_output=True)


class CourseKeyWithCrLfTest(unittest.TestCase):
    def enroll_crlf(self):
        """Sends the request; returns (log offset before it, request id)."""
        before = len(stack.logs())
        status, headers, body = stack.request(
            "POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), token=stack.token(),
            body={"enrollments_info": [
                {"user_id": 2, "course_run_key": KEY, "license_uuid": LIC},
                {"user_id": 2, "course_run_key": "course-v1:edX+DemoX+2026",
                 "license_uuid": LIC}]})
        self.assertEqual(status, 409, body)
        return before, headers["x-request-id"]

    def setUp(self):
        stack.reset_data()
        stack.copy_course("course-v1:edX+DemoX+2026", KEY, display_name="CRLF",
                          enrollment_start=None, enrollment_end=None, invitation_only=0)
        root_sql("DROP TRIGGER IF EXISTS %s;\n"
                 "DELIMITER //\n"
                 "CREATE TRIGGER %s BEFORE INSERT ON student_courseenrollment FOR EACH ROW\n"
                 "BEGIN\n"
                 "  DECLARE msg VARCHAR(255) DEFAULT CONCAT('refused ', NEW.course_id);\n"
                 "  IF NEW.course_id LIKE 'course-v1:edX+CRLF+2026%%' THEN\n"
                 "    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = msg;\n"
                 "  END IF;\n"
                 "END//\n"
                 "DELIMITER ;\n" % (TRIGGER, TRIGGER))

    def tearDown(self):
        root_sql("DROP TRIGGER IF EXISTS %s;" % TRIGGER)
        stack.reset_data()

    def test_crlf_in_course_key_is_one_escaped_line(self):
        before, reqid = self.enroll_crlf()

        def logged():
            lines = stack.logs()[before:].splitlines()
            mine = [l for l in lines if "FORGED" in l]
            return mine if any("failed" in l and reqid in l for l in mine) else None

        mine = stack.wait_until(logged, 10, "the item's failure in the log")
        for line in stack.logs()[before:].splitlines():
            # No line was started by the client's bytes...
            self.assertFalse(line.startswith(FORGED[:24]), line)
        for line in mine:
            # ...and each line holding them holds them escaped, with the id.
            self.assertIn(ESCAPED, line)
            self.assertIn(reqid, line)
            self.assertNotIn("\r", line)
        # The request field and the database's error text, each escaped.
        self.assertTrue(any("refused " + ESCAPED in l for l in mine), mine)
        self.assertTrue(any("failed" in l and "(" + ESCAPED[:20] in l for l in mine), mine)



class JsonLogTest(CourseKeyWithCrLfTest):
    """log.format = json: every line one JSON object, the same fields, and
    the decoded message is the text mode's (escaped) message."""

    @classmethod
    def setUpClass(cls):
        stack.restart_pool(log_format="json")

    @classmethod
    def tearDownClass(cls):
        stack.restart_pool()

    def test_crlf_in_course_key_is_one_escaped_line(self):
        before, reqid = self.enroll_crlf()

        def logged():
            objs = [json.loads(l) for l in stack.logs()[before:].splitlines()]
            return [o for o in objs if o["request_id"] == reqid
                    and o["msg"].startswith("item ") and "FORGED" in o["msg"]] or None

        mine = stack.wait_until(logged, 10, "the item's failure in the JSON log")
        self.assertEqual(sorted(mine[0]), ["level", "msg", "pid", "request_id", "time"])
        self.assertEqual(mine[0]["level"], "error")
        self.assertIn("(" + ESCAPED, mine[0]["msg"])
        self.assertNotIn("\r", mine[0]["msg"])
        # Every line the daemon wrote meanwhile is a JSON object.
        objs = [json.loads(l) for l in stack.logs()[before:].splitlines()]
        self.assertTrue(all(isinstance(o["pid"], int) for o in objs))

    def test_unknown_format_is_refused_at_start(self):
        p = subprocess.run([stack.ENV["BULK_DAEMON"], "--config", stack.ENV["BULK_CONFIG"],
                            "--check-config"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, BULK_ENROLL_LOG_FORMAT="yaml"))
        self.assertEqual(p.returncode, 1)
        self.assertIn('log.format: "yaml" is not one of text, json', p.stderr)


if __name__ == "__main__":
    unittest.main()
