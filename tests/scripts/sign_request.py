#!/usr/bin/env python3
"""Sign (and optionally send) a request to agent-registry with RFC 9421 HTTP
Message Signatures, using the published `http-message-signatures` library:
an implementation independent of the API's Rust code.

    python3 tests/scripts/sign_request.py --key agent.pem --keyid KEYID \
        --send POST http://127.0.0.1:8080/v1/agents < body.json

Without --send it prints the headers to add, as JSON. The body comes from
stdin (empty: no body). Keys: --key PEM (openssl genpkey -algorithm ed25519)
or --seed HEX (the 32-byte private seed).
"""

import argparse
import datetime
import json
import secrets
import sys

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms


class OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key):
        self.key = key

    def resolve_private_key(self, key_id):
        return self.key


def sign(prepared, key, keyid, created=None):
    """Signs a prepared `requests` request in place as `keyid` with the
    Ed25519 private `key`: `@method`, `@target-uri`, with a body its
    `Content-Digest`, and its `Idempotency-Key` when it has one (the API
    refuses an uncovered one). Other tools (the schemathesis hooks, the
    generated client's test) import this."""
    for name in ("Signature", "Signature-Input", "Content-Digest"):
        prepared.headers.pop(name, None)  # signing again replaces an earlier signature
    body = prepared.body
    if isinstance(body, str):
        body = body.encode()
    created = datetime.datetime.fromtimestamp(created or datetime.datetime.now().timestamp(), datetime.timezone.utc)
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=OneKey(key))
    signer.sign(
        prepared,
        key_id=keyid,
        created=created,
        nonce=secrets.token_urlsafe(16),
        label="sig1",
        covered_component_ids=("@method", "@target-uri")
        + (("idempotency-key",) if "Idempotency-Key" in prepared.headers else ()),
        body=body or None,  # with a body: Content-Digest (sha-256) is added and covered
    )
    return prepared


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method")
    parser.add_argument("url")
    parser.add_argument("--keyid", required=True, help="agt_…, cli_…, or the base64 public key to register")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", help="PKCS#8 PEM private key file")
    group.add_argument("--seed", help="hex of the 32-byte Ed25519 private seed")
    parser.add_argument("--created", type=int, help="unix time to sign as (default: now)")
    parser.add_argument("--idempotency-key", help="send this Idempotency-Key (the signature covers it)")
    parser.add_argument("--send", action="store_true", help="send the request and print the answer")
    args = parser.parse_args()

    if args.key:
        with open(args.key, "rb") as pem:
            key = serialization.load_pem_private_key(pem.read(), password=None)
    else:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(args.seed))

    body = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    request = requests.Request(args.method, args.url, data=body or None)
    if body:
        request.headers["Content-Type"] = "application/json"
    if args.idempotency_key:
        request.headers["Idempotency-Key"] = args.idempotency_key
    prepared = request.prepare()

    sign(prepared, key, args.keyid, created=args.created)

    if args.send:
        response = requests.Session().send(prepared)
        print(response.status_code)
        print(response.text)
        return 0 if response.ok else 1
    names = ("Content-Digest", "Idempotency-Key", "Signature-Input", "Signature")
    print(json.dumps({name: prepared.headers[name] for name in names if name in prepared.headers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
