"""The query API compresses its JSON for a client that accepts gzip (and only then): the same
answer, several times smaller."""

import gzip
import json

import pytest

from tests.integration.test_query_api import get, seed

pytestmark = pytest.mark.django_db


def test_a_client_accepting_gzip_gets_the_same_answer_compressed(client, project):
    seed(project.project_id, users=tuple(f"u{n}" for n in range(40)), hours=tuple(range(24)))
    window = {"interval": "hour", "after": "2000-01-01T00:00:00Z", "before": "2100-01-01T00:00:00Z"}
    plain = get(client, "event-aggregates/", project.personal_api_key, **window)
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    zipped = client.get(
        "/api/v1/analytics/admin/event-aggregates/", window,
        HTTP_AUTHORIZATION=f"Bearer {project.personal_api_key}", HTTP_ACCEPT_ENCODING="gzip, deflate",
    )  # fmt: skip
    assert zipped.status_code == 200 and zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"]
    assert json.loads(gzip.decompress(zipped.content)) == plain.json()
    assert len(zipped.content) * 3 < len(plain.content)
