#!/usr/bin/env python3
"""Validate an A2A Agent Card (JSON on stdin) against the A2A v1.0 JSON Schema
(tests/a2a/a2a-v1.0.0-agent-card.schema.json) with the `jsonschema` package,
and check the fields the A2A proto marks REQUIRED, which the generated schema
cannot say. Prints nothing and exits 0 when valid; otherwise prints each
problem and exits 1.
"""

import json
import pathlib
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "a2a" / "a2a-v1.0.0-agent-card.schema.json"

# From specification/a2a.proto (v1.0.0): fields with field_behavior REQUIRED.
REQUIRED_CARD = ["name", "description", "supportedInterfaces", "version", "capabilities",
                 "defaultInputModes", "defaultOutputModes", "skills"]
REQUIRED_SKILL = ["id", "name", "description", "tags"]
REQUIRED_INTERFACE = ["url", "protocolBinding", "protocolVersion"]
REQUIRED_SIGNATURE = ["protected", "signature"]


def registry(definitions):
    """`$ref`s name proto messages; definitions are keyed by title (spaces in it)."""
    by_message = {title.replace(" ", ""): schema for title, schema in definitions.items()}

    def retrieve(uri):
        message = uri.removesuffix(".jsonschema.json").rsplit(".", 1)[-1]
        return Resource.from_contents(by_message[message])

    return Registry(retrieve=retrieve)


def problems(card):
    definitions = json.loads(SCHEMA.read_text())["definitions"]
    validator = Draft202012Validator(definitions["Agent Card"], registry=registry(definitions))
    found = [f"{'/'.join(map(str, error.absolute_path)) or '(card)'}: {error.message}"
             for error in validator.iter_errors(card)]
    missing = lambda where, thing, names: [f"{where}: {name} is required" for name in names if name not in thing]
    if isinstance(card, dict):
        found += missing("(card)", card, REQUIRED_CARD)
        for n, skill in enumerate(card.get("skills") or []):
            found += missing(f"skills/{n}", skill, REQUIRED_SKILL)
        for n, interface in enumerate(card.get("supportedInterfaces") or []):
            found += missing(f"supportedInterfaces/{n}", interface, REQUIRED_INTERFACE)
        for n, signature in enumerate(card.get("signatures") or []):
            found += missing(f"signatures/{n}", signature, REQUIRED_SIGNATURE)
    return found


if __name__ == "__main__":
    found = problems(json.load(sys.stdin))
    for problem in found:
        print(problem)
    sys.exit(1 if found else 0)
