#!/usr/bin/python3
"""Generates the fixed JWT test vectors in this directory.

The vectors are made by ANOTHER implementation (PyJWT + cryptography, as
shipped by Debian: python3-jwt, python3-cryptography) so that the C verifier
is checked against tokens it did not produce itself.  The output is committed;
the unit tests never run this script.  Regenerate with:

    cd tests/data/jwt && /usr/bin/python3 make_vectors.py

RSA keys are fresh on every run (only the public halves are written), so the
RS tokens change; HS tokens are deterministic.  Every token uses fixed times
around NOW, and tests call jwt_verify() with that same `now`.

Keyring the tests build (see tests/unit/test_jwt.c):
  primary issuer  ISS / AUD / SECRET            (HS256)
  issuers.json    two more HS256 issuers        (edx JWT_ISSUERS shape)
  jwks.json       key-1 (alg RS256) and key-2   (no alg, no kid)
"""
import base64
import hashlib
import hmac
import json
import os

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

NOW = 1700000000
ISS = "http://127.0.0.1:8000/oauth2"
AUD = "lms-key"
SECRET = "lms-secret-key-for-tests"
ISSUERS = [
    {"ISSUER": "https://license-manager.example.com/oauth2",
     "AUDIENCE": "license-manager", "SECRET_KEY": "license-manager-secret"},
    {"ISSUER": "https://other.example.com/oauth2",
     "AUDIENCE": "other-audience", "SECRET_KEY": "other-secret"},
]

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENS = os.path.join(HERE, "tokens")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


def token(name, tok):
    with open(os.path.join(TOKENS, name + ".jwt"), "w") as f:
        f.write(tok)


