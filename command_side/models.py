"""Tables the command side owns besides the event store (which is raw SQL, migrations 0001/0002).

`FlagRow` is the current state of each flag aggregate, kept by the flag service beside the
aggregate's events (which stay the truth; `manage.py flags sync --all` heals the rows from them). It is
what lists, the Django admin and the evaluators' cache read. `Experiment` is plain state: an
experiment is a view over a flag's exposures, with nothing to audit beyond its definition.
Both are declared for the other sides in contracts.schema (FLAG_DEFINITIONS, EXPERIMENTS).
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models

from tenancy.models import Project


class FlagRow(models.Model):
    aggregate_id = models.UUIDField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    key = models.TextField()
    name = models.TextField(default="")
    description = models.TextField(default="")
    version = models.BigIntegerField()
    definition = models.JSONField()
    """flags.definition.FlagDefinition as JSON: what the evaluator runs."""
    enabled = models.BooleanField()
    archived = models.BooleanField(default=False)
    created_by = models.TextField(default="")
    created_at = models.DateTimeField()
    updated_by = models.TextField(default="")
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "tidelog_flag_definitions"
        verbose_name = "feature flag"
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="tidelog_flag_key_per_project")]
        ordering = ["project_id", "key"]

    def __str__(self) -> str:
        return self.key


class Experiment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    key = models.TextField()
    name = models.TextField(default="")
    description = models.TextField(default="")
    flag_key = models.TextField()
    control = models.TextField()
    tests = ArrayField(models.TextField())
    goal_event = models.TextField()
    goal_filter = models.JSONField(null=True, blank=True)
    """One flags.definition.PropertyFilter as JSON, on the goal event's properties; or null."""
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True)
    archived = models.BooleanField(default=False)
    created_by = models.TextField(default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "tidelog_experiments"
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="tidelog_experiment_key_per_project")]
        ordering = ["project_id", "id"]

    def __str__(self) -> str:
        return self.key


class ErasureLog(models.Model):
    """One person's erasure (projections/erasure.py): who, when, which project and person, and
    how much went. Never a distinct_id nor anything of the events: this row outlives them."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    erased_at = models.DateTimeField()
    erased_by = models.TextField()
    """`user:<username>` (the API) or `cli:<OS user>` (manage.py erase_person)."""
    via = models.TextField()
    """'api' or 'command'."""
    person_id = models.UUIDField(null=True, blank=True)
    """The people read model's person when the ids were exactly one person's; else null."""
    person_count = models.IntegerField(default=0)
    """How many persons of the people read model the ids belonged to (0: ids it never saw)."""
    distinct_id_count = models.IntegerField()
    event_count = models.BigIntegerField()
    bad_event_count = models.BigIntegerField()
    read_model_row_count = models.BigIntegerField()
    """Read-model rows deleted or changed (a counter lowered), over every projection."""

    class Meta:
        db_table = "tidelog_erasures"
        verbose_name = "erasure"
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"], name="tidelog_erasures_project")]

    def __str__(self) -> str:
        return f"erasure {self.pk} in project {self.project_id}"
