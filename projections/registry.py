"""Every projection by name. Adding one: write its module, list it here, add its migration."""

from projections.event_aggregates import EventAggregates
from projections.event_properties import EventProperties
from projections.event_timelines import EventTimelines
from projections.experiment_conversions import ExperimentConversions
from projections.flag_exposures import FlagExposures
from projections.people import People
from projections.projection import Projection
from projections.sessions import Sessions
from projections.user_activity import UserActivity

PROJECTIONS: dict[str, Projection] = {
    p.name: p
    for p in (
        EventAggregates(),
        UserActivity(),
        FlagExposures(),
        ExperimentConversions(),
        Sessions(),
        People(),
        EventProperties(),
        EventTimelines(),
    )
}


def projection_get(name: str) -> Projection:
    try:
        return PROJECTIONS[name]
    except KeyError:
        raise KeyError(f"no projection {name!r}; known: {', '.join(sorted(PROJECTIONS))}") from None
