"""The running bulk-enroll stack, as integration tests see it.

tests/stack.sh starts the real thing (nginx -> spawn-fcgi'd bulk-enrolld pool
-> a throwaway MariaDB) and exports its coordinates as BULK_* environment
variables; every integration test talks to it only through this module.

Without those variables (a person running one test by hand against
`tests/stack.sh run`), the stack description is read from
$BULK_STACK_DIR/stack.env, or from the repository's .stack/stack.env:

    tests/stack.sh run            # terminal 1
    /usr/bin/python3 -m unittest tests/integration/test_foundation.py   # 2

Public API (other engineers' tests rely on exactly this):

    request(method, path, body=None, headers=None, token=None, timeout=30, source_ip=None)
        -> (status, headers (lower-case keys), body bytes)
    token(**claims) -> str              HS256 JWT the stack trusts
    db(dict_cursor=False)               pymysql connection, autocommit (the
                                        tests' own account: all privileges
                                        on the LMS database, none global)
    db_service(dict_cursor=False)       the same as the daemon's account
                                        (SELECT, INSERT, UPDATE, DELETE only)
    db_admin(dict_cursor=False)         the same as root over the socket
                                        (SET GLOBAL read_only, KILL, ...)
    ENTERPRISE_UUID, INACTIVE_ENTERPRISE_UUID, ENROLL_PATH(uuid)
    reset_data(demo=True)               empty the written tables, demo data again
    stop_db(), start_db()               stop/start MariaDB (start waits)
    master_pid(), responder_pids()      the pool's processes
    wait_master_exit(timeout) -> int    exit status of a stopped master
    restart_pool(**config_overrides)    (re)start the pool; waits for /healthz
    logs() -> str                       the daemon's stderr so far
    wait_until(predicate, timeout, what)
    ORDER_PORT, SMTP_PORT               where the daemon sends orders / mail
    MAX_BODY_BYTES, WORKERS             the stack's configured limits
"""

import http.client
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.parse

import jwt
import pymysql

__all__ = [
    "request", "token", "db", "ENTERPRISE_UUID", "INACTIVE_ENTERPRISE_UUID",
    "ENROLL_PATH", "reset_data", "db_service", "db_admin", "stop_db", "start_db", "master_pid",
    "responder_pids", "wait_master_exit", "restart_pool", "logs", "wait_until",
    "URL", "OTHER_CLIENT_IP", "ORDER_PORT", "SMTP_PORT", "MAX_BODY_BYTES", "WORKERS", "ENV",
]

_SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_STACK_SH = os.path.join(_SRC_DIR, "tests", "stack.sh")


def _load_env():
    """The stack's BULK_* settings: the environment, else stack.env."""
    if "BULK_URL" in os.environ and "BULK_STACK_DIR" in os.environ:
        return {k: v for k, v in os.environ.items() if k.startswith("BULK_")}
    stack_dir = os.environ.get("BULK_STACK_DIR", os.path.join(_SRC_DIR, ".stack"))
    path = os.path.join(stack_dir, "stack.env")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise RuntimeError(
            "no running stack: start one with `tests/stack.sh run` or run the "
            "tests through `tests/stack.sh test` (%s)" % e) from None
    env = {}
    for line in lines:
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            # values are shell words: plain, or single-quoted (paths)
            words = shlex.split(value)
            env[key.strip()] = words[0] if words else ""
    return env


ENV = _load_env()
URL = ENV["BULK_URL"]
# Another loopback address, which nginx does not treat as the local host.
OTHER_CLIENT_IP = "127.0.0.2"
STACK_DIR = ENV["BULK_STACK_DIR"]
MAX_BODY_BYTES = int(ENV["BULK_MAX_BODY_BYTES"])
WORKERS = int(ENV["BULK_WORKERS"])
ORDER_PORT = int(ENV["BULK_ORDER_PORT"])
SMTP_PORT = int(ENV["BULK_SMTP_PORT"])

# tests/fixtures/demo.sql
ENTERPRISE_UUID = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b"
INACTIVE_ENTERPRISE_UUID = "badc0ffee0dd4f00ba5eba11deadbeef"


def ENROLL_PATH(uuid):  # noqa: N802 (a constant-like path builder)
    """The endpoint's path for an enterprise UUID (given form kept as is)."""
    return "/enterprise/api/v1/enterprise-customer/%s/enroll_learners_in_courses/" % uuid


