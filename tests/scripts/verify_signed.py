#!/usr/bin/env python3
"""Verify what agent-registry signs with its platform key, offline, with the
published `joserfc` library against the key set at /.well-known/jwks.json:
an implementation independent of the API's Rust code.

    # Every public receipt of an agent (its verified claims, one JSON object a line):
    python3 tests/scripts/verify_signed.py receipts --api https://api.example.com --agent agt_…
    # An agent's A2A Agent Card (A2A §8.4: a detached JWS over the RFC 8785 form):
    python3 tests/scripts/verify_signed.py card --api https://api.example.com --agent agt_…

With `--stdin`, it reads {"jwks": …, "receipt": "<JWS>"} or {"jwks": …, "card": {…}}
instead of fetching, and prints the verified claims (receipt, either form) or
the `kid`s that signed (card). `buyer` proves who bought a job:

    # A client shows a third party the job's public receipt, its client id and the salt
    # (both from the full receipt); the commitment must match:
    echo '{"jwks": …, "receipt": "<public JWS>", "client_id": "cli_…", "client_salt": "<64 hex>"}' |
        python3 tests/scripts/verify_signed.py buyer --stdin

Exits 1, saying why, when a signature does not verify, a listed receipt is not
a public one, or the client id and salt do not match the commitment.
"""

import argparse
import hashlib
import json
import sys

import requests
import rfc8785
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["EdDSA"]


def verify_receipt(keys, receipt):
    """The receipt's claims, once its signature verifies (the `kid` picks the key)."""
    verified = jws.deserialize_compact(receipt, keys, algorithms=ALGORITHMS)
    return json.loads(verified.payload)


def client_commitment(client_id, client_salt):
    """Hex SHA-256 of the salt's 32 bytes followed by the client id in ASCII."""
    salt = bytes.fromhex(client_salt)
    if len(salt) != 32:
        raise ValueError("client_salt is not 32 bytes")
    return hashlib.sha256(salt + client_id.encode("ascii")).hexdigest()


def verify_public_receipt(keys, receipt):
    """The claims of a public receipt: verified, and naming neither the client nor the rating."""
    claims = verify_receipt(keys, receipt)
    if claims.get("form") != "public" or "client_id" in claims or "rating" in claims or "client_salt" in claims:
        raise ValueError(f"not a public receipt: {sorted(claims)}")
    return claims


def verify_buyer(keys, receipt, client_id, client_salt):
    """The public receipt's claims, once its commitment is the one of this client under this salt."""
    claims = verify_public_receipt(keys, receipt)
    if claims["client_commitment"] != client_commitment(client_id, client_salt):
        raise ValueError("the client id and salt do not match the receipt's client_commitment")
    return claims


def verify_card(keys, card):
    """The `kid` of each signature on the card; every one must verify.

    The payload is the card without `signatures`, in RFC 8785 form; the
    signatures are detached JWS (`protected..signature`)."""
    unsigned = {name: value for name, value in card.items() if name != "signatures"}
    payload = rfc8785.dumps(unsigned)
    kids = []
    for signature in card.get("signatures") or []:
        compact = f"{signature['protected']}..{signature['signature']}"
        verified = jws.deserialize_compact(compact, keys, algorithms=ALGORITHMS, payload=payload)
        kids.append(verified.headers()["kid"])
    if not kids:
        raise JoseError("the card has no signatures")
    return kids


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["receipts", "card", "buyer"])
    parser.add_argument("--api", help="the API's base URL")
    parser.add_argument("--agent", help="agent id, agt_…")
    parser.add_argument("--stdin", action="store_true", help="read the key set and the signed thing from stdin")
    args = parser.parse_args()
    try:
        if args.stdin:
            given = json.load(sys.stdin)
            keys = KeySet.import_key_set(given["jwks"])
            if args.what == "receipts":
                print(json.dumps(verify_receipt(keys, given["receipt"])))
            elif args.what == "buyer":
                claims = verify_buyer(keys, given["receipt"], given["client_id"], given["client_salt"])
                print(json.dumps(claims))
            else:
                print(json.dumps(verify_card(keys, given["card"])))
            return
        if args.what == "buyer":
            parser.error("buyer reads its input from --stdin")
        keys = KeySet.import_key_set(requests.get(f"{args.api}/.well-known/jwks.json", timeout=10).json())
        if args.what == "card":
            card = requests.get(f"{args.api}/v1/agents/{args.agent}/agent-card.json", timeout=10).json()
            print(json.dumps(verify_card(keys, card)))
            return
        url, params = f"{args.api}/v1/agents/{args.agent}/receipts", {}
        while True:
            page = requests.get(url, params=params, timeout=10).json()
            for receipt in page["receipts"]:
                print(json.dumps(verify_public_receipt(keys, receipt["receipt"])))
            if not page["next_cursor"]:
                break
            params = {"cursor": page["next_cursor"]}
    except (JoseError, ValueError, KeyError) as error:
        print(f"does not verify: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
