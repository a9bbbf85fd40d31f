"""The fault catalogue, database part (issue 7), through the real stack:
nginx -> bulk-enrolld -> MariaDB, the service connected as its ordinary
account (no SUPER, so read_only applies to it as in production).

- a row held by another session (READ COMMITTED, as Django runs the LMS)
  with the server's default 50 s lock wait: only that item fails, the rest
  of its chunk and request succeed, the answer comes within 20 s;
- the database read-only, or out of space: 503 JSON, nothing reported as
  success, nothing written; normal service once lifted;
- MariaDB restarted, and SIGKILLed, in the middle of a 10,000-item request
  and under continuous small requests: every answer is correct or a clean
  5xx JSON error, service comes back with the server, and after re-sending
  what got a 5xx the database holds exactly what the 2xx answers reported
  (once: no second row, order or e-mail).

Every wait is bounded; every test puts the stack back as it found it.
"""

import json
import os
import shutil
import subprocess
import threading
import time
import unittest
import uuid

import pymysql

import stack

DEMOX = "course-v1:edX+DemoX+2026"
LICENSE = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
TRANSACTION = "9c1a1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
UNAVAILABLE = {"detail": "Service temporarily unavailable, try again later."}
FIRST_LEARNER_ID = 1000   # learners the tests add start here (demo data: 1..7)


def root_db(socket=None):
    """A root connection over the socket (socket authentication)."""
    return pymysql.connect(unix_socket=socket or stack.ENV["BULK_DB_SOCKET"], user="root",
                           database=stack.ENV["BULK_DB_NAME"], charset="utf8mb4",
                           autocommit=True, connect_timeout=10)


def scalar(sql, *args, connect=None):
    conn = (connect or stack.db)()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def add_learners(n):
    """Adds n active learners (ids FIRST_LEARNER_ID...) and returns their e-mails."""
    rows = [(FIRST_LEARNER_ID + i, "fault%d" % i, "Fault", "Learner%d" % i,
             "fault%d@example.com" % i) for i in range(n)]
    conn = stack.db()
    try:
        with conn.cursor() as cur:
            for lo in range(0, n, 1000):
                cur.executemany(
                    "INSERT INTO auth_user (id, username, first_name, last_name, email, is_staff, "
                    "is_active, is_superuser, password, date_joined) "
                    "VALUES (%s, %s, %s, %s, %s, 0, 1, 0, '', UTC_TIMESTAMP(6))", rows[lo:lo + 1000])
    finally:
        conn.close()
    return [r[4] for r in rows]


def post(body, timeout=60, rid=None):
    headers = {"X-Request-ID": rid} if rid else None
    return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body=body,
                         token=stack.token(), timeout=timeout, headers=headers)


def is_clean_5xx(status, headers, body):
    """A 5xx in the documented shape: JSON {"detail": "..."}."""
    if not 500 <= status <= 599 or not headers.get("content-type", "").startswith("application/json"):
        return False
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and list(doc) == ["detail"] and isinstance(doc["detail"], str)


def table_counts(connect=None):
    """Rows of every table the service writes, to show that nothing was."""
    tables = ["student_courseenrollment", "enterprise_enterprisecustomeruser",
              "enterprise_pendingenterprisecustomeruser", "enterprise_pendingenrollment",
              "enterprise_enterprisecourseenrollment", "enterprise_licensedenterprisecourseenrollment",
              "enterprise_learnercreditenterprisecourseenrollment", "bulk_enroll_outbox"]
    return {t: scalar("SELECT COUNT(*) FROM `%s`" % t, connect=connect) for t in tables}


