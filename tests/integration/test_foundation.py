"""Foundation behaviour through the real stack: HTTP -> nginx -> FastCGI ->
bulk-enrolld -> MariaDB.

The HTTP edges of SPEC §2 / §2.1 (404, 405 + Allow, 415, 413 before reading
the body, all JSON with exact bodies, authentication first), X-Request-ID,
/healthz with and without the database, and the pool's promises: a killed
responder is replaced, SIGTERM lets an in-flight request finish.
"""

import json
import os
import signal
import threading
import time
import unittest

import stack

NOT_FOUND = b'{"detail": "Not found."}'
NO_CREDENTIALS = b'{"detail": "Authentication credentials were not provided."}'


def media_type(headers):
    return headers.get("content-type", "").split(";")[0].strip().lower()


def valid_body():
    """A syntactically valid request; its outcome does not matter here."""
    return {"enrollments_info": [{"email": "edge.test@example.com",
                                  "course_run_key": "course-v1:edX+Edge+2026",
                                  "license_uuid": "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"}]}


class EdgeCase(unittest.TestCase):
    def assertJson(self, resp, status, body):
        code, headers, data = resp
        self.assertEqual((code, data), (status, body), "headers: %r" % (headers,))
        self.assertEqual(media_type(headers), "application/json")
        self.assertTrue(headers.get("x-request-id"), "every response carries X-Request-ID")


class RoutingTest(EdgeCase):
    """Routing comes first: a path that is not the service's is 404 even
    without credentials."""

    def test_unknown_path_under_prefix_is_404(self):
        path = "/enterprise/api/v1/enterprise-customer/%s/something_else/" % stack.ENTERPRISE_UUID
        self.assertJson(stack.request("POST", path), 404, NOT_FOUND)

    def test_bad_uuid_is_404(self):
        for uuid in ("not-a-uuid", stack.ENTERPRISE_UUID[:-1], stack.ENTERPRISE_UUID + "0",
                     stack.ENTERPRISE_UUID[:-1] + "g"):
            with self.subTest(uuid=uuid):
                self.assertJson(stack.request("POST", stack.ENROLL_PATH(uuid)), 404, NOT_FOUND)

    def test_missing_trailing_slash_is_404(self):
        path = stack.ENROLL_PATH(stack.ENTERPRISE_UUID).rstrip("/")
        self.assertJson(stack.request("POST", path, token=stack.token()), 404, NOT_FOUND)

    def test_prefix_alone_is_404(self):
        self.assertJson(stack.request("GET", "/enterprise/api/v1/enterprise-customer/"),
                        404, NOT_FOUND)

    def test_path_outside_the_service_is_json_404(self):
        code, headers, data = stack.request("GET", "/no/such/thing")
        self.assertEqual(code, 404)
        self.assertEqual(media_type(headers), "application/json")
        self.assertEqual(json.loads(data), {"detail": "Not found."})

    def test_uuid_forms_reach_the_endpoint(self):
        """Hyphenated and upper-case UUIDs route to the endpoint: the 415
        (not 404) shows the path matched."""
        u = stack.ENTERPRISE_UUID
        hyphenated = "%s-%s-%s-%s-%s" % (u[:8], u[8:12], u[12:16], u[16:20], u[20:])
        for form in (u, u.upper(), hyphenated, hyphenated.upper()):
            with self.subTest(form=form):
                resp = stack.request("POST", stack.ENROLL_PATH(form), body="x",
                                     headers={"Content-Type": "text/plain"}, token=stack.token())
                self.assertJson(resp, 415,
                                b'{"detail": "Unsupported media type \\"text/plain\\" in request."}')


class AuthFirstTest(EdgeCase):
    """Authentication (401) comes before method, media type and size."""

    def test_get_without_credentials_is_401_not_405(self):
        resp = stack.request("GET", stack.ENROLL_PATH(stack.ENTERPRISE_UUID))
        self.assertJson(resp, 401, NO_CREDENTIALS)
        self.assertEqual(resp[1].get("www-authenticate"), 'JWT realm="api"')

    def test_text_plain_without_credentials_is_401_not_415(self):
        resp = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body="x",
                             headers={"Content-Type": "text/plain"})
        self.assertJson(resp, 401, NO_CREDENTIALS)


