"""Schemathesis hooks for the OpenAPI fuzz test: keep every connection a fuzzed request can make on loopback.

A source body names hosts, URLs and S3 endpoints; the server would connect to whatever the fuzzer made up. Before
each call, those are pinned to a closed port on 127.0.0.1 (refused at once), keeping the value's kind, so the body
stays one the schema allows.
"""

import re

import schemathesis

CLOSED = "127.0.0.1:9"
# The fields of a source body (SourceBody in the spec); a dict with `kind` and only these is one.
SOURCE_FIELDS = {
    "name", "kind", "description", "host", "port", "database", "user", "password", "path", "location", "format",
    "delimiter", "header", "csv", "region", "endpoint", "url_style", "use_ssl", "key_id", "secret_access_key", "dsn",
    "read_only",
}
NETWORK_SCHEMES = re.compile(r"^(postgres|postgresql|mysql|mariadb|https?|s3)://", re.IGNORECASE)


def _pin_dsn(value):
    match = NETWORK_SCHEMES.match(value)
    if not match:
        return value
    scheme = match.group(1)
    if scheme.lower() == "s3":
        return "s3://fuzz/data.csv"
    if scheme.lower().startswith("http"):
        return f"http://{CLOSED}/data.csv"
    return f"{scheme}://fuzz:fuzz@{CLOSED}/fuzz"


def _pin(value):
    if isinstance(value, list):
        return [_pin(v) for v in value]
    if not isinstance(value, dict):
        return value
    pinned = {k: _pin(v) for k, v in value.items()}
    # The agent's model settings: its server is a closed port here, never what the fuzzer made up.
    if isinstance(pinned.get("base_url"), str):
        pinned["base_url"] = f"http://{CLOSED}/v1"
    if "kind" in pinned and set(pinned) <= SOURCE_FIELDS:
        # PostgreSQL and MySQL default to 127.0.0.1 and their usual port, where a test service may listen.
        pinned["host"] = "127.0.0.1"
        pinned["port"] = 9
        # S3 reads go to this endpoint, never AWS.
        pinned["endpoint"] = CLOSED
        pinned["use_ssl"] = False
        for key in ("dsn", "location"):
            if isinstance(pinned.get(key), str):
                pinned[key] = _pin_dsn(pinned[key])
    return pinned


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, (dict, list)):
        case.body = _pin(case.body)
    # A model's default server is a public one: the settings always name the closed port instead.
    # Nor does it unconfigure the model, so questions stay answerable.
    if case.operation.path.endswith("/eval/runs") and isinstance(case.body, dict) and "provider" in case.body:
        case.body["base_url"] = f"http://{CLOSED}/v1"
    if case.operation.path.endswith("/settings/llm") and isinstance(case.body, dict):
        case.body["base_url"] = f"http://{CLOSED}/v1"
        if case.body.get("provider") == "none":
            case.body["provider"] = "scripted"
