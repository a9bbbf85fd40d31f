"""JWT authentication and enterprise permission through the real stack
(SPEC §3, §2.1 steps 1, 3 and 4).

A request that gets past authentication and permission is checked with a
body whose outcome is known (one unknown learner -> 202 pending), so
"allowed" means the enrollment really ran, not merely "not refused".
"""

import json
import time
import unittest

import stack

NO_CREDENTIALS = b'{"detail": "Authentication credentials were not provided."}'
INVALID = b'{"detail": "Invalid token."}'
MISSING_PERMISSION = b'{"detail": "Missing: enterprise.can_enroll_learners"}'
NOT_FOUND = b'{"detail": "Not found."}'
HYPHENATED = "-".join([stack.ENTERPRISE_UUID[0:8], stack.ENTERPRISE_UUID[8:12],
                       stack.ENTERPRISE_UUID[12:16], stack.ENTERPRISE_UUID[16:20],
                       stack.ENTERPRISE_UUID[20:]])
OTHER_ENTERPRISE = "0f1e2d3c4b5a49788796a5b4c3d2e1f0"


def pending_body(email="auth.pending@example.com"):
    return {"enrollments_info": [{"email": email,
                                  "course_run_key": "course-v1:edX+DemoX+2026",
                                  "license_uuid": "5b8e1f0a-9a3c-4d2e-8f7a-0b1c2d3e4f5a"}]}


def post(token=None, uuid=stack.ENTERPRISE_UUID, headers=None, body=None):
    return stack.request("POST", stack.ENROLL_PATH(uuid), body=body or pending_body(),
                         token=token, headers=headers)


class AuthTest(unittest.TestCase):
    def setUp(self):
        stack.reset_data()

    def assertRefused(self, resp, status, body):
        code, headers, data = resp
        self.assertEqual((code, data), (status, body))
        if status == 401:
            self.assertEqual(headers.get("www-authenticate"), 'JWT realm="api"')

    def assertAllowed(self, resp):
        code, _, data = resp
        self.assertEqual(code, 202, data)
        self.assertEqual(json.loads(data)["pending"][0]["email"], "auth.pending@example.com")

    def test_no_header_is_401_with_challenge(self):
        self.assertRefused(post(), 401, NO_CREDENTIALS)

    def test_other_scheme_is_401_no_credentials(self):
        self.assertRefused(post(headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, NO_CREDENTIALS)

    def test_garbage_token_is_401_invalid(self):
        self.assertRefused(post(token="abc.def.ghi"), 401, INVALID)

    def test_expired_token_is_401_invalid_and_logged_precisely(self):
        now = int(time.time())
        self.assertRefused(post(token=stack.token(iat=now - 600, exp=now - 300)), 401, INVALID)
        self.assertIn("expired", stack.logs())

    def test_wrong_audience_and_issuer_are_401(self):
        self.assertRefused(post(token=stack.token(aud="someone-else")), 401, INVALID)
        self.assertRefused(post(token=stack.token(iss="https://evil.example/oauth2")), 401, INVALID)

    def test_bearer_prefix_and_case_insensitive_jwt_prefix(self):
        self.assertAllowed(post(headers={"Authorization": "Bearer " + stack.token()}))
        stack.reset_data()
        self.assertAllowed(post(headers={"Authorization": "jwt " + stack.token()}))

    def test_learner_role_is_403(self):
        tok = stack.token(roles=["enterprise_learner:" + stack.ENTERPRISE_UUID])
        self.assertRefused(post(token=tok), 403, MISSING_PERMISSION)

    def test_admin_of_other_enterprise_is_403(self):
        tok = stack.token(roles=["enterprise_admin:" + OTHER_ENTERPRISE])
        self.assertRefused(post(token=tok), 403, MISSING_PERMISSION)

    def test_no_roles_is_403(self):
        self.assertRefused(post(token=stack.token(roles=None)), 403, MISSING_PERMISSION)

    def test_restricted_token_is_403(self):
        code, _, _ = post(token=stack.token(is_restricted=True))
        self.assertEqual(code, 403)

    def test_operator_wildcard_is_allowed(self):
        self.assertAllowed(post(token=stack.token(roles=["enterprise_openedx_operator:*"])))

    def test_admin_uuid_without_hyphens_is_allowed_on_hyphenated_path(self):
        tok = stack.token(roles=["enterprise_admin:" + stack.ENTERPRISE_UUID.upper()])
        self.assertAllowed(post(token=tok, uuid=HYPHENATED))

    def test_admin_hyphenated_uuid_is_allowed(self):
        tok = stack.token(roles=["enterprise_admin:" + HYPHENATED])
        self.assertAllowed(post(token=tok))

    def test_non_staff_admin_linked_is_allowed(self):
        tok = stack.token(preferred_username="demo_admin", administrator=False,
                          roles=["enterprise_admin:" + stack.ENTERPRISE_UUID])
        self.assertAllowed(post(token=tok))

    def test_non_staff_admin_not_linked_is_404(self):
        # bob is linked to Other Corp only.
        tok = stack.token(preferred_username="bob", administrator=False,
                          roles=["enterprise_admin:" + stack.ENTERPRISE_UUID])
        self.assertRefused(post(token=tok), 404, NOT_FOUND)

    def test_inactive_enterprise_is_404(self):
        self.assertRefused(post(token=stack.token(), uuid=stack.INACTIVE_ENTERPRISE_UUID), 404, NOT_FOUND)

    def test_unknown_enterprise_is_404(self):
        self.assertRefused(post(token=stack.token(), uuid="0" * 32), 404, NOT_FOUND)

    def test_authentication_comes_before_method(self):
        code, headers, data = stack.request("GET", stack.ENROLL_PATH(stack.ENTERPRISE_UUID))
        self.assertEqual((code, data), (401, NO_CREDENTIALS))


if __name__ == "__main__":
    unittest.main()