class HeldRowTest(unittest.TestCase):
    """A row another session keeps locked far longer than we may wait."""

    def setUp(self):
        stack.reset_data()

    def test_row_held_elsewhere_fails_only_that_item_within_20_s(self):
        conn = root_db()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@GLOBAL.innodb_lock_wait_timeout")
                # The server's default: what a short session value replaces.
                self.assertEqual(cur.fetchone()[0], 50)
        finally:
            conn.close()
        emails = add_learners(40)
        # Chunk one: erin (whose inactive enrollment must be written) among
        # existing learners and pending e-mails; chunk two: more of both.
        items = [{"email": e, "course_run_key": DEMOX, "license_uuid": LICENSE} for e in emails[:20]]
        items.insert(7, {"user_id": 6, "course_run_key": DEMOX, "transaction_id": TRANSACTION})
        items += [{"email": "held%d@example.com" % i, "course_run_key": DEMOX,
                   "license_uuid": LICENSE} for i in range(1200)]
        items += [{"email": e, "course_run_key": DEMOX, "license_uuid": LICENSE} for e in emails[20:]]
        body = {"enrollments_info": items, "notify": True}

        holder = stack.db()   # the LMS: READ COMMITTED, updating erin right now
        try:
            with holder.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute("START TRANSACTION")
                cur.execute("SELECT id FROM student_courseenrollment WHERE user_id = 6 "
                            "AND course_id = %s FOR UPDATE", (DEMOX,))
                self.assertEqual(len(cur.fetchall()), 1)
            rid = "fault-held-row-" + uuid.uuid4().hex[:12]
            t0 = time.monotonic()
            status, _, raw = post(body, timeout=120, rid=rid)
            elapsed = time.monotonic() - t0
            # The one timing assertion allowed: enterprise-subsidy's timeout.
            self.assertLess(elapsed, 20.0, "answered after %.1f s" % elapsed)
            self.assertEqual(status, 409, raw[:300])
            doc = json.loads(raw)
            self.assertEqual(doc["failures"], [{"user_id": 6, "email": "erin@example.com",
                                                "course_run_key": DEMOX}])
            self.assertEqual(len(doc["successes"]), 40)
            self.assertTrue(all(s["created"] for s in doc["successes"]))
            self.assertEqual(len(doc["pending"]), 1200)
            # Written for everyone else, while the row is still held.
            self.assertEqual(scalar("SELECT COUNT(*) FROM student_courseenrollment "
                                    "WHERE is_active = 1 AND user_id >= %s", FIRST_LEARNER_ID), 40)
            self.assertEqual(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 1200)
            self.assertEqual(scalar("SELECT is_active FROM student_courseenrollment WHERE user_id = 6"), 0)
            self.assertRegex(stack.logs(), rid + r" item 7 \(course-v1:edX\+DemoX\+2026\) failed: "
                                                 r"lock wait timeout")
        finally:
            holder.rollback()
            holder.close()
        # Released: the same request converges, erin included, nothing twice.
        status, _, raw = post(body, timeout=120)
        self.assertEqual(status, 202, raw[:300])
        doc = json.loads(raw)
        self.assertEqual(doc["failures"], [])
        created = [s for s in doc["successes"] if s["created"]]
        self.assertEqual([s["user_id"] for s in created], [6])
        self.assertEqual(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'email'"), 1241)


class UnwritableTest(unittest.TestCase):
    """The database refuses writes: 503, nothing claimed, nothing written."""

    def setUp(self):
        stack.reset_data()
        self.body = {"enrollments_info": [
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LICENSE},
            {"email": "ro.new@example.com", "course_run_key": DEMOX, "license_uuid": LICENSE}],
            "notify": True}

    def assert_unavailable(self, name, cause, connect=None):
        rid = "%s-%s" % (name, uuid.uuid4().hex[:12])   # the daemon's log outlives runs
        before = table_counts(connect)
        status, headers, raw = post(self.body, rid=rid)
        self.assertEqual(status, 503, raw)
        self.assertEqual(json.loads(raw), UNAVAILABLE)
        self.assertTrue(is_clean_5xx(status, headers, raw))
        self.assertEqual(headers.get("retry-after"), "5")
        self.assertEqual(table_counts(connect), before)
        # Logged once, with the request id and the cause.
        lines = [ln for ln in stack.logs().splitlines() if rid in ln and "answering 503" in ln]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(cause, lines[0])
        return lines[0]

    def test_read_only_database_is_503_until_lifted(self):
        conn = root_db()
        try:
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL read_only = 1")
                try:
                    line = self.assert_unavailable("fault-read-only",
                                                   "database read-only or out of space")
                    self.assertIn("(1290: ", line)
                finally:
                    cur.execute("SET GLOBAL read_only = 0")
        finally:
            conn.close()
        status, _, raw = post(self.body)
        self.assertEqual(status, 202, raw)
        self.assertEqual(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), 1)


