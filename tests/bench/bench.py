#!/usr/bin/python3
"""Times the enrollment endpoint through nginx on a running stack: B1-B4.

    /usr/bin/python3 tests/bench/bench.py [--repeat R] [--wrk-seconds S]
        [--save FILE] [--baseline FILE] [--reset] [--only B1,B2,...]

Normally run by tests/bench/bench.sh, which starts a throwaway stack (two
responders, MariaDB with innodb_flush_log_at_trx_commit=1) and sets the
BULK_* variables read here.  The database is written as root over the unix
socket (the stacks use socket authentication for root).

The figures of issue 9, both sides of every ratio measured in this run:

  B1  10,000 items: 1,000 learners x 10 courses, every other learner an
      existing account (by e-mail, in another case), the others unknown
      e-mails (pending), license uuids, notify.  Against the SQL floor: the
      rows B1 wrote, read back from every table it grew, written as
      multi-row upserts (1,000 rows a statement, parents before children,
      one transaction) through the `mariadb` client into a scratch database
      on the same server holding the same table definitions (indexes,
      foreign keys) and the rows that were there before B1.  The floor is
      generated from what the tables hold, so it follows whatever the
      service writes (history rows, role rows, outbox rows ...).
  B1 re-sent  the same body again (nothing to write): median of --repeat,
      against B1.
  B2  one-item requests (a distinct unknown e-mail each, from a wrk Lua
      script; 16 connections, 2 wrk threads, --wrk-seconds each) against
      tests/bench/trivial_responder.c (built here) behind the same nginx on
      the same socket with as many processes: req/s ratio, and p99 of both.
      For context, against B2's SQL floor: the rows B2 wrote, read back,
      dealt into one transaction a request and replayed by 16 concurrent
      `mariadb` clients into a scratch copy of the tables.
  B3  100,000 items (10,000 learners x 10 courses, B1's shape) against B1's
      wall time; and the peak RSS (VmHWM) of the responder that served it.
  B4  license-manager's pattern: 16 requests of 625 items (25 learners x 25
      courses, B1's mix, licenses, notify) from 4 concurrent clients:
      items/s against B1's items/s; after B3 the tables are emptied and
      seeded again first, so B4 meets the database B1 met.

Every answer is checked (status and counts; B2 by its rows), so a fast
wrong answer does not pass for a result.  Figures are printed, never
asserted: the targets are shown next to them.

Also printed, for profiling: CPU seconds of the responders and of mariadbd
(/proc) and the statements the server prepared and executed (Com_stmt_*)
per request.  --save writes the figures as JSON; --baseline FILE (saved
earlier) adds a "before" column.

Bounded: a fixed list of requests, each with a 120 s timeout; wrk runs for
a fixed time; loopback only.
"""

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

import jwt
import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.dirname(os.path.dirname(HERE))
STACK_SH = os.path.join(SRC_DIR, "tests", "stack.sh")

ENTERPRISE = "bec0bec0bec04bec8bec0bec0bec0001"
PATH = "/enterprise/api/v1/enterprise-customer/%s/enroll_learners_in_courses/" % ENTERPRISE
USER_ID_BASE = 1000000
COURSES = ["course-v1:Bench+C%02d+2026" % i for i in range(25)]
TIMEOUT_S = 120
FLOOR_ROWS_PER_STATEMENT = 1000
FLOOR_B2_CLIENTS = 16          # as many as wrk's connections

# Existing learners (seeded accounts), by figure: every other learner of a
# figure is one of these; the others are unknown e-mails.
B1_LEARNERS, B3_LEARNERS, B4_LEARNERS = 1000, 10000, 16 * 25
B1_SEED, B3_SEED, B4_SEED = 0, B1_LEARNERS // 2, (B1_LEARNERS + B3_LEARNERS) // 2
SEEDED = (B1_LEARNERS + B3_LEARNERS + B4_LEARNERS) // 2

TARGETS = {
    "B1 / floor": ("<=", 1.25),
    "B1 re-sent / B1": ("<=", 0.5),
    "B2 / trivial": (">=", 0.33),
    "B3 / B1": ("<=", 11.0),
    "B3 peak RSS MiB": ("<=", 64.0),
    "B4 / B1 items/s": (">=", 0.8),
}


def env(name):
    try:
        return os.environ[name]
    except KeyError:
        sys.exit("bench: %s is not set (run tests/bench/bench.sh)" % name)


def db():
    return pymysql.connect(unix_socket=env("BULK_DB_SOCKET"), user="root",
                           database=env("BULK_DB_NAME"), charset="utf8mb4",
                           autocommit=True, connect_timeout=10)


def mariadb_cmd():
    return ["mariadb", "--no-defaults", "--socket=" + env("BULK_DB_SOCKET"), "-uroot",
            env("BULK_DB_NAME")]