class MethodTest(EdgeCase):
    def test_other_methods_are_405_with_allow(self):
        path = stack.ENROLL_PATH(stack.ENTERPRISE_UUID)
        for method in ("GET", "OPTIONS", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                resp = stack.request(method, path, token=stack.token())
                self.assertJson(resp, 405,
                                ('{"detail": "Method \\"%s\\" not allowed."}' % method).encode())
                self.assertEqual(resp[1].get("allow"), "POST")


class MediaTypeTest(EdgeCase):
    def test_text_plain_is_415(self):
        resp = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                             body=json.dumps(valid_body()),
                             headers={"Content-Type": "text/plain"}, token=stack.token())
        self.assertJson(resp, 415,
                        b'{"detail": "Unsupported media type \\"text/plain\\" in request."}')

    def test_form_encoding_is_415(self):
        resp = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body="a=b",
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             token=stack.token())
        self.assertJson(
            resp, 415,
            b'{"detail": "Unsupported media type \\"application/x-www-form-urlencoded\\" in request."}')

    def test_charset_parameter_is_accepted(self):
        for ctype in ("application/json; charset=utf-8", "application/json;charset=UTF-8",
                      "Application/JSON"):
            with self.subTest(content_type=ctype):
                code, headers, _ = stack.request(
                    "POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                    body=json.dumps(valid_body()), headers={"Content-Type": ctype},
                    token=stack.token())
                self.assertNotIn(code, (404, 405, 413, 415))
                self.assertEqual(media_type(headers), "application/json")


class BodySizeTest(EdgeCase):
    """413 comes from the service (nginx allows 32m; the test stack's
    limits.max_body_bytes is smaller), judged on CONTENT_LENGTH."""

    def test_body_over_the_limit_is_413(self):
        limit = stack.MAX_BODY_BYTES
        body = b'{"enrollments_info": []}' + b" " * (limit + 1 - 24)
        self.assertEqual(len(body), limit + 1)
        resp = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), body=body,
                             headers={"Content-Type": "application/json"}, token=stack.token())
        self.assertJson(resp, 413, ('{"detail": "Request body exceeds %d bytes."}' % limit).encode())

    def test_body_at_the_limit_is_not_413(self):
        limit = stack.MAX_BODY_BYTES
        body = b'{"enrollments_info": []}' + b" " * (limit - 24)
        self.assertEqual(len(body), limit)
        code, headers, _ = stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                                         body=body, headers={"Content-Type": "application/json"},
                                         token=stack.token())
        self.assertNotIn(code, (413, 415))
        self.assertEqual(media_type(headers), "application/json")


class NginxTest(EdgeCase):
    """What the shipped nginx snippet adds in front of the service."""

    def test_healthz_and_metrics_only_from_loopback(self):
        for path in ("/healthz", "/metrics"):
            with self.subTest(path=path):
                self.assertJson(
                    stack.request("GET", path, source_ip=stack.OTHER_CLIENT_IP), 403,
                    b'{"detail": "You do not have permission to perform this action."}')

    def test_endpoint_served_from_anywhere(self):
        resp = stack.request("GET", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                             token=stack.token(), source_ip=stack.OTHER_CLIENT_IP)
        self.assertJson(resp, 405, b'{"detail": "Method \\"GET\\" not allowed."}')

    def test_chunked_body_reaches_the_service_whole(self):
        """nginx reads a chunked body and passes CONTENT_LENGTH: the request
        is processed as if it had been sent with a length (one unknown
        learner -> 202 pending)."""
        stack.reset_data()
        body = json.dumps({"enrollments_info": [
            {"email": "chunked.pending@example.com", "course_run_key": "course-v1:edX+DemoX+2026",
             "license_uuid": "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"}]}).encode()
        code, headers, data = stack.request(
            "POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
            body=iter([body[:10], body[10:]]),
            headers={"Content-Type": "application/json"}, token=stack.token())
        self.assertEqual(code, 202, data)
        self.assertEqual(json.loads(data)["pending"][0]["email"], "chunked.pending@example.com")


class RequestIdTest(unittest.TestCase):
    def test_sent_id_is_echoed(self):
        for path in ("/healthz", stack.ENROLL_PATH("nope")):
            with self.subTest(path=path):
                rid = "itest-%d-%s" % (os.getpid(), path.count("/"))
                _, headers, _ = stack.request("GET", path, headers={"X-Request-ID": rid})
                self.assertEqual(headers.get("x-request-id"), rid)

    def test_missing_id_is_generated_and_unique(self):
        ids = set()
        for _ in range(5):
            _, headers, _ = stack.request("GET", "/healthz")
            rid = headers.get("x-request-id", "")
            self.assertRegex(rid, r"^[A-Za-z0-9._~:/+=@-]{8,128}$")
            ids.add(rid)
        self.assertEqual(len(ids), 5)

    def test_id_reaches_the_daemon_log(self):
        rid = "itest-log-%d-%d" % (os.getpid(), time.monotonic_ns())
        stack.request("GET", stack.ENROLL_PATH("not-a-uuid"), headers={"X-Request-ID": rid})
        stack.wait_until(lambda: rid in stack.logs(), 5, "the request id in the daemon's log")