class OutOfSpaceTest(unittest.TestCase):
    """A second throwaway MariaDB whose one tablespace is capped (every
    table in ibdata1, which may grow to 20 MiB only), filled until InnoDB
    answers ER_RECORD_FILE_FULL (1114) as a full disk would; the pool is
    pointed at it for the test and back at the stack's server after."""

    SERVER_OPTIONS = ["--innodb-file-per-table=0", "--innodb-log-file-size=8M",
                      "--innodb-buffer-pool-size=16M"]
    CAPPED = "--innodb-data-file-path=ibdata1:12M:autoextend:max:20M"
    # What an operator does about it: more room for the tablespace.
    GROWN = "--innodb-data-file-path=ibdata1:12M:autoextend:max:64M"

    def setUp(self):
        self.dir = os.path.join(stack.STACK_DIR, "db-full")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.server = None
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)   # the pool (nobody) reaches the socket
        self.addCleanup(shutil.rmtree, self.dir, True)
        subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + self.dir + "/data",
                        "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db",
                        "--skip-name-resolve", "--force", self.CAPPED] + self.SERVER_OPTIONS,
                       check=True, capture_output=True, timeout=120)
        self.addCleanup(self.stop_server)
        self.start_server(self.CAPPED)
        env = stack.ENV
        conn = pymysql.connect(unix_socket=self.sock, user="root", autocommit=True, connect_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE `%s` CHARACTER SET utf8" % env["BULK_DB_NAME"])
                # An ordinary account, as in production.
                cur.execute("CREATE USER %s@'localhost' IDENTIFIED BY %s",
                            (env["BULK_DB_USER"], env["BULK_DB_PASSWORD"]))
                cur.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON `%s`.* TO %%s@'localhost'"
                            % env["BULK_DB_NAME"], (env["BULK_DB_USER"],))
        finally:
            conn.close()
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        files = sorted(os.path.join(src, "sql", f) for f in os.listdir(os.path.join(src, "sql"))
                       if f.endswith(".sql"))
        # The LMS tables as the stack loads them (the real DDL), then ours.
        lms = [os.path.join(src, "tests", "fixtures", "lms", "lms-tables.sql")]
        for path in lms + files + [os.path.join(src, "tests", "fixtures", "demo.sql")]:
            with open(path, "rb") as f:
                subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.sock, "-uroot",
                                env["BULK_DB_NAME"]], stdin=f, check=True, capture_output=True,
                               timeout=60)
        self.addCleanup(stack.restart_pool)   # back to the stack's own server
        stack.restart_pool(db_socket=self.sock)

    def start_server(self, data_file_path):
        self.server = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--datadir=" + self.dir + "/data", "--socket=" + self.sock,
             "--skip-networking", "--user=root", "--skip-log-bin", "--skip-name-resolve",
             "--pid-file=" + self.dir + "/mariadbd.pid", "--log-error=" + self.dir + "/mariadbd.err",
             data_file_path] + self.SERVER_OPTIONS, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        stack.wait_until(self.server_answers, timeout=60, what="the capped MariaDB", interval=0.2)

    def server_answers(self):
        try:
            pymysql.connect(unix_socket=self.sock, user="root", connect_timeout=2).close()
            return True
        except pymysql.err.MySQLError:
            return False

    def stop_server(self):
        if self.server is None:
            return
        self.server.terminate()
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(timeout=10)
        self.server = None

    def connect(self):
        return pymysql.connect(unix_socket=self.sock, user="root", database=stack.ENV["BULK_DB_NAME"],
                               charset="utf8mb4", autocommit=True, connect_timeout=10)

    def fill(self):
        """Grows a filler table until the tablespace refuses even a small row."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE filler (id int AUTO_INCREMENT PRIMARY KEY, pad longblob) "
                            "ENGINE=InnoDB")
                for size in (1 << 20, 1 << 16, 1 << 12, 256):
                    for _ in range(100):
                        try:
                            cur.execute("INSERT INTO filler (pad) VALUES (REPEAT('x', %s))", (size,))
                        except pymysql.err.OperationalError as e:
                            self.assertEqual(e.args[0], 1114, e.args)
                            break
                    else:
                        self.fail("the capped tablespace never filled up")
        finally:
            conn.close()

    def test_out_of_space_is_503_until_space_is_freed(self):
        body = {"enrollments_info": [
            {"email": "alice@example.com", "course_run_key": DEMOX, "license_uuid": LICENSE}] + [
            {"email": "full%d@example.com" % i, "course_run_key": DEMOX, "license_uuid": LICENSE}
            for i in range(300)], "notify": True}
        self.fill()
        unwritable = UnwritableTest("test_read_only_database_is_503_until_lifted")
        unwritable.body = body
        line = unwritable.assert_unavailable("fault-disk-full", "database read-only or out of space",
                                             connect=self.connect)
        self.assertIn("(1114: ", line)
        # Room made (the server restarted with a larger cap): normal service
        # on the same responders, which reconnect by themselves.
        self.stop_server()
        self.start_server(self.GROWN)
        status, _, raw = post(body)
        self.assertEqual(status, 202, raw[:300])
        self.assertEqual(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment",
                                connect=self.connect), 300)


class ServerLossTest(unittest.TestCase):
    """MariaDB restarted (SIGTERM) or killed (SIGKILL) under load."""

    def setUp(self):
        stack.reset_data()
        self.addCleanup(self.ensure_server_up)

    def ensure_server_up(self):
        try:
            stack.db().close()
        except pymysql.err.MySQLError:
            stack.start_db()

    def assert_answer(self, status, headers, raw, expected):
        """A correct answer (expected(doc) holds) or a clean 5xx JSON error."""
        if 200 <= status < 300:
            expected(json.loads(raw))
        else:
            self.assertTrue(is_clean_5xx(status, headers, raw), (status, headers, raw[:300]))

    def resend_until_2xx(self, body, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            status, headers, raw = post(body, timeout=120)
            if 200 <= status < 300:
                return status, json.loads(raw)
            self.assertTrue(is_clean_5xx(status, headers, raw), (status, raw[:300]))
            self.assertLess(time.monotonic(), deadline, "no 2xx after the server came back")
            time.sleep(0.2)

    def assert_database_holds(self, learner_ids, pending_emails, others=0):
        """Exactly these rows, each once, with one e-mail row each (notify);
        `others` more e-mails for demo learners the request enrolled."""
        conn = stack.db()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT user_id FROM student_courseenrollment "
                            "WHERE is_active = 1 AND user_id >= %s", (FIRST_LEARNER_ID,))
                got = sorted(r[0] for r in cur.fetchall())
                self.assertEqual(got, sorted(learner_ids))
                cur.execute("SELECT u.user_email FROM enterprise_pendingenrollment p "
                            "JOIN enterprise_pendingenterprisecustomeruser u ON u.id = p.user_id")
                self.assertEqual(sorted(r[0] for r in cur.fetchall()), sorted(pending_emails))
                cur.execute("SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM bulk_enroll_outbox "
                            "WHERE kind = 'email'")
                self.assertEqual(cur.fetchone(), (len(learner_ids) + len(pending_emails) + others,) * 2)
                cur.execute("SELECT COUNT(*) FROM enterprise_enterprisecourseenrollment ece "
                            "JOIN enterprise_enterprisecustomeruser ecu "
                            "ON ecu.id = ece.enterprise_customer_user_id WHERE ecu.user_id >= %s",
                            (FIRST_LEARNER_ID,))
                self.assertEqual(cur.fetchone()[0], len(learner_ids))
        finally:
            conn.close()

    # ---- a 10,000-item request -------------------------------------------

    def large_request_across(self, fault):
        # The test stack's body limit is 1 MiB; 10,000 items are about 1.3.
        if stack.MAX_BODY_BYTES < 4 << 20:
            self.addCleanup(lambda: (self.ensure_server_up(), stack.restart_pool()))
            stack.restart_pool(limits_max_body_bytes=4 << 20)
        emails = add_learners(2000)
        items, learner_ids, pending, successes = [], [], [], []
        for i in range(10000):
            if i == 2501:
                # erin, whose row a second session holds: the request waits
                # on it in its third chunk, so the fault surely lands while
                # two chunks are committed and the third is in flight.
                items.append({"user_id": 6, "course_run_key": DEMOX, "transaction_id": TRANSACTION})
                successes.append(6)
            elif i % 5 == 0:
                items.append({"email": emails[i // 5], "course_run_key": DEMOX, "license_uuid": LICENSE})
                learner_ids.append(FIRST_LEARNER_ID + i // 5)
                successes.append(learner_ids[-1])
            else:
                pending.append("big%d@example.com" % i)
                items.append({"email": pending[-1], "course_run_key": DEMOX, "license_uuid": LICENSE})
        body = {"enrollments_info": items, "notify": True}

        def complete(doc):
            self.assertEqual(doc["failures"], [])
            self.assertEqual([s["user_id"] for s in doc["successes"]], successes)
            self.assertEqual([p["email"] for p in doc["pending"]], pending)

        answer = {}
        holder = stack.db()
        t = threading.Thread(target=lambda: answer.update(r=post(body, timeout=120)))
        try:
            with holder.cursor() as cur:
                # READ COMMITTED, as the LMS: the row only, no gap locks.
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute("START TRANSACTION")
                cur.execute("SELECT id FROM student_courseenrollment WHERE user_id = 6 FOR UPDATE")
            t.start()
            stack.wait_until(lambda: not t.is_alive() or scalar(
                "SELECT COUNT(*) FROM enterprise_pendingenrollment") >= 1600,
                timeout=60, what="the first two chunks", interval=0.05)
            self.assertTrue(t.is_alive(), "the request ended before the fault: %r"
                            % (answer.get("r", ("?",))[0],))
            fault()
        finally:
            if t.is_alive() or t.ident is not None:
                t.join(timeout=150)
            try:
                holder.close()   # gone with the server; its lock is released
            except pymysql.err.MySQLError:
                pass
        self.assertFalse(t.is_alive())
        self.assert_answer(*answer["r"], expected=complete)
        stack.start_db()
        # Back: a re-send converges on what the lost answer had committed.
        status, doc = self.resend_until_2xx(body)
        self.assertEqual(status, 202)
        complete(doc)
        self.assertTrue(any(not s["created"] for s in doc["successes"]), "nothing was committed first")
        self.assert_database_holds(learner_ids, pending, others=1)

    def test_restart_in_the_middle_of_a_large_request(self):
        self.large_request_across(stack.stop_db)

    def test_kill_in_the_middle_of_a_large_request(self):
        self.large_request_across(stack.kill_db)

    # ---- continuous small requests -----------------------------------------

    def test_continuous_small_requests_across_restart_and_kill(self):
        emails = add_learners(1200)
        lock = threading.Lock()
        answers = []          # (index, started, status, headers, raw)
        next_index = [0]
        stop = threading.Event()

        def body(i):
            return {"enrollments_info": [
                {"email": emails[i], "course_run_key": DEMOX, "license_uuid": LICENSE},
                {"email": "small%d@example.com" % i, "course_run_key": DEMOX,
                 "license_uuid": LICENSE}], "notify": True}

        def traffic():
            while not stop.is_set():
                with lock:
                    i = next_index[0]
                    if i >= len(emails):
                        return
                    next_index[0] += 1
                started = time.monotonic()
                status, headers, raw = post(body(i), timeout=30)
                with lock:
                    answers.append((i, started, status, headers, raw))
                time.sleep(0.02)

        workers = [threading.Thread(target=traffic) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            time.sleep(1.0)
            stack.stop_db()
            time.sleep(1.0)
            stack.start_db()
            time.sleep(1.5)
            stack.kill_db()
            time.sleep(1.0)
            stack.start_db()
            back = time.monotonic()
            time.sleep(2.0)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=60)
        self.assertGreater(len(answers), 20)

        def expected(i):
            def check(doc):
                self.assertEqual(doc["failures"], [])
                self.assertEqual([(s["user_id"], s["created"]) for s in doc["successes"]],
                                 [(FIRST_LEARNER_ID + i, True)])
                self.assertEqual([(p["email"], p["created"]) for p in doc["pending"]],
                                 [("small%d@example.com" % i, True)])
            return check

        failed = []
        for i, started, status, headers, raw in answers:
            self.assert_answer(status, headers, raw, expected=expected(i))
            if not 200 <= status < 300:
                failed.append(i)
                # Once the server is back, requests succeed again.
                self.assertLess(started, back, "answered %d after the server was back" % status)
        self.assertTrue(failed, "no request met the fault")
        self.assertTrue(any(started > back and 200 <= status < 300
                            for _, started, status, _, _ in answers))
        for i in failed:
            self.resend_until_2xx(body(i))
        sent = sorted(a[0] for a in answers)
        self.assert_database_holds([FIRST_LEARNER_ID + i for i in sent],
                                   ["small%d@example.com" % i for i in sent])
