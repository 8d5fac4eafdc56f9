"""Schemathesis hooks for agent-registry (loaded with SCHEMATHESIS_HOOKS).

Signs every request RFC 9421 with the published `http-message-signatures`
library (through `sign_request.sign`, the tests' independent client), as the
principal the operation is meant for:

- registrations (`POST /v1/agents`, `POST /v1/clients`) with a fresh key whose
  public key replaces a well-formed `public_key` of the body: the generated key
  is random bytes, and only its owner can sign its registration;
- agent operations (`/v1/agents/{id}/…` writes, accept/complete/fail,
  resends) as an agent registered when the run starts;
- everything else as a client registered when the run starts.

Well-formed values whose validity the schema cannot express are made real
(a malformed value is left alone, so a request stays exactly as valid or
invalid as schemathesis generated it):

- `cursor`: only a cursor the API issued is valid (an opaque token);
- `agent_id` of a new job: an agent that exists (the price, at most the
  agent's, always fits: that agent charges the maximum);
- `deadline` of a job: in the future, within a year;
- `since`/`until` of a recover: within the last 14 days, in order;
- `agent_card_url` of an agent: only a URL serving a valid A2A card is
  valid, and none is reachable from here (the loopback is not a public
  address), so a well-formed one is dropped and the fields such a card
  gives a registration (`name`, `capabilities`) are given when absent;
- `since`/`until` of a deliveries listing, when both are given out of order:
  in order (the document says `until` must be later);
- `Idempotency-Key`: a fresh key per request, as a real client sends;
- the id in the path of an agent's or a client's own resources (all but the
  deactivations): the run's agent or client, so the operation reaches its
  logic instead of answering 403 for someone else's id; an update keeps the
  agent's (maximum) price, so jobs still fit it;
- a key rotation's `public_key` and `proof`: a fresh key and its real proof
  of possession (no schema can say which signature is right); when the run's
  own agent or client rotates, the run signs with the new key from then on.

The API's base URL comes from AR_BASE_URL.
"""

import base64
import datetime
import json
import os
import re
import uuid
import sys
from urllib.parse import parse_qsl, urlencode

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import schemathesis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sign_request import sign  # noqa: E402

BASE_URL = os.environ["AR_BASE_URL"].rstrip("/")
PUBLIC_KEY = re.compile(r"^[A-Za-z0-9+/]{43}=$")
MAXIMUM_PRICE = "1000000"
PRICE = re.compile(r"^\s*(1000000(\.0{1,6})?|[0-9]{1,6}(\.[0-9]{1,6})?)\s*$")


def public_key_of(key):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def register(path, body_without_key):
    key = Ed25519PrivateKey.generate()
    body = json.dumps({**body_without_key, "public_key": public_key_of(key)}).encode()
    prepared = requests.Request("POST", BASE_URL + path, data=body, headers={"Content-Type": "application/json"}).prepare()
    sign(prepared, key, public_key_of(key))
    response = requests.Session().send(prepared)
    response.raise_for_status()
    return key, response.json()["id"]


AGENT_KEY, AGENT_ID = register(
    "/v1/agents",
    {
        "name": "Schemathesis agent",
        "description": "Registered by the contract test.",
        "capabilities": ["translation"],
        "endpoint_url": "https://agent.example.com/webhooks",
        "price": MAXIMUM_PRICE,
    },
)
CLIENT_KEY, CLIENT_ID = register("/v1/clients", {"name": "Schemathesis client"})

AGENT_WRITES = re.compile(r"^/v1/(agents/[^/]+(/.*)?|jobs/[^/]+/(accept|complete|fail)|deliveries/[^/]+/resend)$")
AGENT_READS = re.compile(r"^/v1/agents/[^/]+/deliveries$")
OWN_AGENT_PATH = re.compile(r"^/v1/agents/agt_[0-9a-fA-F]{32}(?=/|$)")
OWN_CLIENT_PATH = re.compile(r"^/v1/clients/cli_[0-9a-fA-F]{32}(?=/)")


KEY_ROTATION = re.compile(r"^/v1/(agents|clients)/([^/]+)/keys$")
ROTATION_KEY = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")
PROOF = re.compile(r"^[A-Za-z0-9+/]{85}[AQgw]==$")
ISSUED_CURSOR = re.compile(r"^[A-Za-z0-9_-]+$")
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")
AGENT_ID_SHAPE = re.compile(r"^agt_[0-9a-fA-F]{32}$")
# The document's pattern of an https URL with a host name (`agent_card_url`).
HTTPS_URL = re.compile(
    r"^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\s#]*)?$"
)


def now(delta_seconds=0):
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_seconds)
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_date_time(value):
    try:
        return datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        return None


def is_date_time(value):
    return parse_date_time(value) is not None


def in_order(query):
    """`since` before `until` when both are well-formed: a rule between two
    parameters that no schema can express."""
    values = dict(query)
    since, until = parse_date_time(values.get("since")), parse_date_time(values.get("until"))
    if since is None or until is None or since.tzinfo is None or until.tzinfo is None or since < until:
        return query
    return [(name, now(-3600) if name == "since" else now(60) if name == "until" else value) for name, value in query]


def own(method, path):
    """The path with a well-formed agent or client id replaced by the run's
    own (the agent's deactivation excepted: it would end the run's jobs)."""
    if method == "DELETE" and OWN_AGENT_PATH.fullmatch(path):
        return path
    path = OWN_AGENT_PATH.sub(f"/v1/agents/{AGENT_ID}", path)
    return OWN_CLIENT_PATH.sub(f"/v1/clients/{CLIENT_ID}", path)


