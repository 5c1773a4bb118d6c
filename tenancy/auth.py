"""Authentication of the DRF APIs (the query API, and the flag and experiment administration on
the command host): a personal API key (`Authorization: Bearer tls_…`), or a logged-in staff
user who names the project with `?project_id=` (tenancy/access.py binds the request to it).

Whoever it is, a request is bound to exactly one project (`request.project_id`); selectors take
that id and nothing else, so one project's key can never read another's data.
"""

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from contracts.errors import ErrorCode
from tenancy.models import PROJECT_KEY_PREFIX, PersonalAPIKey
from tenancy.selectors import personal_api_key_find


class WrongKeyKind(exceptions.AuthenticationFailed):
    """A project's public key (`tlp_…`) sent to the query API, which reads with personal keys."""

    default_code = ErrorCode.WRONG_KEY_KIND


class KeyUser:
    """The `request.user` of a personal-key request: authenticated, bound to one project."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_anonymous = False

    def __init__(self, key: PersonalAPIKey) -> None:
        self.key = key
        self.project_id = key.project_id

    def __str__(self) -> str:
        return f"personal API key {self.key.prefix}…"


class PersonalAPIKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        # Auth schemes are case-insensitive (RFC 9110 §11.1): some HTTP clients send 'bearer'.
        if scheme.lower() != self.keyword.lower() or not secret.strip():
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <personal_api_key>'.")
        key = personal_api_key_find(secret.strip())
        if key is None and secret.strip().startswith(PROJECT_KEY_PREFIX):
            raise WrongKeyKind(
                f"This is a project's public API key ({PROJECT_KEY_PREFIX}…), which only sends events;"
                " the query API reads with a personal API key."
            )
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked personal API key.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            # Written at most once a minute per key: a busy dashboard must not write per read.
            PersonalAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return KeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

