"""A project owns its events; a public API key writes them, personal API keys read them."""

import hashlib
import secrets

from django.conf import settings
from django.db import models

PROJECT_KEY_PREFIX = "tlp_"
PERSONAL_KEY_PREFIX = "tls_"
# The api_key column's length: no longer string can be a project key.
API_KEY_MAX_LENGTH = 64


def new_project_api_key() -> str:
    return PROJECT_KEY_PREFIX + secrets.token_urlsafe(24)


def new_personal_api_key() -> str:
    return PERSONAL_KEY_PREFIX + secrets.token_urlsafe(30)


def hash_secret(value: str) -> str:
    # A personal key is a bearer secret: only its SHA-256 is stored, so a database dump leaks
    # no usable key. (It has 240 bits of entropy, so a fast hash is the right one.)
    return hashlib.sha256(value.encode()).hexdigest()


class Project(models.Model):
    name = models.CharField(max_length=200)
    # Public and write-only: it ships inside mobile apps, so it is stored as is.
    api_key = models.CharField(max_length=API_KEY_MAX_LENGTH, unique=True, default=new_project_api_key)
    created_at = models.DateTimeField(auto_now_add=True)
    # The staff users who may read this project with their login (the dashboard, the query API
    # through a session); superusers read every project. Personal API keys are bound to theirs.
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="projects")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.pk})"


class PersonalAPIKey(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="personal_api_keys")
    label = models.CharField(max_length=200, blank=True, default="")
    secret_hash = models.CharField(max_length=64, unique=True)
    # The first characters, shown in the admin so a person can tell keys apart.
    prefix = models.CharField(max_length=12)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    is_revoked = models.BooleanField(default=False)

    class Meta:
        verbose_name = "personal API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.label or 'no label'})"
