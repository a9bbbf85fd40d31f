#!/usr/bin/python3
"""Times the enrollment endpoint through nginx on a running stack.

    /usr/bin/python3 tests/bench/bench.py [--users N] [--repeat R]
        [--save FILE] [--baseline FILE] [--reset] [--only SCENARIO,...]

Normally run by tests/bench/bench.sh, which starts a throwaway stack and
sets the BULK_* variables read here (BULK_URL, BULK_DB_SOCKET, BULK_DB_NAME,
BULK_JWT_ISSUER, BULK_JWT_AUDIENCE, BULK_JWT_SECRET, BULK_STACK_DIR).  The
database is written as root over the unix socket (the stacks use socket
authentication for root).

Scenarios, in this order (each one's expected status and counts are checked,
so a fast wrong answer does not pass for a result):
  existing-10k / -50k      items of existing learners, every pair new
  existing-*-resent        the same bodies again: created false everywhere
  pending-10k / -50k       unknown e-mails (pending enrollments)
  pending-*-resent         the same again
  mixed-10k                new, already enrolled, pending, invalid e-mails,
                           unknown user ids and course runs (409)
Re-sent scenarios change nothing, so they are repeated (--repeat, default
3) and the median is reported.

Figures: wall time of the HTTP request (the body is encoded beforehand),
items per second, and the ratio to the database floor: the time MariaDB
takes for the same number of rows as multi-row upserts in one transaction,
measured here on a scratch table (10,000 rows), and the nominal 0.1 s per
10,000 rows.  There is no third-party baseline: --baseline compares with
figures this script saved earlier (--save), e.g. before a change.
Peak RSS: VmHWM of the responder that served the biggest request (read
from /proc after it), and VmRSS sampled every 5 ms during it.
For profiling: CPU seconds of the responders and of mariadbd (/proc), and
the statements the server prepared and executed (Com_stmt_*), per request.

Bounded: a fixed list of requests, each with a 120 s timeout; loopback only.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
import uuid

import jwt
import pymysql

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.dirname(os.path.dirname(HERE))

ENTERPRISE = "bec0bec0bec04bec8bec0bec0bec0001"
USER_ID_BASE = 1000000
COURSES = ["course-v1:Bench+C%d+2026" % i for i in range(6)]
FLOOR_ROWS = 10000
NOMINAL_FLOOR_S = 0.1   # per 10,000 rows: multi-row upserts, one transaction
TIMEOUT_S = 120


def env(name):
    try:
        return os.environ[name]
    except KeyError:
        sys.exit("bench: %s is not set (run tests/bench/bench.sh)" % name)


def db():
    return pymysql.connect(unix_socket=env("BULK_DB_SOCKET"), user="root",
                           database=env("BULK_DB_NAME"), charset="utf8mb4",
                           autocommit=True, connect_timeout=10)


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


def seed(conn, nusers):
    """The bench enterprise, nusers learners (ids from USER_ID_BASE, mixed-
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
                     for i in range(nusers)])


def measure_floor(conn):
    """Seconds for FLOOR_ROWS multi-row upserts (1,000 rows a statement, one
    transaction) into a scratch copy of student_courseenrollment: what the
    database alone needs to write that many rows on this machine."""
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_floor")
        cur.execute("CREATE TABLE bench_floor LIKE student_courseenrollment")
        cur.execute("ALTER TABLE bench_floor DROP FOREIGN KEY IF EXISTS "
                    "student_courseenrollment_user_id_fk_auth_user_id")
        rows = [(USER_ID_BASE + i, COURSES[0]) for i in range(FLOOR_ROWS)]
        head = ("INSERT INTO bench_floor (user_id, course_id, created, is_active, mode) VALUES ")
        t0 = time.perf_counter()
        cur.execute("START TRANSACTION")
        for i in range(0, len(rows), 1000):
            part = rows[i:i + 1000]
            cur.execute(head + ", ".join(["(%s, %s, UTC_TIMESTAMP(6), 1, 'verified')"] * len(part)) +
                        " ON DUPLICATE KEY UPDATE is_active = 1, mode = VALUES(mode)",
                        [v for r in part for v in r])
        cur.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_floor")
    return elapsed


