#!/usr/bin/env python3
"""Fails when the services rejected data that the OpenAPI document allows.

Reads the VCR cassette of a schemathesis run (scripts/fuzz-api.sh) and lists every case generated
as *valid* (mode `positive`: it meets the document's types and constraints) that the gateway
answered 422, the status of a validation error. The document states the protos' validation rules
(buf.validate), so such a case means the two disagree.

Why not schemathesis' own "Schema validation mismatch" warning: it counts every 400 as a
rejection, and the contract's 400 is a business rule (a pet on a destination that takes none),
which random but valid data meets now and then; the warning then comes and goes with the seed.

    fuzz_positive_check.py CASSETTE.yaml
"""
import sys

import yaml

SHOWN = 10


def main(path: str) -> int:
    with open(path, encoding="utf-8") as file:
        cassette = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    interactions = cassette.get("http_interactions") or []
    positive = rejected = 0
    examples = []
    for interaction in interactions:
        generation = interaction.get("generation") or {}
        response = interaction.get("response")
        if generation.get("mode") != "positive" or not response:
            continue
        positive += 1
        if str(response["status"]["code"]) != "422":
            continue
        rejected += 1
        if len(examples) < SHOWN:
            request = interaction["request"]
            examples.append(
                f"  {request['method']} {request['uri']}\n"
                f"    body: {(request.get('body') or {}).get('string', '')!r}\n"
                f"    answer: {(response.get('body') or {}).get('string', '')!r}"
            )
    if not interactions:
        print(f"fuzz-api: {path} holds no interactions", file=sys.stderr)
        return 1
    if rejected:
        print(
            f"fuzz-api: {rejected} of {positive} cases the OpenAPI document allows were answered 422 "
            "(the document's constraints and the services' validation disagree):",
            file=sys.stderr,
        )
        print("\n".join(examples), file=sys.stderr)
        return 1
    print(f"fuzz-api: all {positive} cases the OpenAPI document allows passed validation")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
