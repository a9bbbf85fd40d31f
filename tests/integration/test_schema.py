"""The schema check (src/schema.h) through the real binary against the
stack's MariaDB: `bulk-enrolld --check-config` and the daemon's start-up,
on the stack's own database and on scratch copies of the LMS stand-in
(tests/fixtures/lms/lms-tables.sql) with something taken away.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import stack

SCRATCH_DB = "edxapp_schema_check"
TIMEOUT = 20  # seconds: the bound on every daemon run here


def root_sql(sql, database=None):
    """Runs SQL as root over the stack's socket (what db_init does)."""
    args = ["mariadb", "--no-defaults", "--socket=" + stack.ENV["BULK_DB_SOCKET"], "-uroot"]
    if database:
        args.append(database)
    subprocess.run(args, input=sql.encode(), check=True, capture_output=True, timeout=60)


def root_load(path, database):
    with open(path, "rb") as f:
        subprocess.run(["mariadb", "--no-defaults", "--socket=" + stack.ENV["BULK_DB_SOCKET"],
                        "-uroot", database], stdin=f, check=True, capture_output=True, timeout=60)


def fixture(*parts):
    return os.path.join(stack.ENV["BULK_SRC_DIR"], *parts)


class SchemaCheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bulk-schema-")

    @classmethod
    def tearDownClass(cls):
        root_sql("DROP DATABASE IF EXISTS `%s`" % SCRATCH_DB)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def scratch_db(self, *alterations):
        """A fresh database with the LMS stand-in and our migration, the
        service's account granted on it, then the given statements."""
        user = stack.ENV["BULK_DB_USER"]
        root_sql("DROP DATABASE IF EXISTS `{0}`; CREATE DATABASE `{0}` CHARACTER SET utf8; "
                 "GRANT ALL PRIVILEGES ON `{0}`.* TO '{1}'@'localhost'; "
                 "GRANT ALL PRIVILEGES ON `{0}`.* TO '{1}'@'127.0.0.1';".format(SCRATCH_DB, user))
        root_load(fixture("tests", "fixtures", "lms", "lms-tables.sql"), SCRATCH_DB)
        root_load(fixture("sql", "003-bulk-enroll-outbox.sql"), SCRATCH_DB)
        if alterations:
            root_sql("; ".join(alterations), SCRATCH_DB)

    def config(self, **overrides):
        """The stack's configuration with some keys replaced."""
        with open(stack.ENV["BULK_CONFIG"]) as f:
            lines = f.read().splitlines()
        out = []
        for line in lines:
            key = line.split("=", 1)[0].strip()
            if key in overrides:
                continue
            out.append(line)
        out += ["%s = %s" % (k, v) for k, v in overrides.items()]
        path = os.path.join(self.tmp, "bulk-enroll.conf")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path

    def check_config(self, config):
        p = subprocess.run([stack.ENV["BULK_DAEMON"], "--config", config, "--check-config"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        return p.returncode, p.stdout + p.stderr

    def test_check_config_passes_on_the_stack_database(self):
        rc, out = self.check_config(stack.ENV["BULK_CONFIG"])
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)
        self.assertIn("schema: optional tables present, used: "
                      "enterprise_defaultenterpriseenrollmentintention", out)
        self.assertNotIn("absent", out)

    def test_check_config_names_a_missing_written_column(self):
        self.scratch_db("ALTER TABLE enterprise_enterprisecourseenrollment DROP COLUMN unenrolled_at")
        rc, out = self.check_config(self.config(**{"db.name": SCRATCH_DB}))
        self.assertEqual(rc, 1, out)
        self.assertIn("schema: enterprise_enterprisecourseenrollment has no column unenrolled_at: "
                      "edx-enterprise older than 0173_auto_20230531_1459", out)
        self.assertNotIn("configuration OK", out)

    def test_check_config_names_a_missing_unique_key(self):
        self.scratch_db("ALTER TABLE student_courseenrollment "
                        "DROP INDEX student_courseenrollment_user_id_course_id_5d34a47f_uniq, "
                        "ADD INDEX by_user_course (user_id, course_id)")
        rc, out = self.check_config(self.config(**{"db.name": SCRATCH_DB}))
        self.assertEqual(rc, 1, out)
        self.assertIn("student_courseenrollment has no unique key on (user_id,course_id)", out)

    def test_missing_optional_table_is_reported_not_fatal(self):
        self.scratch_db("DROP TABLE enterprise_historicalenterprisecourseenrollment",
                        "DROP TABLE enterprise_historicaldefaultenterpriseenrollmentrealization, "
                        "enterprise_defaultenterpriseenrollmentrealization")
        rc, out = self.check_config(self.config(**{"db.name": SCRATCH_DB}))
        self.assertEqual(rc, 0, out)
        self.assertIn("schema: optional table enterprise_historicalenterprisecourseenrollment "
                      "absent, not written or read (enterprise_historicalenterprisecourseenrollment "
                      "is missing: edx-enterprise older than 0166_auto_20221209_0819)", out)
        self.assertIn("schema: optional table enterprise_defaultenterpriseenrollmentrealization "
                      "absent", out)
        self.assertIn("configuration OK", out)

    def test_check_config_needs_the_database(self):
        rc, out = self.check_config(self.config(**{
            "db.socket": os.path.join(self.tmp, "no-such.sock")}))
        self.assertEqual(rc, 1, out)
        self.assertIn("schema: cannot connect to the database to check it", out)

    def start_daemon(self, config):
        sock = os.path.join(self.tmp, "fcgi.sock")
        log = open(os.path.join(self.tmp, "daemon.log"), "w+")
        p = subprocess.Popen([stack.ENV["BULK_DAEMON"], "--config", config,
                              "--listen", "unix:" + sock], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.addCleanup(self.stop_daemon, p, log)
        return p, sock, log

    @staticmethod
    def stop_daemon(p, log):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.close()

    @staticmethod
    def read(log):
        log.seek(0)
        return log.read()

    def test_startup_refuses_a_missing_required_column(self):
        self.scratch_db("ALTER TABLE enterprise_licensedenterprisecourseenrollment "
                        "DROP COLUMN fulfillment_type")
        p, sock, log = self.start_daemon(self.config(**{"db.name": SCRATCH_DB}))
        try:
            rc = p.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("the daemon started on an incomplete schema: " + self.read(log))
        out = self.read(log)
        self.assertEqual(rc, 1, out)
        self.assertIn("schema: enterprise_licensedenterprisecourseenrollment has no column "
                      "fulfillment_type: edx-enterprise older than 0167_auto_20230209_2108", out)
        self.assertFalse(os.path.exists(sock), "the socket was opened before the check")

    def test_unreachable_database_does_not_prevent_start(self):
        p, sock, log = self.start_daemon(self.config(**{
            "db.socket": os.path.join(self.tmp, "no-such.sock")}))
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(sock) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        out = self.read(log)
        self.assertIsNone(p.poll(), "the daemon exited: " + out)
        self.assertTrue(os.path.exists(sock), "the daemon did not open its socket: " + out)
        self.assertIn("schema: database unreachable at start", out)


if __name__ == "__main__":
    unittest.main()
