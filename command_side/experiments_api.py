"""Experiments, administered on the command host beside the flags they test:

    GET    admin/experiments/           list (?archived=true|false|all)
    POST   admin/experiments/           create
    GET    admin/experiments/{key}/     detail
    PATCH  admin/experiments/{key}/     edit (name, description, goal, window, variants)
    DELETE admin/experiments/{key}/     archive

An experiment names a flag, its control variant and test variants, a goal (an event, optionally
with one property filter on it) and a window (start, optional end). For a boolean flag the
variants are "true" and "false". Results are read on the query host
(GET admin/experiments/{key}/results/), from the exposure and conversion read models.
"""

from datetime import UTC, datetime
from typing import Any

import msgspec
from django.db import IntegrityError, transaction
from msgspec import UNSET, UnsetType
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from command_side.flags.api import BodyError, Conflict, actor_of, decode
from command_side.models import Experiment, FlagRow
from command_side.openapi import EXPERIMENT, admin_operation, archived_filter
from contracts.errors import ErrorCode
from flags.definition import KEY_PATTERN, FlagDefinition, PropertyFilter
from flags.matching import check_filter
from tenancy.access import project_for
from tenancy.api_errors import InvalidParameter
from tenancy.openapi import page_of


class ExperimentFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    control: str | UnsetType = UNSET
    tests: list[str] | UnsetType = UNSET
    goal_event: str | UnsetType = UNSET
    goal_filter: PropertyFilter | UnsetType | None = UNSET
    start_at: datetime | UnsetType = UNSET
    end_at: datetime | UnsetType | None = UNSET


class ExperimentCreate(ExperimentFields, kw_only=True, forbid_unknown_fields=True):
    key: str
    flag_key: str
    control: str | UnsetType = "control"
    tests: list[str] | UnsetType = msgspec.field(default_factory=lambda: ["test"])


def _flag_variants(project_id: int, flag_key: str) -> tuple[str, ...]:
    row = FlagRow.objects.filter(project_id=project_id, key=flag_key).first()
    if row is None:
        raise BodyError(ErrorCode.INVALID_VALUE, "flag_key", f"no feature flag {flag_key!r} in this project")
    definition = msgspec.convert(row.definition, FlagDefinition)
    return tuple(v.key for v in definition.variants) or ("true", "false")


def experiment_check(experiment: Experiment) -> None:
    """The whole experiment's rules, field by field, before it is saved."""
    if not KEY_PATTERN.match(experiment.key):
        raise BodyError(ErrorCode.INVALID_VALUE, "key", "a key is 1 to 200 letters, digits, '_', '.' or '-'")
    variants = _flag_variants(experiment.project_id, experiment.flag_key)
    if experiment.control not in variants:
        raise BodyError(ErrorCode.INVALID_VALUE, "control", f"the flag's variants are {', '.join(variants)}")
    if not experiment.tests:
        raise BodyError(ErrorCode.EMPTY_VALUE, "tests", "name at least one test variant")
    for i, test in enumerate(experiment.tests):
        if test not in variants:
            raise BodyError(ErrorCode.INVALID_VALUE, f"tests.{i}", f"the flag's variants are {', '.join(variants)}")
        if test == experiment.control or experiment.tests.index(test) != i:
            raise BodyError(ErrorCode.INVALID_VALUE, f"tests.{i}", f"variant {test!r} is named twice")
    if not experiment.goal_event.strip():
        raise BodyError(ErrorCode.EMPTY_VALUE, "goal_event", "name the conversion event")
    if experiment.goal_filter is not None:
        problem = check_filter(msgspec.convert(experiment.goal_filter, PropertyFilter))
        if problem is not None:
            raise BodyError(ErrorCode.INVALID_VALUE, f"goal_filter.{problem[0]}", problem[1])
    if experiment.start_at.tzinfo is None or (experiment.end_at is not None and experiment.end_at.tzinfo is None):
        raise BodyError(ErrorCode.INVALID_TIMESTAMP, "start_at", "times carry their UTC offset")
    if experiment.end_at is not None and experiment.end_at <= experiment.start_at:
        raise BodyError(ErrorCode.INVALID_VALUE, "end_at", "end_at must be after start_at")


