#!/usr/bin/env python3
"""Generates a Python client from the running API's /openapi.json with
`openapi-python-client`, then runs the demo flow through it: register an agent
and a client, discover the agent, hire it, accept and complete the job, read
the result. Every request is signed RFC 9421 by the published
`http-message-signatures` library (`sign_request.sign`), added to the
generated client as an httpx request hook.

    AR_BASE_URL=http://127.0.0.1:8080 python3 generated_client_flow.py WORKDIR
"""

import base64
import json
import os
import subprocess
import sys
import uuid

import httpx
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sign_request import sign  # noqa: E402

BASE_URL = os.environ["AR_BASE_URL"].rstrip("/")
PACKAGE = "agent_registry_client"


def generate(workdir):
    """The client package, generated from the live document into `workdir`."""
    os.makedirs(workdir, exist_ok=True)
    spec = os.path.join(workdir, "openapi.json")
    with open(spec, "wb") as file:
        file.write(requests.get(BASE_URL + "/openapi.json", timeout=10).content)
    config = os.path.join(workdir, "config.json")
    with open(config, "w") as file:
        # No formatter run afterwards: the generated code is used, not kept.
        json.dump({"package_name_override": PACKAGE, "post_hooks": []}, file)
    subprocess.run(
        ["openapi-python-client", "generate", "--path", spec, "--config", config,
         "--output-path", os.path.join(workdir, PACKAGE), "--meta", "none", "--overwrite", "--fail-on-warning"],
        check=True,
    )
    sys.path.insert(0, workdir)


class Signer(httpx.Auth):
    """httpx authentication that signs each request as `keyid` with `key`
    (the same `sign` as every Python test: @method, @target-uri and, with a
    body, Content-Digest)."""

    requires_request_body = True

    def __init__(self, key, keyid):
        self.key, self.keyid = key, keyid

    def auth_flow(self, request):
        prepared = requests.Request(
            request.method, str(request.url), data=request.content or None, headers=dict(request.headers)
        ).prepare()
        sign(prepared, self.key, self.keyid)
        for name in ("Signature", "Signature-Input", "Content-Digest"):
            if name in prepared.headers:
                request.headers[name] = prepared.headers[name]
        yield request


def public_key_of(key):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def expect(response, status, model):
    assert response.status_code == status and isinstance(response.parsed, model), (
        f"{response.status_code}: {response.content.decode()}"
    )
    return response.parsed


def run(workdir):
    generate(workdir)
    # Imported once generated: the package exists only now.
    from agent_registry_client import AuthenticatedClient, Client, models
    from agent_registry_client.api.agents import register_agent
    from agent_registry_client.api.clients import register_client
    from agent_registry_client.api.discovery import discover_agents
    from agent_registry_client.api.jobs import accept_job, complete_job, create_job, get_job
    from agent_registry_client.api.ratings import list_ratings, rate_job

    public = Client(base_url=BASE_URL, raise_on_unexpected_status=True)

    def signed_as(key, keyid):
        # The document's security scheme is the `Signature` header; the auth
        # hook computes it (and its companions) for every request.
        return AuthenticatedClient(
            base_url=BASE_URL, token="", prefix="", auth_header_name="Signature",
            httpx_args={"auth": Signer(key, keyid)}, raise_on_unexpected_status=True,
        )

    agent_key, client_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    agent = expect(
        register_agent.sync_detailed(
            client=signed_as(agent_key, public_key_of(agent_key)),
            body=models.RegisterAgent(
                name="Generated-client translator", description="Registered through a generated client.",
                capabilities=["translation", "legal"], endpoint_url="https://agent.example.com/webhooks",
                price="2.50", public_key=public_key_of(agent_key),
            ),
        ),
        201, models.RegisteredAgent,
    )
    assert agent.webhook_secret.startswith("whsec_")
    client_id = expect(
        register_client.sync_detailed(
            client=signed_as(client_key, public_key_of(client_key)),
            body=models.RegisterClient(name="Generated-client buyer", public_key=public_key_of(client_key)),
        ),
        201, models.Client,
    ).id
    as_agent, as_client = signed_as(agent_key, agent.id), signed_as(client_key, client_id)
    print(f"registered {agent.id} and {client_id}")

    page = expect(
        discover_agents.sync_detailed(
            client=public, capabilities="translation,legal", max_price="5",
            sort=models.DiscoverAgentsSort.PRICE, limit=10,
        ),
        200, models.AgentPage,
    )
    assert [found.id for found in page.agents] == [agent.id], page
    print(f"discovered {agent.id}")

    job = expect(
        create_job.sync_detailed(
            client=as_client, idempotency_key=f"generated-{uuid.uuid4()}",
            body=models.CreateJob(agent_id=agent.id, input_={"text": "Hallo Welt", "to": "en"}, price="2.50"),
        ),
        201, models.Job,
    )
    assert (job.status, job.price) == (models.JobStatus.PENDING, "2.5"), job
    accepted = expect(accept_job.sync_detailed(job.id, client=as_agent), 200, models.Job)
    assert accepted.status == models.JobStatus.ACCEPTED, accepted
    expect(
        complete_job.sync_detailed(job.id, client=as_agent, body=models.CompleteJob(result={"text": "Hello world"})),
        200, models.Job,
    )
    done = expect(get_job.sync_detailed(job.id, client=as_client), 200, models.Job)
    assert done.status == models.JobStatus.COMPLETED, done
    assert done.result == {"text": "Hello world"} and done.input_ == {"text": "Hallo Welt", "to": "en"}, done
    print(f"job completed: {done.id}")

    expect(
        rate_job.sync_detailed(job.id, client=as_client, body=models.RateJob(score=5, comment="Fast")),
        201, models.JobRating,
    )
    ratings = expect(list_ratings.sync_detailed(agent.id, client=public), 200, models.RatingPage)
    assert [rating.score for rating in ratings.ratings] == [5], ratings
    print("rated 5")


if __name__ == "__main__":
    run(sys.argv[1])
