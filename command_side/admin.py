"""The Django admin's feature flags and experiments (on the query host's /admin/).

Flags are shown from their rows and edited through the same service as the API
(command_side/flags/service.py): a change becomes the aggregate's events, recorded as
`user:<username>`, and a stale form (someone saved since it was opened) is refused with the
current version. "History" lists the aggregate's events: who, what, when. The erasure log is
read-only: erasures are made by `manage.py erase_person` or the API, and their log never edited.
"""

import json
from typing import Any

import msgspec
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from command_side.experiments_api import experiment_check
from command_side.flags import service
from command_side.flags.api import BodyError
from command_side.models import ErasureLog, Experiment, FlagRow
from flags.definition import DefinitionError


def _json_field(label: str, help_text: str) -> forms.JSONField:
    return forms.JSONField(label=label, required=False, help_text=help_text, widget=forms.Textarea(attrs={"rows": 6}))


class FlagForm(forms.ModelForm):  # type: ignore[type-arg]
    """Edits the definition's parts; `version` is the one the form was opened at."""

    flag_key = forms.CharField(label="Key", required=False, help_text="Letters, digits, '_', '.', '-'. Never changes.")
    rollout_percentage = forms.FloatField(min_value=0, max_value=100, initial=100)
    variants = _json_field("Variants", 'e.g. [{"key": "control", "rollout_percentage": 50}, …]; empty: a boolean flag')
    conditions = _json_field("Release conditions", 'e.g. [{"properties": [{"key": "plan", "value": "pro"}]}]')
    overrides = _json_field("Overrides", 'distinct_id -> variant or true/false, e.g. {"qa-1": "test"}')
    payload = _json_field("Payload", "JSON returned with a boolean flag when it is on")
    opened_at_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = FlagRow
        fields = ["project", "name", "description", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = self.fields["description"].required = False
        row = self.instance
        if row.pk:
            definition = row.definition
            self.fields["project"].disabled = True
            self.fields["flag_key"].disabled = True
            self.initial.update(
                flag_key=row.key,
                rollout_percentage=definition.get("rollout_percentage", 100),
                variants=definition.get("variants", []),
                conditions=definition.get("conditions", []),
                overrides=definition.get("overrides", {}),
                payload=definition.get("payload"),
                opened_at_version=row.version,
            )

    def _fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data.get("name") or "",
            "description": data.get("description") or "",
            "rollout_percentage": data.get("rollout_percentage"),
            "variants": data.get("variants") or [],
            "conditions": data.get("conditions") or [],
            "overrides": data.get("overrides") or {},
            "payload": data.get("payload"),
            "enabled": bool(data.get("enabled")),
        }

    def clean(self) -> dict[str, Any]:
        """Saves through the service here, where its refusals can become form errors."""
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        actor = f"user:{self.actor}"
        try:
            if self.instance.pk:
                patch = msgspec.convert({**self._fields(), "version": cleaned.get("opened_at_version")},
                                        service.FlagPatch)  # fmt: skip
                self.saved = service.flag_update(
                    project_id=self.instance.project_id, key=self.instance.key, patch=patch, actor=actor
                )
            else:
                fields = msgspec.convert({**self._fields(), "key": cleaned.get("flag_key") or ""}, service.FlagCreate)
                self.saved = service.flag_create(project_id=cleaned["project"].pk, fields=fields, actor=actor)
        except msgspec.ValidationError as exc:
            raise ValidationError(str(exc)) from exc
        except DefinitionError as exc:
            raise ValidationError(f"{exc.field}: {exc.message}") from exc
        except (service.StaleVersion, service.FlagKeyTaken, service.FlagArchived, service.FlagNotFound) as exc:
            raise ValidationError(str(exc)) from exc
        return cleaned

    actor = ""
    saved: Any = None


@admin.register(FlagRow)
class FlagAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = FlagForm
    list_display = ["key", "project", "enabled", "archived", "version", "updated_by", "updated_at"]
    list_filter = ["enabled", "archived"]
    search_fields = ["key", "name"]
    readonly_fields = ["version", "created_by", "created_at", "updated_by", "updated_at"]
    actions = ["archive"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        # The form saves through the service, which records who: this request's user.
        return type(form.__name__, (form,), {"actor": request.user.get_username()})

    def save_model(self, request: HttpRequest, obj: FlagRow, form: Any, change: bool) -> None:
        # Saved by the form's clean(), through the service; the row is the service's to write.
        row = FlagRow.objects.get(aggregate_id=form.saved.id)
        obj.pk, obj.version = row.pk, row.version

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # flags are archived (the "archive" action), never deleted: their history stays

    @admin.action(description="Archive the selected flags")
    def archive(self, request: HttpRequest, queryset: Any) -> None:
        for row in queryset:
            service.flag_archive(project_id=row.project_id, key=row.key, version=None,
                                 actor=f"user:{request.user.get_username()}")  # fmt: skip
        self.message_user(request, f"Archived {len(queryset)} flag(s).")

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        row = self.get_object(request, object_id)
        if row is None:
            raise Http404(f"no feature flag {object_id}")
        entries = service.flag_history(project_id=row.project_id, key=row.key)
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of {row.key}",
            "opts": self.opts,
            "object": row,
            "entries": [
                {"version": e.version, "event": e.event, "actor": e.actor, "at": e.at,
                 "changes": json.dumps(e.changes, default=str, sort_keys=True)}
                for e in entries
            ],
        }  # fmt: skip
        return TemplateResponse(request, "admin/command_side/flagrow/history.html", context)


class ExperimentForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Experiment
        fields = ["project", "key", "name", "description", "flag_key", "control", "tests", "goal_event",
                  "goal_filter", "start_at", "end_at", "archived"]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("name", "description", "goal_filter"):
            self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        """The API's rules (experiments_api.experiment_check), on the instance the form built."""
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = Experiment(**{name: cleaned.get(name) for name in self.Meta.fields if name != "project"},
                               project_id=cleaned["project"].pk)  # fmt: skip
        try:
            experiment_check(candidate)
        except BodyError as exc:
            raise ValidationError(f"{exc.field}: {exc.detail}") from exc
        return cleaned


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ExperimentForm
    list_display = ["key", "project", "flag_key", "control", "goal_event", "start_at", "end_at", "archived"]
    list_filter = ["archived"]
    search_fields = ["key", "flag_key"]
    readonly_fields = ["created_by", "created_at", "updated_at"]


@admin.register(ErasureLog)
class ErasureLogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("id", "project_id", "erased_at", "erased_by", "via", "person_id", "event_count")
    list_filter = ("via",)
    search_fields = ("=person_id", "erased_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an erasure is made by erase_person or the API, which erase and log at once

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record that a person was erased outlives them
