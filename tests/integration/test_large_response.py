"""A response body larger than the responder's write pieces (issue 9: the
body is streamed in pieces of about 64 KiB, after a first pass that counts
it for Content-Length) arrives whole, in order, byte for byte what
json.dumps gives, with a Content-Length that matches."""

import json
import unittest

import stack

DEMOX = "course-v1:edX+DemoX+2026"
LIC = "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"
ITEMS = 3000        # about 370 KB of response: several pieces


class LargeResponseTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()

    def test_a_body_of_many_pieces_is_whole_and_exact(self):
        emails = ["stream.%04d@example.com" % i for i in range(ITEMS)]
        status, headers, data = stack.request(
            "POST", stack.ENROLL_PATH(stack.ENTERPRISE_UUID), token=stack.token(), timeout=60,
            body={"enrollments_info": [{"email": e, "course_run_key": DEMOX, "license_uuid": LIC}
                                       for e in emails]})
        self.assertEqual(status, 202, data[:300])
        want = json.dumps({"successes": [], "pending": [
            {"email": e, "course_run_key": DEMOX, "created": True, "activation_link": None}
            for e in emails], "failures": []}).encode("utf-8")
        self.assertGreater(len(want), 4 * 64 * 1024)
        self.assertEqual(int(headers["content-length"]), len(want))
        self.assertEqual(data, want)


if __name__ == "__main__":
    unittest.main()