def _apply(experiment: Experiment, fields: ExperimentFields) -> None:
    for name in ("name", "description", "control", "tests", "goal_event", "start_at", "end_at"):
        value = getattr(fields, name)
        if value is not UNSET:
            setattr(experiment, name, value)
    if fields.goal_filter is not UNSET:
        experiment.goal_filter = msgspec.to_builtins(fields.goal_filter)


def experiment_body(experiment: Experiment) -> dict[str, Any]:
    return {
        "key": experiment.key, "name": experiment.name, "description": experiment.description,
        "flag_key": experiment.flag_key, "control": experiment.control, "tests": list(experiment.tests),
        "goal_event": experiment.goal_event, "goal_filter": experiment.goal_filter,
        "start_at": experiment.start_at, "end_at": experiment.end_at, "archived": experiment.archived,
        "created_by": experiment.created_by, "created_at": experiment.created_at,
        "updated_at": experiment.updated_at,
    }  # fmt: skip


def _get(project_id: int, key: str) -> Experiment:
    experiment = Experiment.objects.filter(project_id=project_id, key=key).first()
    if experiment is None:
        raise NotFound(f"no experiment {key!r} in this project")
    return experiment


class ExperimentListView(APIView):
    @admin_operation("List the experiments (one page: `next` is null)", page_of(EXPERIMENT), archived_filter())
    def get(self, request: Request) -> Response:
        project_id = project_for(request)
        archived = request.query_params.get("archived", "false")
        if archived not in ("true", "false", "all"):
            raise InvalidParameter("archived", "archived is true, false or all")
        rows = Experiment.objects.filter(project_id=project_id).order_by("key")
        if archived != "all":
            rows = rows.filter(archived=archived == "true")
        return Response({"results": [experiment_body(e) for e in rows], "next": None})

    @admin_operation(
        "Create an experiment", EXPERIMENT, body=ExperimentCreate, status=201, conflicts=(ErrorCode.DUPLICATE_KEY,)
    )
    def post(self, request: Request) -> Response:
        project_id = project_for(request)
        fields = decode(request, ExperimentCreate)
        experiment = Experiment(
            project_id=project_id, key=fields.key, flag_key=fields.flag_key, goal_event="",
            start_at=datetime.now(UTC), created_by=actor_of(request),
        )  # fmt: skip
        _apply(experiment, fields)
        experiment_check(experiment)
        try:
            with transaction.atomic():
                experiment.save()
        except IntegrityError:
            raise Conflict(ErrorCode.DUPLICATE_KEY, f"an experiment {fields.key!r} already exists", "key") from None
        return Response(experiment_body(experiment), status=status.HTTP_201_CREATED)


class ExperimentDetailView(APIView):
    @admin_operation("An experiment", EXPERIMENT)
    def get(self, request: Request, key: str) -> Response:
        return Response(experiment_body(_get(project_for(request), key)))

    @admin_operation("Edit an experiment", EXPERIMENT, body=ExperimentFields, conflicts=(ErrorCode.ARCHIVED,))
    def patch(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        found = _get(project_id, key)  # an unknown experiment is a 404 whatever the body
        fields = decode(request, ExperimentFields)
        with transaction.atomic():
            experiment = Experiment.objects.select_for_update().get(pk=found.pk)
            if experiment.archived:
                raise Conflict(ErrorCode.ARCHIVED, f"experiment {key!r} is archived and cannot change")
            _apply(experiment, fields)
            experiment_check(experiment)
            experiment.save()
        return Response(experiment_body(experiment))

    @admin_operation("Archive an experiment (its results keep its exposures)", EXPERIMENT)
    def delete(self, request: Request, key: str) -> Response:
        project_id = project_for(request)
        experiment = _get(project_id, key)
        if not experiment.archived:
            experiment.archived = True
            experiment.save(update_fields=["archived", "updated_at"])
        return Response(experiment_body(experiment))
