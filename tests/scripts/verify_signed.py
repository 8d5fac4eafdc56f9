#!/usr/bin/env python3
"""Verify what agent-registry signs with its platform key, offline, with the
published `joserfc` library against the key set at /.well-known/jwks.json:
an implementation independent of the API's Rust code.

    # Every receipt of an agent (its verified claims, one JSON object a line):
    python3 tests/scripts/verify_signed.py receipts --api https://api.example.com --agent agt_…
    # An agent's A2A Agent Card (A2A §8.4: a detached JWS over the RFC 8785 form):
    python3 tests/scripts/verify_signed.py card --api https://api.example.com --agent agt_…

With `--stdin`, it reads {"jwks": …, "receipt": "<JWS>"} or {"jwks": …, "card": {…}}
instead of fetching, and prints the verified claims (receipt) or the `kid`s
that signed (card). Exits 1, saying why, when a signature does not verify.
"""

import argparse
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
    parser.add_argument("what", choices=["receipts", "card"])
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
            else:
                print(json.dumps(verify_card(keys, given["card"])))
            return
        keys = KeySet.import_key_set(requests.get(f"{args.api}/.well-known/jwks.json", timeout=10).json())
        if args.what == "card":
            card = requests.get(f"{args.api}/v1/agents/{args.agent}/agent-card.json", timeout=10).json()
            print(json.dumps(verify_card(keys, card)))
            return
        url, params = f"{args.api}/v1/agents/{args.agent}/receipts", {}
        while True:
            page = requests.get(url, params=params, timeout=10).json()
            for receipt in page["receipts"]:
                print(json.dumps(verify_receipt(keys, receipt["receipt"])))
            if not page["next_cursor"]:
                break
            params = {"cursor": page["next_cursor"]}
    except (JoseError, ValueError, KeyError) as error:
        print(f"does not verify: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