def stack_sh(command):
    """tests/stack.sh's internal commands (pool-stop, pool-start) on this stack."""
    proc = subprocess.run(["bash", STACK_SH, command], env=dict(os.environ),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    if proc.returncode != 0:
        sys.exit("bench: tests/stack.sh %s failed:\n%s" % (command, proc.stderr))


def reset_data():
    """Empties the tables the service writes and re-applies the migrations:
    the integration harness's reset (tests/integration/stack.py), without
    the demo data."""
    sys.path.insert(0, os.path.join(SRC_DIR, "tests", "integration"))
    import stack  # noqa: E402 (needs the stack's BULK_* environment)
    stack.reset_data(demo=False)


def insert_rows(cur, head, rows, per=1000):
    for i in range(0, len(rows), per):
        part = rows[i:i + per]
        marks = ", ".join(["(" + ", ".join(["%s"] * len(part[0])) + ")"] * len(part))
        cur.execute(head + marks, [v for r in part for v in r])


def seed(conn):
    """The bench enterprise, SEEDED learners (ids from USER_ID_BASE, mixed-
    case e-mails), and open verified course runs."""
    with conn.cursor() as cur:
        # The real LMS shape (tests/fixtures/lms/): every NOT NULL column
        # without a default is given.  The enterprise's many flags are 0
        # (the service reads none of them), its customer type and site the
        # LMS's seeded ones.
        cur.execute("SELECT GROUP_CONCAT(column_name) FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = 'enterprise_enterprisecustomer' "
                    "AND is_nullable = 'NO' AND column_default IS NULL AND column_name NOT IN "
                    "('created', 'modified', 'uuid', 'name', 'slug', 'active', 'customer_type_id', "
                    "'site_id')")
        rest = cur.fetchone()[0].split(",")
        cur.execute("INSERT INTO enterprise_enterprisecustomer (created, modified, uuid, name, slug, "
                    "active, customer_type_id, site_id, %s) VALUES (UTC_TIMESTAMP(6), "
                    "UTC_TIMESTAMP(6), %%s, 'Bench Corp', 'bench-corp', 1, 1, 1, %s)"
                    % (", ".join(rest), ", ".join(
                        "'at_enrollment'" if c == "enforce_data_sharing_consent" else
                        "''" if c == "learner_portal_sidebar_content" else "0" for c in rest)),
                    (ENTERPRISE,))
        insert_rows(cur, "INSERT INTO course_overviews_courseoverview (id, display_name, created, "
                    "modified, version, _location, display_number_with_default, "
                    "display_org_with_default, course_image_url, certificates_show_before_end, "
                    "cert_html_view_enabled, has_any_active_web_certificate, cert_name_short, "
                    "cert_name_long, mobile_available, visible_to_staff_only, "
                    "_pre_requisite_courses_json, invitation_only, org, self_paced, "
                    "eligible_for_financial_aid, banner_image_url, allow_proctoring_opt_out, "
                    "enable_proctored_exams, entrance_exam_enabled, entrance_exam_id, "
                    "entrance_exam_minimum_score_pct, force_on_flexible_peer_openassessments) VALUES ",
                    [(c, "Bench course %d" % i, "2024-01-01", "2024-01-01", 19, c, "B%d" % i,
                      "edX", "", 0, 0, 0, "", "", 0, 0, "[]", 0, "edX", 0, 1, "", 0, 0, 0, "",
                      0.65, 0) for i, c in enumerate(COURSES)])
        insert_rows(cur, "INSERT INTO course_modes_coursemode (course_id, mode_slug, "
                    "mode_display_name, min_price, currency, suggested_prices, "
                    "expiration_datetime_is_explicit) VALUES ",
                    [(c, m, m, 0, "usd", "", 0) for c in COURSES for m in ("audit", "verified")])
        insert_rows(cur, "INSERT INTO auth_user (id, username, first_name, last_name, email, "
                    "password, is_superuser, is_staff, is_active, date_joined) VALUES ",
                    [(USER_ID_BASE + i, "bench%d" % i, "Bench", "L%d" % i,
                      "Bench.Learner%d@Bench.Example" % i, "!", 0, 0, 1, "2024-01-01")
                     for i in range(SEEDED)])


def token():
    now = int(time.time())
    return jwt.encode({"iss": env("BULK_JWT_ISSUER"), "aud": env("BULK_JWT_AUDIENCE"),
                       "iat": now, "exp": now + 3600, "preferred_username": "bench",
                       "administrator": True, "roles": ["enterprise_openedx_operator:*"]},
                      env("BULK_JWT_SECRET"), algorithm="HS256")


def lic(i):
    return str(uuid.UUID(int=(0x5b8e << 112) | i))


# ---------------------------------------------------------------- processes

def read_pid(*parts):
    try:
        with open(os.path.join(env("BULK_STACK_DIR"), *parts)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def responder_pids():
    """The pool's responders: children of the master (pool/master.pid)."""
    master = read_pid("pool", "master.pid")
    if master is None:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == master and b"bulk-enrolld" in cmd:
            pids.append(int(name))
    return sorted(pids)


def proc_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def stmt_counts():
    """Server-wide prepared-statement prepares and executions so far."""
    conn = db()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                        "('Com_stmt_prepare', 'Com_stmt_execute')")
            return {k: int(v) for k, v in cur.fetchall()}
    finally:
        conn.close()


class Probe:
    """CPU of the responders and of mariadbd, and statements, over a span."""

    def __init__(self):
        self.pids = responder_pids()
        self.dbpid = read_pid("db", "mariadbd.ours.pid")
        self.cpu0 = {p: cpu_ticks(p) for p in self.pids}
        self.db0 = cpu_ticks(self.dbpid) if self.dbpid else 0
        self.st0 = stmt_counts()

    def busiest(self):
        """The responder whose CPU time moved most (the one that served)."""
        return max(self.pids, key=lambda p: cpu_ticks(p) - self.cpu0[p]) if self.pids else None

    def figures(self, runs):
        hz = os.sysconf("SC_CLK_TCK")
        st1 = stmt_counts()
        return {
            "app_cpu_s": sum(cpu_ticks(p) - self.cpu0[p] for p in self.pids) / hz / runs,
            "db_cpu_s": ((cpu_ticks(self.dbpid) - self.db0) / hz / runs) if self.dbpid else 0.0,
            "prepares": (st1.get("Com_stmt_prepare", 0) - self.st0.get("Com_stmt_prepare", 0)) / runs,
            "executes": (st1.get("Com_stmt_execute", 0) - self.st0.get("Com_stmt_execute", 0)) / runs,
        }


# ---------------------------------------------------------------- HTTP

def post(body_bytes, tok):
    u = urllib.parse.urlsplit(env("BULK_URL"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT_S)
    try:
        t0 = time.perf_counter()
        conn.request("POST", PATH, body=body_bytes,
                     headers={"Content-Type": "application/json", "Authorization": "JWT " + tok})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - t0
    finally:
        conn.close()


def check(name, status, data, want_status, want):
    """Exits when the answer is not what the figure expects.  want:
    {"successes": n, "pending": n, "failures": n, "created": n}."""
    problems = []
    if status != want_status:
        problems.append("status %d, expected %d: %s" % (status, want_status, data[:300]))
    else:
        try:
            body = json.loads(data)
        except ValueError:
            body = None
            problems.append("body is not JSON: %r" % data[:200])
        if body is not None:
            got = {k: len(body.get(k, [])) for k in ("successes", "pending", "failures",
                                                     "invalid_email_addresses", "invalid_user_ids")}
            got["created"] = sum(1 for k in ("successes", "pending")
                                 for r in body.get(k, []) if r.get("created"))
            for k, v in want.items():
                if got.get(k) != v:
                    problems.append("%s: %s, expected %s" % (k, got.get(k), v))
    if problems:
        sys.exit("bench: %s: WRONG ANSWER: %s" % (name, "; ".join(problems)))


def body_of(items):
    return json.dumps({"enrollments_info": items, "notify": True}).encode("utf-8")


def learner_items(tag, nlearners, seed_base, courses, lic_base):
    """nlearners x courses items, learner-major (as license-manager sends
    them): even learners are seeded accounts from seed_base, by e-mail in
    another case; odd ones unknown e-mails (pending)."""
    items = []
    for j in range(nlearners):
        if j % 2 == 0:
            email = "bench.learner%d@bench.example" % (seed_base + j // 2)
        else:
            email = "%s.Unknown%d@Bench.Example" % (tag, j)
        for c in courses:
            items.append({"email": email, "course_run_key": c, "license_uuid": lic(lic_base + j)})
    return items


def want_mix(n_items, created=True):
    half = n_items // 2
    return {"successes": half, "pending": n_items - half, "failures": 0,
            "created": n_items if created else 0}


# ---------------------------------------------------------------- the SQL floor

def table_state(cur):
    """{table: (rows, max auto-increment id or None, auto-increment column)}."""
    cur.execute("SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
    tables = sorted(r[0] for r in cur.fetchall())
    cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND extra LIKE '%auto_increment%'")
    autoinc = dict(cur.fetchall())
    state = {}
    for t in tables:
        col = autoinc.get(t)
        if col:
            cur.execute("SELECT COUNT(*), MAX(`%s`) FROM `%s`" % (col, t))
            n, top = cur.fetchone()
        else:
            cur.execute("SELECT COUNT(*) FROM `%s`" % t)
            n, top = cur.fetchone()[0], None
        state[t] = (n, top, col)
    return state


def parents_first(cur, tables):
    """tables ordered so that a table comes after those its foreign keys
    reference (within the set)."""
    cur.execute("SELECT table_name, referenced_table_name FROM information_schema.key_column_usage "
                "WHERE table_schema = DATABASE() AND referenced_table_name IS NOT NULL")
    deps = {t: set() for t in tables}
    for child, parent in cur.fetchall():
        if child in deps and parent in deps and parent != child:
            deps[child].add(parent)
    order, done = [], set()

    def visit(t, path):
        if t in done:
            return
        if t in path:
            sys.exit("bench: floor: foreign keys form a cycle through %s" % t)
        for p in sorted(deps[t]):
            visit(p, path | {t})
        done.add(t)
        order.append(t)

    for t in sorted(tables):
        visit(t, set())
    return order


def with_parents(cur, tables):
    """tables and every table their foreign keys reach, transitively: what
    the scratch database needs for the floor's rows to be checked as B1's
    were (the LMS schema has hundreds of tables; the rest are not copied)."""
    cur.execute("SELECT table_name, referenced_table_name FROM information_schema.key_column_usage "
                "WHERE table_schema = DATABASE() AND referenced_table_name IS NOT NULL")
    parents = {}
    for child, parent in cur.fetchall():
        parents.setdefault(child, set()).add(parent)
    seen, todo = set(), list(tables)
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        todo.extend(parents.get(t, ()))
    return seen


def floor_db_name():
    return env("BULK_DB_NAME") + "_bench_floor"


def floor_scratch(conn, before):
    """Makes the scratch database a floor writes into: the definitions
    (indexes, foreign keys) of every table that grew since `before` and of
    the tables they reference, with the rows that were there before, and
    reads the rows that were added.  Returns [(table, columns, rows)],
    parents before children."""
    fdb = floor_db_name()
    grown_rows = []
    with conn.cursor() as cur:
        after = table_state(cur)
        grown = [t for t in after if after[t][0] != before[t][0]]
        for t in grown:
            n0, top0, col = before[t]
            if n0 > 0 and col is None:
                sys.exit("bench: floor: %s grew but had rows and no auto-increment id" % t)
            if after[t][0] < n0:
                sys.exit("bench: floor: %s lost rows during the run" % t)
        cur.execute("DROP DATABASE IF EXISTS `%s`" % fdb)
        cur.execute("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" % fdb)
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for t in sorted(with_parents(cur, grown)):
            cur.execute("SHOW CREATE TABLE `%s`" % t)
            ddl = cur.fetchone()[1]
            cur.execute("USE `%s`" % fdb)
            cur.execute(ddl)
            cur.execute("USE `%s`" % env("BULK_DB_NAME"))
            n0, top0, col = before[t]
            if t not in grown:
                cur.execute("INSERT INTO `%s`.`%s` SELECT * FROM `%s`" % (fdb, t, t))
            elif n0 > 0:
                cur.execute("INSERT INTO `%s`.`%s` SELECT * FROM `%s` WHERE `%s` <= %d"
                            % (fdb, t, t, col, top0))
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        for t in parents_first(cur, grown):
            n0, top0, col = before[t]
            order = "" if col is None else " ORDER BY `%s`" % col
            where = "" if n0 == 0 else " WHERE `%s` > %d" % (col, top0)
            cur.execute("SELECT * FROM `%s`%s%s" % (t, where, order))
            grown_rows.append((t, [d[0] for d in cur.description], cur.fetchall()))
    return grown_rows


def upsert_head(t, cols):
    return "INSERT INTO `%s` (%s) VALUES\n" % (t, ", ".join("`%s`" % c for c in cols))


def upsert_tail(cols):
    return "\nON DUPLICATE KEY UPDATE `%s` = VALUES(`%s`);\n" % (cols[-1], cols[-1])


def build_floor(conn, before, sql_path):
    """B1's floor: the rows B1 wrote (floor_scratch) as multi-row upserts,
    parents first, in one transaction, written to sql_path.  Returns
    {table: rows}."""
    written = {}
    with open(sql_path, "w", encoding="utf-8") as out:
        out.write("SET time_zone = '+00:00';\nSTART TRANSACTION;\n")
        for t, cols, rows in floor_scratch(conn, before):
            written[t] = len(rows)
            for i in range(0, len(rows), FLOOR_ROWS_PER_STATEMENT):
                part = rows[i:i + FLOOR_ROWS_PER_STATEMENT]
                out.write(upsert_head(t, cols))
                out.write(",\n".join("(" + ", ".join(conn.escape(v) for v in r) + ")"
                                     for r in part))
                out.write(upsert_tail(cols))
        out.write("COMMIT;\n")
    return written


def build_floor_b2(conn, before, requests, work):
    """B2's floor: the rows B2's `requests` requests wrote (floor_scratch),
    dealt into `requests` transactions of the same shape (each table's
    share, one single-row upsert a row, parents first), spread over
    FLOOR_B2_CLIENTS files, one per concurrent `mariadb` client.  Foreign
    key checks are off in the floor's sessions (a transaction's rows need
    not be one request's), which only makes the floor cheaper.  Returns
    ({table: rows}, [paths], transactions)."""
    grown = floor_scratch(conn, before)
    written = {t: len(rows) for t, cols, rows in grown}
    per = {t: len(rows) // requests for t, cols, rows in grown}
    if requests == 0 or any(n == 0 for n in per.values()):
        sys.exit("bench: B2 floor: %d requests wrote %r" % (requests, written))
    paths = [os.path.join(work, "floor-b2-%02d.sql" % c) for c in range(FLOOR_B2_CLIENTS)]
    outs = [open(p, "w", encoding="utf-8") for p in paths]
    try:
        for o in outs:
            o.write("SET time_zone = '+00:00';\nSET foreign_key_checks = 0;\n")
        for j in range(requests):
            o = outs[j % FLOOR_B2_CLIENTS]
            o.write("START TRANSACTION;\n")
            for t, cols, rows in grown:
                for r in rows[j * per[t]:(j + 1) * per[t]]:
                    o.write(upsert_head(t, cols) + "(" + ", ".join(conn.escape(v) for v in r)
                            + ")" + upsert_tail(cols))
            o.write("COMMIT;\n")
    finally:
        for o in outs:
            o.close()
    return written, paths, requests


def run_floor_b2(conn, paths, written, requests):
    """Runs the B2 floor's clients at once; checks the rows arrived; drops
    the scratch database.  Returns transactions per second."""
    fdb = floor_db_name()
    cmd = mariadb_cmd()[:-1] + [fdb]
    files = [open(p, "rb") for p in paths]
    try:
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for f in files]
        errs = [p.communicate(timeout=TIMEOUT_S)[1] for p in procs]
        elapsed = time.perf_counter() - t0
    finally:
        for f in files:
            f.close()
    for p, e in zip(procs, errs):
        if p.returncode != 0:
            sys.exit("bench: B2 floor: mariadb failed: %s" % e.decode(errors="replace")[:500])
    with conn.cursor() as cur:
        for t, n in written.items():
            cur.execute("SELECT COUNT(*) FROM `%s`.`%s`" % (fdb, t))
            have = cur.fetchone()[0]
            cur.execute("SELECT COUNT(*) FROM `%s`" % t)
            # Rows beyond requests x share (a remainder) are not replayed.
            if have > cur.fetchone()[0] or have < n - n % requests:
                sys.exit("bench: B2 floor: %s has %d rows, expected about %d" % (t, have, n))
        cur.execute("DROP DATABASE `%s`" % fdb)
    return requests / elapsed


def run_floor(conn, sql_path, written):
    """Times the `mariadb` client writing sql_path into the scratch
    database; checks every row arrived; drops the scratch database."""
    fdb = floor_db_name()
    cmd = mariadb_cmd()[:-1] + [fdb]
    with open(sql_path, "rb") as f:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdin=f, capture_output=True, timeout=TIMEOUT_S)
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit("bench: floor: mariadb failed: %s" % proc.stderr.decode(errors="replace")[:500])
    with conn.cursor() as cur:
        for t, n in written.items():
            cur.execute("SELECT COUNT(*) FROM `%s`.`%s`" % (fdb, t))
            have = cur.fetchone()[0]
            cur.execute("SELECT COUNT(*) FROM `%s`" % t)
            if have != cur.fetchone()[0]:
                sys.exit("bench: floor: %s did not get its %d rows" % (t, n))
        cur.execute("DROP DATABASE `%s`" % fdb)
    return elapsed


# ---------------------------------------------------------------- B2 (wrk)

WRK_LUA = r"""
-- One-item enrollments, each for a distinct unknown e-mail.
-- wrk ... URL -- PREFIX COURSE TOKEN
local counter = 0
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  prefix, course, auth = args[1], args[2], "JWT " .. args[3]
end
function request()
  counter = counter + 1
  local body = string.format('{"enrollments_info": [{"email": "%s.%d.%d@bench.example", ' ..
    '"course_run_key": "%s", "license_uuid": "5b8e0000-0000-4000-8000-%012d"}], "notify": true}',
    prefix, tid, counter, course, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = auth}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-WRK %d %d %d %d %d %d %d %d %d\n", summary.requests,
    summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(prefix, tok, seconds, lua_path):
    url = env("BULK_URL") + PATH
    proc = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % seconds, "--timeout", "20s",
                           "-s", lua_path, url, "--", prefix, COURSES[0], tok],
                          capture_output=True, text=True, timeout=seconds + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-WRK "):
            v = [int(x) for x in line.split()[1:]]
            return {"requests": v[0], "seconds": v[1] / 1e6, "non2xx": v[2],
                    "socket_errors": sum(v[3:7]), "p50_ms": v[7] / 1e3, "p99_ms": v[8] / 1e3,
                    "rps": v[0] / (v[1] / 1e6)}
    sys.exit("bench: wrk printed no figures (rc %d): %s %s" % (proc.returncode, proc.stdout[-500:],
                                                               proc.stderr[-500:]))


def build_trivial():
    exe = os.path.join(env("BULK_STACK_DIR"), "trivial_responder")
    proc = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                           os.path.join(HERE, "trivial_responder.c"), "-lfcgi"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("bench: cannot build trivial_responder.c:\n%s" % proc.stderr)
    os.chmod(exe, 0o755)
    return exe


def pending_rows_like(conn, prefix):
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM enterprise_pendingenrollment pe "
                    "JOIN enterprise_pendingenterprisecustomeruser pu ON pu.id = pe.user_id "
                    "WHERE pu.user_email LIKE %s", (prefix + ".%",))
        return cur.fetchone()[0]


def run_b2(conn, tok, seconds, lua_path):
    """The service, then the trivial responder on the pool's socket.
    svc["committed"]: the requests whose rows are in the database."""
    probe = Probe()
    svc = wrk("b2svc", tok, seconds, lua_path)
    svc.update(probe.figures(max(1, svc["requests"])))
    rows = pending_rows_like(conn, "b2svc")
    # Requests still in flight when wrk stopped may have committed too.
    if svc["non2xx"] or svc["socket_errors"] or not svc["requests"] <= rows <= svc["requests"] + 16:
        sys.exit("bench: B2: WRONG ANSWER: %d requests, %d non-2xx, %d socket errors, %d rows"
                 % (svc["requests"], svc["non2xx"], svc["socket_errors"], rows))
    svc["committed"] = rows
    exe = build_trivial()
    workers = int(os.environ.get("BULK_WORKERS", "2"))
    stack_sh("pool-stop")
    sock = env("BULK_FCGI_SOCKET")
    if os.path.exists(sock):
        os.unlink(sock)
    trivial = subprocess.Popen(["spawn-fcgi", "-n", "-s", sock, "-M", "0660", "-U", "nobody",
                                "-G", "nogroup", "-u", "nobody", "-g", "nogroup", "--",
                                exe, str(workers)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        triv = wrk("b2triv", tok, seconds, lua_path)
    finally:
        try:
            os.killpg(trivial.pid, signal.SIGTERM)
            trivial.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(trivial.pid, signal.SIGKILL)
            trivial.wait()
        stack_sh("pool-start")
    if triv["non2xx"] or triv["socket_errors"]:
        sys.exit("bench: B2: the trivial responder failed: %r" % triv)
    return svc, triv


# ---------------------------------------------------------------- B4

def run_b4(tok):
    """16 requests of 625 items from 4 clients; returns (wall s, items)."""
    bodies = []
    for k in range(16):
        items = []
        for j in range(k * 25, k * 25 + 25):
            if j % 2 == 0:
                email = "bench.learner%d@bench.example" % (B4_SEED + j // 2)
            else:
                email = "B4.Unknown%d@Bench.Example" % j
            items += [{"email": email, "course_run_key": c, "license_uuid": lic(3 * 10 ** 6 + j)}
                      for c in COURSES]
        want = {"successes": sum(1 for j in range(k * 25, k * 25 + 25) if j % 2 == 0) * 25}
        want.update({"pending": 625 - want["successes"], "created": 625, "failures": 0})
        bodies.append((body_of(items), want))
    answers = [None] * 16

    def client(c):
        for k in range(c, 16, 4):
            status, data, _ = post(bodies[k][0], tok)
            answers[k] = (status, data)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S * 4)
    elapsed = time.perf_counter() - t0
    for k in range(16):
        if answers[k] is None:
            sys.exit("bench: B4: request %d got no answer" % k)
        check("B4 request %d" % k, answers[k][0], answers[k][1], 202, bodies[k][1])
    return elapsed, 16 * 625


# ---------------------------------------------------------------- main

def timed(name, body, want_status, want, tok, repeat=1):
    times = []
    probe = Probe()
    for _ in range(repeat):
        status, data, elapsed = post(body, tok)
        check(name, status, data, want_status, want)
        times.append(elapsed)
    r = {"seconds": statistics.median(times), "runs": repeat}
    r.update(probe.figures(repeat))
    r["busiest"] = probe.busiest()
    return r


def verdict(key, value):
    if key not in TARGETS:
        return "(no target)"
    op, target = TARGETS[key]
    ok = value <= target if op == "<=" else value >= target
    return "%s %s %-6s %s" % (op, target, "" if ok else "MISSED", "")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs of B1 re-sent (1-10)")
    p.add_argument("--wrk-seconds", type=int, default=8, help="B2: seconds of wrk per side (2-60)")
    p.add_argument("--save", default=os.environ.get("BULK_BENCH_SAVE") or None)
    p.add_argument("--baseline", default=os.environ.get("BULK_BENCH_BASELINE") or None)
    p.add_argument("--reset", action="store_true", help="empty the stack's tables first")
    p.add_argument("--only", type=lambda v: set(v.upper().split(",")), default=None,
                   help="comma-separated figures, e.g. B1,B2 (B3 and B4 need B1)")
    args = p.parse_args()
    repeat = max(1, min(args.repeat, 10))
    wrk_s = max(2, min(args.wrk_seconds, 60))
    only = args.only or {"B1", "B2", "B3", "B4"}
    if only & {"B3", "B4"}:
        only.add("B1")
    baseline = {}
    if args.baseline:
        with open(args.baseline, encoding="utf-8") as f:
            baseline = json.load(f).get("figures", {})

    conn = db()
    work = tempfile.mkdtemp(prefix="bench.", dir=env("BULK_STACK_DIR"))
    fig, notes = {}, []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@innodb_flush_log_at_trx_commit")
            flush = int(cur.fetchone()[0])
        if flush != 1:
            notes.append("MariaDB is NOT durable here (innodb_flush_log_at_trx_commit=%d)" % flush)
        if args.reset:
            reset_data()
        t0 = time.perf_counter()
        seed(conn)
        print("bench: seeded %d learners, %d course runs in %.2f s; innodb_flush_log_at_trx_commit=%d; "
              "%s responders" % (SEEDED, len(COURSES), time.perf_counter() - t0, flush,
                                 os.environ.get("BULK_WORKERS", "?")))
        tok = token()

        if "B1" in only:
            items = learner_items("B1", B1_LEARNERS, B1_SEED, COURSES[:10], 0)
            body = body_of(items)
            with conn.cursor() as cur:
                before = table_state(cur)
            b1 = timed("B1", body, 202, want_mix(len(items)), tok)
            sql_path = os.path.join(work, "floor.sql")
            written = build_floor(conn, before, sql_path)
            fp = Probe()
            floor_s = run_floor(conn, sql_path, written)
            fig["floor db cpu s"] = fp.figures(1)["db_cpu_s"]
            resent = timed("B1 re-sent", body, 202, want_mix(len(items), created=False), tok, repeat)
            fig.update({"B1 s": b1["seconds"], "B1 items/s": len(items) / b1["seconds"],
                        "floor s": floor_s, "floor rows": sum(written.values()),
                        "B1 / floor": b1["seconds"] / floor_s,
                        "B1 re-sent s": resent["seconds"],
                        "B1 re-sent / B1": resent["seconds"] / b1["seconds"]})
            fig["B1 profile"] = {k: b1[k] for k in ("app_cpu_s", "db_cpu_s", "prepares", "executes")}
            fig["floor tables"] = written
            print("bench: B1 wrote %d rows: %s" % (sum(written.values()), ", ".join(
                "%s %d" % (t, n) for t, n in sorted(written.items()))))

        if "B2" in only:
            lua_path = os.path.join(work, "b2.lua")
            with open(lua_path, "w", encoding="utf-8") as f:
                f.write(WRK_LUA)
            with conn.cursor() as cur:
                before = table_state(cur)
            svc, triv = run_b2(conn, tok, wrk_s, lua_path)
            written2, paths, ntx = build_floor_b2(conn, before, svc["committed"], work)
            fp = Probe()
            fig["B2 floor tx/s"] = run_floor_b2(conn, paths, written2, ntx)
            fig["B2 floor db cpu s"] = fp.figures(ntx)["db_cpu_s"]
            fig["B2 / floor"] = svc["rps"] / fig["B2 floor tx/s"]
            fig["B2 floor tables"] = {t: n // ntx for t, n in written2.items()}
            fig.update({"B2 req/s": svc["rps"], "B2 p99 ms": svc["p99_ms"],
                        "B2 p50 ms": svc["p50_ms"], "trivial req/s": triv["rps"],
                        "trivial p99 ms": triv["p99_ms"], "B2 / trivial": svc["rps"] / triv["rps"]})
            fig["B2 profile"] = {k: svc[k] for k in ("app_cpu_s", "db_cpu_s", "prepares", "executes")}

        if "B3" in only:
            items = learner_items("B3", B3_LEARNERS, B3_SEED, COURSES[:10], 10 ** 6)
            rss0 = {p: proc_kib(p, "VmRSS") for p in responder_pids()}
            b3 = timed("B3", body_of(items), 202, want_mix(len(items)), tok)
            hwm = proc_kib(b3["busiest"], "VmHWM") if b3["busiest"] else 0
            fig.update({"B3 s": b3["seconds"], "B3 / B1": b3["seconds"] / fig["B1 s"],
                        "B3 peak RSS MiB": hwm / 1024.0,
                        "B3 RSS before MiB": rss0.get(b3["busiest"], 0) / 1024.0})
            fig["B3 profile"] = {k: b3[k] for k in ("app_cpu_s", "db_cpu_s", "prepares", "executes")}

        if "B4" in only:
            if "B3" in only:
                # B3 left 100,000 items' rows, more than the stack's buffer
                # pool holds: B4 would pay for disk reads B1 never met.  It
                # meets the database B1 met instead (emptied, seeded again).
                reset_data()
                seed(conn)
            probe = Probe()
            b4_s, b4_items = run_b4(tok)
            fig["B4 profile"] = probe.figures(16)
            fig.update({"B4 s": b4_s, "B4 items/s": b4_items / b4_s,
                        "B4 / B1 items/s": (b4_items / b4_s) / fig["B1 items/s"]})
    finally:
        conn.close()

    print()
    rows = [
        ("B1 10,000 items", "B1 s", "s", "floor s", "B1 / floor",
         "SQL floor (%s rows via mariadb)" % fig.get("floor rows", "?")),
        ("B1 re-sent (median of %d)" % repeat, "B1 re-sent s", "s", "B1 s", "B1 re-sent / B1", "B1"),
        ("B2 one-item requests", "B2 req/s", "req/s", "trivial req/s", "B2 / trivial",
         "trivial responder"),
        ("B2 against its SQL floor", "B2 req/s", "req/s", "B2 floor tx/s", "B2 / floor",
         "B2's rows, a transaction a request, 16 mariadb clients"),
        ("B3 100,000 items", "B3 s", "s", "B1 s", "B3 / B1", "B1"),
        ("B3 peak RSS of its responder", "B3 peak RSS MiB", "MiB", None, "B3 peak RSS MiB", ""),
        ("B4 16 x 625 items, 4 clients", "B4 items/s", "items/s", "B1 items/s", "B4 / B1 items/s",
         "B1 items/s"),
    ]
    print("%-30s %12s %12s %8s  %-16s %s" % ("figure", "measured", "other side", "ratio",
                                              "target", "other side is"))
    for label, key, unit, other, ratio, what in rows:
        if key not in fig:
            continue
        meas = "%.3f %s" % (fig[key], unit) if unit != "req/s" and unit != "items/s" else \
            "%.0f %s" % (fig[key], unit)
        oth = "" if other is None else ("%.3f" % fig[other] if fig[other] < 100 else "%.0f" % fig[other])
        line = "%-30s %12s %12s %8.2f  %-16s %s" % (label, meas, oth, fig[ratio],
                                                    verdict(ratio, fig[ratio]), what)
        if ratio in baseline:
            line += "  (before: %.2f)" % baseline[ratio]
        print(line)
    if "B2 p99 ms" in fig:
        print("B2 latency: p50 %.1f ms, p99 %.1f ms (trivial responder: p99 %.1f ms)" % (
            fig["B2 p50 ms"], fig["B2 p99 ms"], fig["trivial p99 ms"]))
    for name in ("B1", "B2", "B3", "B4"):
        prof = fig.get(name + " profile")
        if prof:
            print("%s, per request: responders %.4f CPU s, mariadbd %.4f CPU s, "
                  "%.1f prepares / %.1f executes" % (
                      name, prof["app_cpu_s"], prof["db_cpu_s"], prof["prepares"],
                      prof["executes"]))
    if "B3 RSS before MiB" in fig:
        print("B3 responder: VmRSS %.1f MiB before the request, VmHWM %.1f MiB after it" % (
            fig["B3 RSS before MiB"], fig["B3 peak RSS MiB"]))
    if "B2 floor tx/s" in fig:
        print("B2 SQL floor: %.0f transactions/s of %s; mariadbd %.4f CPU s a transaction; "
              "as a share of the trivial responder: %.2f" % (
                  fig["B2 floor tx/s"], ", ".join("%d %s" % (n, t) for t, n in
                                                  sorted(fig["B2 floor tables"].items())),
                  fig["B2 floor db cpu s"], fig["B2 floor tx/s"] / fig["trivial req/s"]))
    if "floor s" in fig:
        print("SQL floor: %.3f s, mariadbd %.2f CPU s" % (fig["floor s"], fig["floor db cpu s"]))
    for n in notes:
        print("bench: warning: " + n)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump({"figures": fig}, f, indent=1, sort_keys=True)
        print("bench: figures saved to %s" % args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
