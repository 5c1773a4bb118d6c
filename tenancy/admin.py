from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tenancy.models import PersonalAPIKey, Project
from tenancy.services import personal_api_key_issue

# "View site" opens the dashboard (query_side/dashboard); a project's "View on site" its overview.
admin.site.site_url = "/"
ANALYTICS_URL = "/overview/?project_id={}"


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "api_key", "created_at"]
    readonly_fields = ["api_key", "created_at"]
    search_fields = ["name"]
    # Staff users who are not superusers read only the projects they are members of.
    filter_horizontal = ["members"]
    actions = ["issue_personal_api_key"]

    def view_on_site(self, obj: Project) -> str:
        # The dashboard's overview of this project, read with the staff user's session.
        return ANALYTICS_URL.format(obj.pk)

    @admin.action(description="Issue a personal API key (shown once)")
    def issue_personal_api_key(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        for project in queryset:
            secret = personal_api_key_issue(project=project, label=f"issued by {request.user}")
            self.message_user(request, f"Personal API key for {project}: {secret} (copy it now)", messages.WARNING)


@admin.register(PersonalAPIKey)
class PersonalAPIKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "project", "label", "created_at", "last_used_at", "is_revoked"]
    list_filter = ["is_revoked"]
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at"]
    fields = [
        "project",
        "label",
        "prefix",
        "secret_hash",
        "created_at",
        "last_used_at",
        "is_revoked",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Keys are issued with the action on a project, which shows the secret once.
        return False
