"""The baseline of loadtest/bench_flags.py: `for_user` as a plain Django app would serve it, one
ORM query for the project's flag definitions per request, then the same evaluation code.

Served by granian with the same workers as the command API (`granian --interface wsgi
loadtest.flags_orm_baseline:application`); not part of Tidelog.
"""

import os
from typing import Any
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings_command")
django.setup()

import msgspec  # noqa: E402

from command_side.models import FlagRow  # noqa: E402
from flags.definition import FlagDefinition  # noqa: E402
from flags.evaluate import compile_flag  # noqa: E402
from tenancy.selectors import project_id_for_api_key  # noqa: E402

_encode = msgspec.json.Encoder().encode


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    query = {name: values[-1] for name, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    key = environ.get("HTTP_AUTHORIZATION", "").partition(" ")[2]
    project_id = project_id_for_api_key(key)
    distinct_id = query["distinct_id"]
    properties = msgspec.json.decode(query.get("person_properties") or "{}")
    rows = FlagRow.objects.filter(project_id=project_id, archived=False).values_list("definition", flat=True)
    compiled = [compile_flag(msgspec.convert(definition, FlagDefinition)) for definition in rows]
    body = _encode({"distinct_id": distinct_id, "flags": {f.key: f.evaluate(distinct_id, properties) for f in compiled}})
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