# ------------------------------------------------------------------ HTTP

def request(method, path, body=None, headers=None, token=None, timeout=30, source_ip=None):
    """One HTTP request through nginx.

    body: bytes or str are sent as they are; a dict or list is JSON-encoded
    and Content-Type defaults to application/json.  token: sent as
    `Authorization: JWT <token>`.  source_ip: the client address to connect
    from (OTHER_CLIENT_IP: a client that is not 127.0.0.1).  Returns (status, headers,
    body bytes); header names are lower-case, repeated headers joined with
    ", ".  A body given as an iterable of bytes is sent chunked.
    """
    hdrs = {}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
        hdrs["Content-Type"] = "application/json"
    elif isinstance(body, str):
        body = body.encode("utf-8")
    if token is not None:
        hdrs["Authorization"] = "JWT " + token
    for k, v in (headers or {}).items():
        # caller's headers win, case-insensitively
        for existing in [h for h in hdrs if h.lower() == k.lower()]:
            del hdrs[existing]
        hdrs[k] = v
    u = urllib.parse.urlsplit(URL)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout,
                                      source_address=(source_ip, 0) if source_ip else None)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
        resp = conn.getresponse()
        data = resp.read()
        out = {}
        for k, v in resp.getheaders():
            k = k.lower()
            out[k] = out[k] + ", " + v if k in out else v
        return resp.status, out, data
    finally:
        conn.close()


def token(**claims):
    """An HS256 JWT signed with the stack's issuer, audience and secret.

    Defaults: iat now, exp now + 300, preferred_username "ops",
    administrator True, roles ["enterprise_openedx_operator:*"].  Keyword
    arguments override them; a claim given as None is left out.
    """
    now = int(time.time())
    payload = {
        "iss": ENV["BULK_JWT_ISSUER"],
        "aud": ENV["BULK_JWT_AUDIENCE"],
        "iat": now,
        "exp": now + 300,
        "preferred_username": "ops",
        "administrator": True,
        "roles": ["enterprise_openedx_operator:*"],
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, ENV["BULK_JWT_SECRET"], algorithm="HS256")


# ------------------------------------------------------------------ database

def _connect(user, password, dict_cursor):
    return pymysql.connect(
        unix_socket=ENV["BULK_DB_SOCKET"], user=user, password=password,
        database=ENV["BULK_DB_NAME"], charset="utf8mb4", autocommit=True,
        connect_timeout=10,
        cursorclass=pymysql.cursors.DictCursor if dict_cursor else pymysql.cursors.Cursor)


def db(dict_cursor=False):
    """A new pymysql connection to the stack's database (autocommit, utf8mb4),
    as the tests' own account: all privileges on that database (fixtures,
    TRUNCATE, LOCK TABLES), no global one, so `SET GLOBAL read_only = 1`
    binds it too.  The caller closes it.  dict_cursor=True makes rows dicts.
    """
    if "BULK_DB_HARNESS_USER" not in ENV:  # a stack.env from before the split
        return _connect(ENV["BULK_DB_USER"], ENV["BULK_DB_PASSWORD"], dict_cursor)
    return _connect(ENV["BULK_DB_HARNESS_USER"], ENV["BULK_DB_HARNESS_PASSWORD"], dict_cursor)


def db_service(dict_cursor=False):
    """Like db(), as the daemon's own account (BULK_DB_USER): SELECT, INSERT,
    UPDATE and DELETE on the LMS database and nothing else, as in
    production.  For tests of what the service can and cannot do."""
    return _connect(ENV["BULK_DB_USER"], ENV["BULK_DB_PASSWORD"], dict_cursor)


def db_admin(dict_cursor=False):
    """Like db(), as root over the socket: for fault tests that change the
    server itself (SET GLOBAL read_only = 1, KILL).  Such a test restores
    what it changed, also when it fails (try/finally or addCleanup)."""
    return _connect("root", "", dict_cursor)


def _mariadb(sql_file):
    with open(sql_file, "rb") as f:
        subprocess.run(
            ["mariadb", "--no-defaults", "--socket=" + ENV["BULK_DB_SOCKET"], "-uroot",
             ENV["BULK_DB_NAME"]], stdin=f, check=True, capture_output=True)