def without_card_url(body, registering):
    """The request as it would be with a real card behind `agent_card_url`
    (which this harness cannot serve): the URL dropped, and what the card
    would have given a registration given."""
    url = body.get("agent_card_url")
    if isinstance(url, str) and len(url) <= 2048 and HTTPS_URL.fullmatch(url):
        del body["agent_card_url"]
        if not registering and not body:
            body["description"] = "Described by a card."
    if registering:
        for field, value in (("name", "Schemathesis agent"), ("capabilities", ["translation"])):
            if body.get(field) is None:
                body[field] = value
    return body


def make_real(prepared, path):
    """Replaces well-formed values the schema cannot constrain further by
    real ones, so they stay well-formed: a value the schema refuses is left
    as it is, and the request stays as invalid as it was generated."""
    url = requests.utils.urlparse(prepared.url)
    query = parse_qsl(url.query, keep_blank_values=True)
    kept = in_order([(name, value) for name, value in query if not (name == "cursor" and ISSUED_CURSOR.fullmatch(value))])
    own_path = own(prepared.method, path)
    if kept != query or own_path != path:
        prepared.prepare_url(url._replace(path=own_path, query=urlencode(kept)).geturl(), None)
        path = own_path
    # One key per request: a key generated again for another body would be
    # refused (422, documented), a rule of keys no schema can express.
    key = prepared.headers.get("Idempotency-Key")
    if key is not None and IDEMPOTENCY_KEY.fullmatch(key):
        prepared.headers["Idempotency-Key"] = f"st-{uuid.uuid4()}"
    if prepared.method not in ("POST", "PATCH") or not prepared.body:
        return
    try:
        body = json.loads(prepared.body)
    except ValueError:
        return
    if not isinstance(body, dict):
        return
    if prepared.method == "PATCH":
        without_card_url(body, registering=False)
        if path == f"/v1/agents/{AGENT_ID}" and isinstance(body.get("price"), str) and PRICE.fullmatch(body["price"]):
            body["price"] = MAXIMUM_PRICE
    elif path == "/v1/jobs":
        if isinstance(body.get("agent_id"), str) and AGENT_ID_SHAPE.fullmatch(body["agent_id"]):
            body["agent_id"] = AGENT_ID
        if is_date_time(body.get("deadline")):
            body["deadline"] = now(3600)
    elif path.endswith("/deliveries/recover"):
        if is_date_time(body.get("since")):
            body["since"] = now(-3600)
        if is_date_time(body.get("until")):
            body["until"] = now(60)
    else:
        return
    prepared.prepare_body(json.dumps(body).encode(), None)


def make_rotation_real(prepared, kind, principal_id, current_key):
    """A well-formed rotation becomes a real one (the proof message of
    docs/API.md); if it rotates the run's own principal, that principal's key
    is the new one once the API said 200."""
    try:
        body = json.loads(prepared.body or b"")
    except ValueError:
        return
    if not (isinstance(body, dict) and isinstance(body.get("public_key"), str) and isinstance(body.get("proof"), str)):
        return
    if not (ROTATION_KEY.fullmatch(body["public_key"]) and PROOF.fullmatch(body["proof"])):
        return
    new_key = Ed25519PrivateKey.generate()
    message = f"agent-registry key rotation:{principal_id}:{public_key_of(current_key)}:{public_key_of(new_key)}"
    body["public_key"] = public_key_of(new_key)
    body["proof"] = base64.b64encode(new_key.sign(message.encode())).decode()
    prepared.prepare_body(json.dumps(body).encode(), None)

    def adopt(response, *args, **kwargs):
        global AGENT_KEY, CLIENT_KEY
        if response.status_code == 200 and kind == "agents" and principal_id == AGENT_ID:
            AGENT_KEY = new_key
        elif response.status_code == 200 and kind == "clients" and principal_id == CLIENT_ID:
            CLIENT_KEY = new_key
        return response

    prepared.register_hook("response", adopt)


class Signer(requests.auth.AuthBase):
    """Signs the final request, body bytes included, as its principal."""

    def __call__(self, prepared):
        path = requests.utils.urlparse(prepared.url).path
        if prepared.method == "POST" and path in ("/v1/agents", "/v1/clients"):
            key = Ed25519PrivateKey.generate()
            try:
                body = json.loads(prepared.body or b"")
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("public_key"), str) and PUBLIC_KEY.fullmatch(body["public_key"]):
                body["public_key"] = public_key_of(key)
                if path == "/v1/agents":
                    without_card_url(body, registering=True)
                prepared.prepare_body(json.dumps(body).encode(), None)
            return sign(prepared, key, public_key_of(key))
        make_real(prepared, path)
        path = requests.utils.urlparse(prepared.url).path
        rotation = KEY_ROTATION.fullmatch(path) if prepared.method == "POST" else None
        if (prepared.method != "GET" and AGENT_WRITES.fullmatch(path)) or AGENT_READS.fullmatch(path):
            if rotation:
                make_rotation_real(prepared, rotation[1], rotation[2], AGENT_KEY)
            return sign(prepared, AGENT_KEY, AGENT_ID)
        if rotation:
            make_rotation_real(prepared, rotation[1], rotation[2], CLIENT_KEY)
        return sign(prepared, CLIENT_KEY, CLIENT_ID)


schemathesis.auth.set_from_requests(Signer())