class HealthTest(unittest.TestCase):
    def test_healthz_ok(self):
        code, headers, data = stack.request("GET", "/healthz")
        self.assertEqual(code, 200)
        self.assertEqual(media_type(headers), "application/json")
        self.assertEqual(json.loads(data), {"status": "ok"})

    def test_healthz_503_without_database_then_recovers(self):
        stack.stop_db()
        try:
            # every responder must notice, whichever one answers
            for _ in range(2 * stack.WORKERS):
                code, headers, data = stack.request("GET", "/healthz", timeout=20)
                self.assertEqual(code, 503, data)
                self.assertEqual(media_type(headers), "application/json")
                json.loads(data)
        finally:
            stack.start_db()
        stack.wait_until(lambda: stack.request("GET", "/healthz")[0] == 200, 20,
                         "/healthz to return to 200 after the database came back")
        # the responders reconnect: all of them serve again
        for _ in range(3 * stack.WORKERS):
            self.assertEqual(stack.request("GET", "/healthz")[0], 200)


class PoolTest(unittest.TestCase):
    """Each test starts from a running pool and leaves one running."""

    def setUp(self):
        if stack.master_pid() is None:
            stack.restart_pool()

    def tearDown(self):
        if stack.master_pid() is None:
            stack.restart_pool()

    def test_killed_responder_is_replaced(self):
        before = stack.wait_until(
            lambda: (lambda p: p if len(p) >= stack.WORKERS else None)(stack.responder_pids()),
            10, "the pool's responders")
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        after = stack.wait_until(
            lambda: (lambda p: p if victim not in p and len(p) == len(before) else None)(
                stack.responder_pids()),
            15, "a replacement for the killed responder")
        self.assertEqual(len(set(after) - set(before)), 1, (before, after))
        for _ in range(2 * stack.WORKERS):
            self.assertEqual(stack.request("GET", "/healthz")[0], 200)

    def _sigterm_during(self, hold, release, send):
        """Starts send() in a thread while hold() keeps it waiting, SIGTERMs
        the master, releases, and checks the request finished normally and
        the master exited 0."""
        master = stack.master_pid()
        self.assertIsNotNone(master)
        result = {}
        hold()
        try:
            def run():
                try:
                    result["resp"] = send()
                except Exception as e:  # reported by the assertions below
                    result["error"] = e

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            thread.join(1.5)
            self.assertTrue(thread.is_alive(),
                            "the request did not wait for the database: %r" % (result,))
            os.kill(master, signal.SIGTERM)
            time.sleep(0.5)
        except BaseException:
            release()
            raise
        release()
        thread.join(30)
        # wait for the master before judging, so that a failure here leaves
        # a stopped pool (restarted by tearDown), not a stopping one
        status = stack.wait_master_exit(30)
        self.assertFalse(thread.is_alive(), "the in-flight request never finished")
        self.assertIn("resp", result, "the in-flight request failed: %r" % (result,))
        self.assertLess(result["resp"][0], 500, result["resp"])
        self.assertEqual(status, 0, "the master's exit status after SIGTERM")
        return result["resp"]

    def test_sigterm_lets_a_slow_enroll_finish(self):
        """A real slow request: the enterprise table is write-locked, so the
        POST waits on its enterprise lookup while the master is told to stop."""
        conn = stack.db()
        cur = conn.cursor()

        def hold():
            cur.execute("LOCK TABLES enterprise_enterprisecustomer WRITE")

        def release():
            cur.execute("UNLOCK TABLES")
            conn.close()

        def send():
            return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                                 body=valid_body(), token=stack.token(), timeout=60)

        self._sigterm_during(hold, release, send)

    def test_sigterm_lets_a_slow_healthz_finish(self):
        """The database process is paused, so /healthz waits on its round trip
        while the master is told to stop; it must still answer 200."""
        with open(os.path.join(stack.STACK_DIR, "db", "mariadbd.ours.pid")) as f:
            mariadbd = int(f.read())

        def send():
            return stack.request("GET", "/healthz", timeout=60)

        code, _, data = self._sigterm_during(lambda: os.kill(mariadbd, signal.SIGSTOP),
                                             lambda: os.kill(mariadbd, signal.SIGCONT), send)
        self.assertEqual((code, json.loads(data)), (200, {"status": "ok"}))


if __name__ == "__main__":
    unittest.main()
