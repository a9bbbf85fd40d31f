"""The database accounts of the stack (tests/stack.sh db_accounts).

The daemon connects as an ordinary account, as in production: SELECT,
INSERT, UPDATE and DELETE on the LMS database and nothing else, so that a
read-only server (`SET GLOBAL read_only = 1`) binds it; never as root.  The
tests' own connections (stack.db()) have no global privilege either.
"""

import re
import unittest

import pymysql

import stack

# MariaDB's ER_OPTION_PREVENTS_STATEMENT: "... is running with the
# --read-only option so it cannot execute this statement"
ER_OPTION_PREVENTS_STATEMENT = 1290
ER_TABLEACCESS_DENIED_ERROR = 1142


def _grants(conn):
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        return [r[0] for r in cur.fetchall()]


def _config_value(key):
    """A key of the daemon's generated configuration file."""
    with open(stack.ENV["BULK_CONFIG"], encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.partition("=")
            if sep and k.strip() == key:
                return v.strip()
    return None


class ServiceAccountTest(unittest.TestCase):

    def test_daemon_is_configured_with_the_service_account(self):
        user = _config_value("db.user")
        self.assertEqual(user, stack.ENV["BULK_DB_USER"])
        self.assertNotEqual(user, "root")

    def test_daemon_sessions_use_the_service_account(self):
        # /healthz makes the responder that answers it talk to MariaDB
        code, _, _ = stack.request("GET", "/healthz")
        self.assertEqual(code, 200)
        admin = stack.db_admin()
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT DISTINCT user FROM information_schema.processlist "
                            "WHERE db = %s AND id <> CONNECTION_ID()",
                            (stack.ENV["BULK_DB_NAME"],))
                users = {r[0] for r in cur.fetchall()}
        finally:
            admin.close()
        self.assertIn(stack.ENV["BULK_DB_USER"], users)

    def test_service_account_has_exactly_dml_on_the_lms_database(self):
        conn = stack.db_service()
        try:
            grants = _grants(conn)
        finally:
            conn.close()
        db = stack.ENV["BULK_DB_NAME"]
        on_db = [g for g in grants if re.search(r" ON `%s`\.\* TO " % re.escape(db), g)]
        global_ = [g for g in grants if " ON *.* TO " in g]
        self.assertEqual(len(on_db), 1, grants)
        privs = re.match(r"GRANT (.*) ON ", on_db[0]).group(1)
        self.assertEqual(sorted(p.strip() for p in privs.split(",")),
                         ["DELETE", "INSERT", "SELECT", "UPDATE"], grants)
        # the login itself, nothing else server-wide; no other database
        self.assertEqual(len(global_), 1, grants)
        self.assertTrue(global_[0].startswith("GRANT USAGE ON *.* TO "), grants)
        self.assertEqual(len(grants), 2, grants)

    def test_service_account_cannot_change_the_schema(self):
        conn = stack.db_service()
        try:
            with conn.cursor() as cur:
                with self.assertRaises(pymysql.err.OperationalError) as ctx:
                    cur.execute("CREATE TABLE bulk_accounts_probe (id INT)")
                self.assertEqual(ctx.exception.args[0], ER_TABLEACCESS_DENIED_ERROR)
        finally:
            conn.close()

    def test_read_only_server_binds_the_service_and_test_accounts(self):
        admin = stack.db_admin()
        try:
            with admin.cursor() as cur:
                cur.execute("SET GLOBAL read_only = 1")
            try:
                for name, connect in (("service", stack.db_service), ("harness", stack.db)):
                    conn = connect()
                    try:
                        with conn.cursor() as cur:
                            # touches no row, yet is refused: the server
                            # refuses every write statement of the account
                            with self.assertRaises(pymysql.err.MySQLError, msg=name) as ctx:
                                cur.execute("DELETE FROM auth_user WHERE id < 0")
                            self.assertEqual(ctx.exception.args[0], ER_OPTION_PREVENTS_STATEMENT,
                                             "%s: %s" % (name, ctx.exception))
                    finally:
                        conn.close()
            finally:
                with admin.cursor() as cur:
                    cur.execute("SET GLOBAL read_only = 0")
        finally:
            admin.close()


if __name__ == "__main__":
    unittest.main()
