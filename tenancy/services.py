"""Writes of the tenancy context: creating projects and issuing keys."""

from dataclasses import dataclass

from django.db import transaction

from tenancy.models import PersonalAPIKey, Project, hash_secret, new_personal_api_key


@dataclass(frozen=True)
class IssuedProject:
    project_id: int
    api_key: str
    personal_api_key: str


def personal_api_key_issue(*, project: Project, label: str = "") -> str:
    """Create a personal API key and return its secret, which is shown this once only."""
    secret = new_personal_api_key()
    PersonalAPIKey.objects.create(project=project, label=label, secret_hash=hash_secret(secret), prefix=secret[:10])
    return secret


@transaction.atomic
def project_create(*, name: str) -> IssuedProject:
    project = Project.objects.create(name=name)
    secret = personal_api_key_issue(project=project, label="created with the project")
    return IssuedProject(project_id=project.pk, api_key=project.api_key, personal_api_key=secret)
