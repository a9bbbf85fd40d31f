"""The pool's configuration reload (SIGHUP, SPEC §6) through the real stack.

The master re-reads its configuration file on SIGHUP: a valid new file
replaces the responders (new ones start with it, old ones drain); a broken
one is refused with a log line and the old responders keep serving.
"""

import os
import signal
import time
import unittest

import stack

TWO_ITEMS = {"enrollments_info": [
    {"email": "reload.a@example.com", "course_run_key": "course-v1:edX+DemoX+2026",
     "license_uuid": "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"},
    {"email": "reload.b@example.com", "course_run_key": "course-v1:edX+DemoX+2026",
     "license_uuid": "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"}]}
TOO_MANY = b'{"non_field_errors": ["Too many enrollments: 2 (the limit is 1)."]}'


class ReloadTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()
        self.path = stack.ENV["BULK_CONFIG"]
        with open(self.path, encoding="utf-8") as f:
            self.original = f.read()

    def tearDown(self):
        self.write(self.original)
        stack.restart_pool()

    def write(self, text):
        # Rewrite in place: the daemon (running as nobody) reads the file
        # through its group, which must not change.
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)

    def post(self):
        return stack.request("POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID),
                             body=TWO_ITEMS, token=stack.token())

    def hup_and_wait_for_new_responders(self):
        before = set(stack.responder_pids())
        os.kill(stack.master_pid(), signal.SIGHUP)
        stack.wait_until(lambda: set(stack.responder_pids()).isdisjoint(before)
                         and len(stack.responder_pids()) >= stack.WORKERS,
                         timeout=15, what="a new generation of responders")

    def test_sighup_applies_a_new_limit(self):
        self.assertEqual(self.post()[0], 202)
        self.write(self.original + "limits.max_items = 1\n")
        self.hup_and_wait_for_new_responders()
        code, _, body = self.post()
        self.assertEqual((code, body), (400, TOO_MANY))
        self.assertIn("SIGHUP: configuration reloaded", stack.logs())

    def test_sighup_with_a_broken_file_keeps_serving(self):
        before = set(stack.responder_pids())
        self.write(self.original + "no.such.key = 1\n")
        os.kill(stack.master_pid(), signal.SIGHUP)
        stack.wait_until(lambda: "configuration not reloaded" in stack.logs(),
                         timeout=10, what="the refusal in the log")
        self.assertIn('unknown key "no.such.key"', stack.logs())
        self.assertEqual(set(stack.responder_pids()), before)
        self.assertEqual(self.post()[0], 202)


class CrashLoopTest(unittest.TestCase):
    """A responder that keeps dying young is restarted ever more slowly
    (100 ms doubling), so a crash loop cannot spin the CPU."""

    def tearDown(self):
        stack.restart_pool()

    def test_repeated_young_deaths_back_off(self):
        time.sleep(2.1)    # the first victim must count as old (> 2 s)
        victim = stack.responder_pids()[0]
        gaps = []
        for _ in range(5):
            others = set(stack.responder_pids()) - {victim}
            started = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            new = stack.wait_until(lambda: set(stack.responder_pids()) - others - {victim},
                                   timeout=15, what="the replacement responder")
            gaps.append(time.monotonic() - started)
            victim = min(new)
        # The first victim had lived long: replaced at once.  Each later
        # one died young: 100, 200, 400, 800 ms.
        self.assertLess(gaps[0], 0.5, gaps)
        self.assertGreaterEqual(gaps[4], 0.75, gaps)
        self.assertGreater(gaps[4], gaps[2], gaps)
        for ms in (100, 200, 400, 800):
            self.assertIn("restarting in %d ms" % ms, stack.logs())
        code, _, _ = stack.request("GET", "/healthz")
        self.assertEqual(code, 200)


if __name__ == "__main__":
    unittest.main()