def reset_data(demo=True):
    """Back to the state right after set-up: the tables the service and the
    tests write emptied (tests/fixtures/empty.sql; the LMS's seed rows
    stay), our migrations in sql/ re-applied (each is safe to apply again)
    and, unless demo=False (the benchmark brings its own data),
    tests/fixtures/demo.sql loaded again.  The same shape on the LMS
    stand-in and on the full LMS dump.  Takes well under a second."""
    sql_dir = os.path.join(_SRC_DIR, "sql")
    for name in sorted(os.listdir(sql_dir)):
        if name.endswith(".sql"):
            _mariadb(os.path.join(sql_dir, name))
    fixtures = os.path.join(_SRC_DIR, "tests", "fixtures")
    _mariadb(os.path.join(fixtures, "empty.sql"))
    if demo:
        _mariadb(os.path.join(fixtures, "demo.sql"))


def _stack_sh(command, extra_env=None):
    env = dict(os.environ)
    env["BULK_STACK_DIR"] = STACK_DIR
    env.update(extra_env or {})
    proc = subprocess.run(["bash", _STACK_SH, command], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("tests/stack.sh %s failed:\n%s" % (command, proc.stderr))


def stop_db():
    """Stops MariaDB (SIGTERM; waits until it has exited)."""
    _stack_sh("db-stop")


def start_db():
    """Starts MariaDB again on the same socket and port; returns when it
    answers a ping."""
    _stack_sh("db-start")


# ------------------------------------------------------------------ the pool

def master_pid():
    """The pool master's pid, or None when it is not running."""
    try:
        with open(os.path.join(STACK_DIR, "pool", "master.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid if not _is_zombie(pid) else None


def _proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # comm may contain spaces and parentheses: split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])  # state, ppid


def _is_zombie(pid):
    try:
        return _proc_stat(pid)[0] == "Z"
    except (OSError, ValueError):
        return True


def responder_pids(parent=None):
    """Pids of the live children of the master (responders and, when the
    pool has one, the dispatcher), sorted."""
    parent = parent or master_pid()
    if parent is None:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            state, ppid = _proc_stat(int(entry))
        except (OSError, ValueError):
            continue
        if ppid == parent and state != "Z":
            pids.append(int(entry))
    return sorted(pids)


def wait_master_exit(timeout=30):
    """Waits for a stopping master to exit; returns its exit status (as the
    shell reports it: 128 + N for a signal N)."""
    path = os.path.join(STACK_DIR, "pool", "exit-status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the pool master did not exit within %s s" % timeout)


def restart_pool(**config_overrides):
    """Stops the pool if it runs (SIGTERM, then SIGKILL after 20 s) and starts
    it again; returns once /healthz answers 200.  Keyword arguments override
    configuration keys for this run only, as BULK_ENROLL_* variables:
    restart_pool(limits_max_items=10) sets limits.max_items = 10."""
    extra = {"BULK_ENROLL_" + k.upper().replace(".", "_"): str(v)
             for k, v in config_overrides.items()}
    _stack_sh("pool-stop")
    _stack_sh("pool-start", extra)


def logs():
    """Everything the daemon has written to stderr since the stack started."""
    with open(ENV["BULK_DAEMON_LOG"], encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_until(predicate, timeout=10, what="condition", interval=0.05):
    """Polls predicate() until it returns a true value (returned) or the
    timeout passes (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
        time.sleep(interval)


def kill(pid, sig=signal.SIGTERM):
    """Sends a signal to one process of the stack."""
    os.kill(pid, sig)


def copy_course(source, new_id, **columns):
    """Inserts the course run `new_id` as a copy of `source` (every column,
    so the real schema's NOT NULL columns are filled as the LMS fills
    them), with `columns` changed, e.g. copy_course(DEMOX, KEY,
    display_name="X", invitation_only=0)."""
    conn = db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM course_overviews_courseoverview WHERE id = %s", (source,))
            row = cur.fetchone()
            if row is None:
                raise LookupError("no course run %r to copy" % (source,))
            values = dict(zip([d[0] for d in cur.description], row))
            values.update(columns)
            values["id"] = new_id
            cur.execute("INSERT INTO course_overviews_courseoverview (%s) VALUES (%s)" % (
                ", ".join("`%s`" % name for name in values), ", ".join(["%s"] * len(values))),
                list(values.values()))
    finally:
        conn.close()


def kill_db():
    """SIGKILLs MariaDB (a crash: no shutdown); returns once it is gone.
    start_db() brings it back through crash recovery."""
    _stack_sh("db-kill")