def token():
    now = int(time.time())
    return jwt.encode({"iss": env("BULK_JWT_ISSUER"), "aud": env("BULK_JWT_AUDIENCE"),
                       "iat": now, "exp": now + 3600, "preferred_username": "bench",
                       "administrator": True, "roles": ["enterprise_openedx_operator:*"]},
                      env("BULK_JWT_SECRET"), algorithm="HS256")


def lic(i):
    return str(uuid.UUID(int=(0x5b8e << 112) | i))


def mariadbd_pid():
    """The stack's MariaDB server (db/mariadbd.ours.pid), or None."""
    try:
        with open(os.path.join(env("BULK_STACK_DIR"), "db", "mariadbd.ours.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def responder_pids():
    """The pool's responders: children of the master (pool/master.pid)."""
    try:
        with open(os.path.join(env("BULK_STACK_DIR"), "pool", "master.pid")) as f:
            master = int(f.read().strip())
    except (OSError, ValueError):
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


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


class RssSampler(threading.Thread):
    """Samples VmRSS of the responders every 5 ms until stopped (bounded by
    the request's timeout)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {p: 0 for p in pids}
        self.stop = threading.Event()

    def run(self):
        deadline = time.monotonic() + TIMEOUT_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            for p in self.pids:
                self.peak[p] = max(self.peak[p], proc_kib(p, "VmRSS"))
            self.stop.wait(0.005)


def post(body_bytes, tok):
    u = urllib.parse.urlsplit(env("BULK_URL"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT_S)
    path = "/enterprise/api/v1/enterprise-customer/%s/enroll_learners_in_courses/" % ENTERPRISE
    try:
        t0 = time.perf_counter()
        conn.request("POST", path, body=body_bytes,
                     headers={"Content-Type": "application/json", "Authorization": "JWT " + tok})
        resp = conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
        return resp.status, data, elapsed
    finally:
        conn.close()


# ---------------------------------------------------------------- bodies

def existing_items(n, course_offset):
    """n items of existing learners: user-major over COURSES[course_offset:],
    by e-mail (as license-manager sends them), in a different case."""
    items = []
    nusers = ARGS.users
    k = 0
    while len(items) < n:
        c = COURSES[course_offset + k // nusers]
        i = k % nusers
        items.append({"email": "bench.learner%d@bench.example" % i, "course_run_key": c,
                      "license_uuid": lic(i)})
        k += 1
    return items


def pending_items(n, tag):
    return [{"email": "Pending.%s.%d@Bench.Example" % (tag, i), "course_run_key": COURSES[i % 2],
             "license_uuid": lic(10 ** 6 + i)} for i in range(n)]


def mixed_items():
    """10k items: 4,000 new pairs (half by user_id), 2,000 already enrolled
    (from existing-10k), 3,000 pending, 500 invalid e-mails, 250 unknown
    user ids, 250 unknown course runs."""
    items = []
    for i in range(4000):
        it = {"course_run_key": COURSES[5], "license_uuid": lic(i)}
        if i % 2:
            it["user_id"] = USER_ID_BASE + i
        else:
            it["email"] = "bench.learner%d@bench.example" % i
        items.append(it)
    items += existing_items(2000, 0)
    items += [{"email": "mixed.%d@bench.example" % i, "course_run_key": COURSES[5],
               "license_uuid": lic(2 * 10 ** 6 + i)} for i in range(3000)]
    items += [{"email": "not an e-mail %d" % i, "course_run_key": COURSES[5],
               "license_uuid": lic(3 * 10 ** 6 + i)} for i in range(500)]
    items += [{"user_id": 9 * 10 ** 8 + i, "course_run_key": COURSES[5],
               "license_uuid": lic(4 * 10 ** 6 + i)} for i in range(250)]
    items += [{"email": "bench.learner%d@bench.example" % (5000 + i),
               "course_run_key": "course-v1:Bench+Missing+2026",
               "license_uuid": lic(5000 + i)} for i in range(250)]
    return items


# ---------------------------------------------------------------- checks

def check(name, status, data, want_status, want):
    """want: {"successes": n, "pending": n, "failures": n, "created": n,
    "invalid_email_addresses": n, "invalid_user_ids": n}; returns a list of
    problems (empty when the answer is right)."""
    problems = []
    if status != want_status:
        problems.append("status %d, expected %d: %s" % (status, want_status, data[:300]))
        return problems
    try:
        body = json.loads(data)
    except ValueError:
        return ["body is not JSON: %r" % data[:200]]
    created = sum(1 for k in ("successes", "pending") for r in body.get(k, []) if r.get("created"))
    got = {k: len(body.get(k, [])) for k in ("successes", "pending", "failures",
                                             "invalid_email_addresses", "invalid_user_ids")}
    got["created"] = created
    for k, v in want.items():
        if got.get(k) != v:
            problems.append("%s: %s, expected %s" % (k, got.get(k), v))
    return problems


# ---------------------------------------------------------------- main

def run_scenario(name, items, want_status, want, repeat, tok, sample=False):
    if ARGS.only and name not in ARGS.only:
        return None
    body = json.dumps({"enrollments_info": items, "notify": True}).encode("utf-8")
    times = []
    rss = None
    pids = responder_pids()
    dbpid = mariadbd_pid()
    cpu0 = {p: cpu_ticks(p) for p in pids}
    db0 = cpu_ticks(dbpid) if dbpid else 0
    st0 = stmt_counts()
    for _ in range(repeat):
        sampler = RssSampler(pids) if sample else None
        if sampler:
            sampler.start()
        status, data, elapsed = post(body, tok)
        if sampler:
            sampler.stop.set()
            sampler.join()
            # The responder that worked is the one whose CPU time moved.
            busy = max(pids, key=lambda p: cpu_ticks(p) - cpu0[p]) if pids else None
            if busy is not None:
                rss = {"pid": busy, "vmhwm_kib": proc_kib(busy, "VmHWM"),
                       "sampled_peak_kib": sampler.peak[busy]}
        problems = check(name, status, data, want_status, want)
        if problems:
            print("bench: %s: WRONG ANSWER: %s" % (name, "; ".join(problems)), file=sys.stderr)
            sys.exit(1)
        times.append(elapsed)
    # CPU seconds per run (clock ticks, USER_HZ 100): where the time goes.
    hz = os.sysconf("SC_CLK_TCK")
    app_cpu = sum(cpu_ticks(p) - cpu0[p] for p in pids) / hz / len(times)
    db_cpu = ((cpu_ticks(dbpid) - db0) / hz / len(times)) if dbpid else 0.0
    st1 = stmt_counts()
    prepares = (st1.get("Com_stmt_prepare", 0) - st0.get("Com_stmt_prepare", 0)) / len(times)
    executes = (st1.get("Com_stmt_execute", 0) - st0.get("Com_stmt_execute", 0)) / len(times)
    return {"name": name, "items": len(items), "body_bytes": len(body),
            "seconds": statistics.median(times), "runs": len(times), "status": want_status,
            "rss": rss, "app_cpu_s": app_cpu, "db_cpu_s": db_cpu,
            "prepares": prepares, "executes": executes}


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=int(os.environ.get("BULK_BENCH_USERS", "20000")))
    p.add_argument("--repeat", type=int, default=3, help="runs of each re-sent scenario (1-10)")
    p.add_argument("--save", default=os.environ.get("BULK_BENCH_SAVE") or None)
    p.add_argument("--baseline", default=os.environ.get("BULK_BENCH_BASELINE") or None)
    p.add_argument("--reset", action="store_true", help="empty the stack's tables first")
    p.add_argument("--only", type=lambda v: set(v.split(",")), default=None,
                   help="comma-separated scenarios to run, e.g. existing-10k (for profiling; "
                   "a re-sent scenario needs its first run too)")
    ARGS = p.parse_args()
    if ARGS.users < 20000:
        sys.exit("bench: --users must be at least 20000 (50k distinct pairs over the courses)")
    repeat = max(1, min(ARGS.repeat, 10))
    baseline = {}
    if ARGS.baseline:
        with open(ARGS.baseline, encoding="utf-8") as f:
            baseline = {r["name"]: r for r in json.load(f)["results"]}

    conn = db()
    try:
        if ARGS.reset:
            reset_data()
        t0 = time.perf_counter()
        seed(conn, ARGS.users)
        print("bench: seeded %d learners, %d course runs in %.2f s" %
              (ARGS.users, len(COURSES), time.perf_counter() - t0))
        floor = measure_floor(conn)
    finally:
        conn.close()
    print("bench: database floor: %d rows upserted in %.3f s here (nominal %.3f s)" %
          (FLOOR_ROWS, floor, NOMINAL_FLOOR_S))

    tok = token()
    n10, n50 = 10000, 50000
    results = []
    # (a) then (b): 50k uses courses 1.. so that it does not meet 10k's pairs.
    results.append(run_scenario("existing-10k", existing_items(n10, 0), 201,
                                {"successes": n10, "created": n10, "failures": 0}, 1, tok))
    results.append(run_scenario("existing-10k-resent", existing_items(n10, 0), 201,
                                {"successes": n10, "created": 0}, repeat, tok))
    results.append(run_scenario("existing-50k", existing_items(n50, 1), 201,
                                {"successes": n50, "created": n50, "failures": 0}, 1, tok,
                                sample=True))
    results.append(run_scenario("existing-50k-resent", existing_items(n50, 1), 201,
                                {"successes": n50, "created": 0}, repeat, tok))
    # (c)
    results.append(run_scenario("pending-10k", pending_items(n10, "a"), 202,
                                {"pending": n10, "created": n10, "failures": 0}, 1, tok))
    results.append(run_scenario("pending-10k-resent", pending_items(n10, "a"), 202,
                                {"pending": n10, "created": 0}, repeat, tok))
    results.append(run_scenario("pending-50k", pending_items(n50, "b"), 202,
                                {"pending": n50, "created": n50, "failures": 0}, 1, tok,
                                sample=True))
    results.append(run_scenario("pending-50k-resent", pending_items(n50, "b"), 202,
                                {"pending": n50, "created": 0}, repeat, tok))
    # (d)
    results.append(run_scenario("mixed-10k", mixed_items(), 409,
                                {"successes": 6000, "created": 4000 + 3000, "pending": 3000,
                                 "failures": 250, "invalid_email_addresses": 500,
                                 "invalid_user_ids": 250}, 1, tok))

    results = [r for r in results if r is not None]
    print()
    hdr = "%-34s %6s %8s %8s %8s %9s %7s %7s %9s" % (
        "scenario", "items", "wall s", "items/s", "x floor", "x nominal", "app cpu", "db cpu",
        "prep/exec")
    if baseline:
        hdr += " %9s %8s" % ("before s", "speed-up")
    print(hdr)
    for r in results:
        rows_floor = floor * r["items"] / FLOOR_ROWS
        rows_nominal = NOMINAL_FLOOR_S * r["items"] / FLOOR_ROWS
        line = "%-34s %6d %8.3f %8.0f %8.2f %9.2f %7.2f %7.2f %4d/%-4d" % (
            r["name"] + ("" if r["runs"] == 1 else " (median of %d)" % r["runs"]), r["items"],
            r["seconds"], r["items"] / r["seconds"], r["seconds"] / rows_floor,
            r["seconds"] / rows_nominal, r["app_cpu_s"], r["db_cpu_s"],
            round(r.get("prepares", 0)), round(r.get("executes", 0)))
        b = baseline.get(r["name"])
        if b:
            line += " %9.3f %7.2fx" % (b["seconds"], b["seconds"] / r["seconds"])
        print(line)
    print()
    print("x floor: wall time / the time this machine's MariaDB needs to upsert as many rows")
    print("(one table, multi-row statements, one transaction); x nominal: the same against")
    print("0.1 s per 10,000 rows.  A request writes 3-5 tables per item, so 3-5x is the floor")
    print("for created items; re-sent items write nothing.  app cpu / db cpu: CPU seconds of")
    print("the responders / of mariadbd per request (a 2-core machine: they overlap little).")
    print("prep/exec: statements prepared / executed by the server per request.")
    for r in results:
        if r["rss"]:
            b = baseline.get(r["name"], {}).get("rss")
            print("peak RSS of responder %d during %s: VmHWM %.1f MiB, sampled VmRSS %.1f MiB%s" % (
                r["rss"]["pid"], r["name"], r["rss"]["vmhwm_kib"] / 1024.0,
                r["rss"]["sampled_peak_kib"] / 1024.0,
                " (before: VmHWM %.1f MiB)" % (b["vmhwm_kib"] / 1024.0) if b else ""))
    if ARGS.save:
        with open(ARGS.save, "w", encoding="utf-8") as f:
            json.dump({"floor_s": floor, "results": results}, f, indent=1)
        print("bench: figures saved to %s" % ARGS.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