def claims(**over):
    """A complete, valid payload for the primary issuer; over adds/replaces,
    a value of None removes the claim."""
    c = {
        "iss": ISS, "aud": AUD, "iat": NOW - 60, "exp": NOW + 3600,
        "preferred_username": "lm_worker", "email": "worker@example.com",
        "administrator": True, "version": "1.2.0",
        "roles": ["enterprise_openedx_operator:*"],
        "scopes": ["user_id", "email", "profile"],
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def hs_raw(header_json, payload_json, secret):
    """Signs raw JSON text by hand (for what PyJWT refuses to produce)."""
    signing_input = b64u(header_json.encode()) + "." + b64u(payload_json.encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64u(mac)


def main():
    os.makedirs(TOKENS, exist_ok=True)
    key1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    jwk1 = json.loads(RSAAlgorithm.to_jwk(key1.public_key()))
    jwk1.update({"kid": "key-1", "alg": "RS256", "use": "sig"})
    jwk2 = json.loads(RSAAlgorithm.to_jwk(key2.public_key()))
    write("jwks.json", json.dumps({"keys": [jwk1, jwk2]}, indent=1) + "\n")
    pem1 = key1.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    write("rsa_public.pem", pem1.decode())
    write("issuers.json", json.dumps(ISSUERS, indent=1) + "\n")

    # Bad key material: jwt_keyring_load must refuse each with a clear message.
    bad_n = dict(jwk2, n="abc+def")
    write("bad_jwks_n.json", json.dumps({"keys": [jwk1, bad_n]}) + "\n")
    write("bad_jwks_syntax.json", '{"keys": [{"kty": "RSA",\n')
    write("bad_jwks_dupkid.json", json.dumps({"keys": [jwk1, jwk1]}) + "\n")
    write("bad_jwks_kty.json", json.dumps({"keys": [{"kty": "oct", "k": "AAAA"}]}) + "\n")
    write("bad_issuers_missing.json",
          json.dumps([{"ISSUER": "https://x.example.com", "AUDIENCE": "x"}]) + "\n")
    write("bad_issuers_type.json", json.dumps({"ISSUER": "not a list"}) + "\n")

    sec = SECRET.encode()
    hs = lambda c, s=SECRET, h=None: jwt.encode(c, s, algorithm="HS256", headers=h)

    # Accepted.
    token("hs256_valid", hs(claims()))
    token("rs256_valid", jwt.encode(claims(), key1, algorithm="RS256",
                                    headers={"kid": "key-1"}))
    token("rs512_valid", jwt.encode(claims(roles=["enterprise_admin:" + "0" * 32]),
                                    key2, algorithm="RS512"))
    token("issuers_file_first", hs(claims(iss=ISSUERS[0]["ISSUER"],
                                          aud=ISSUERS[0]["AUDIENCE"]),
                                   ISSUERS[0]["SECRET_KEY"]))
    token("issuers_file_second", hs(claims(iss=ISSUERS[1]["ISSUER"],
                                           aud=ISSUERS[1]["AUDIENCE"], version=None,
                                           preferred_username=None, username="plain_user"),
                                    ISSUERS[1]["SECRET_KEY"]))
    token("aud_list", hs(claims(aud=["someone-else", AUD])))
    token("expired_in_leeway", hs(claims(exp=NOW - 30)))

    # Refused.
    good = hs(claims())
    token("wrong_signature", hs(claims(), "not-the-secret"))
    token("rs256_wrong_signature", jwt.encode(claims(), stranger, algorithm="RS256",
                                              headers={"kid": "key-1"}))
    token("truncated", good.rsplit(".", 1)[0][:-5])
    token("extra_segment", good + ".AAAA")
    h, p, s = good.split(".")
    token("bad_base64", h + "." + p[:10] + "+" + p[11:] + "." + s)
    token("padded_base64", h + "=." + p + "." + s)
    token("alg_none", b64u(b'{"alg":"none","typ":"JWT"}') + "."
          + b64u(json.dumps(claims()).encode()) + ".")
    # Algorithm confusion: HS256 keyed with the RSA public key PEM.  PyJWT
    # refuses to make this, so it is signed by hand.
    token("alg_confusion", hs_raw('{"alg":"HS256","typ":"JWT","kid":"key-1"}',
                                  json.dumps(claims()), pem1))
    token("alg_hs512", jwt.encode(claims(), SECRET, algorithm="HS512"))
    token("rs256_unknown_kid", jwt.encode(claims(), key1, algorithm="RS256",
                                          headers={"kid": "nope"}))
    token("rs512_pinned_rs256_key", jwt.encode(claims(), key1, algorithm="RS512",
                                               headers={"kid": "key-1"}))
    token("rs256_wrong_iss", jwt.encode(claims(iss="https://evil.example.com"), key2,
                                        algorithm="RS256"))
    token("expired", hs(claims(exp=NOW - 10)))
    token("iat_future", hs(claims(iat=NOW + 120)))
    token("nbf_future", hs(claims(nbf=NOW + 120)))
    token("wrong_iss", hs(claims(iss="https://evil.example.com/oauth2")))
    token("wrong_aud", hs(claims(aud="someone-else")))
    token("missing_aud", hs(claims(aud=None)))
    token("version_2", hs(claims(version="2.0.0")))
    token("missing_exp", hs(claims(exp=None)))
    token("missing_iat", hs(claims(iat=None)))
    token("float_exp", hs(claims(exp=NOW + 3600.5)))
    token("missing_username", hs(claims(preferred_username=None)))
    token("restricted", hs(claims(is_restricted=True)))
    token("big_64k", hs(claims(padding="x" * 65536)))
    token("duplicate_claim", hs_raw('{"alg":"HS256","typ":"JWT"}',
                                    json.dumps(claims())[:-1] + ', "iss": "' + ISS + '"}',
                                    sec))
    token("payload_not_object", hs_raw('{"alg":"HS256","typ":"JWT"}', '["iss"]', sec))
    token("header_not_object", hs_raw('"HS256"', json.dumps(claims()), sec))
    token("deep_nesting", hs_raw('{"alg":"HS256","typ":"JWT"}',
                                 json.dumps(claims())[:-1] + ', "x": '
                                 + "[" * 40 + "]" * 40 + "}", sec))
    token("json_comment", hs_raw('{"alg":"HS256",/* c */"typ":"JWT"}',
                                 json.dumps(claims()), sec))


if __name__ == "__main__":
    main()
