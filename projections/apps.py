from django.apps import AppConfig


class ProjectionsConfig(AppConfig):
    name = "projections"
    verbose_name = "Projections"

    def ready(self) -> None:
        # The probes (observability, which imports nothing of ours) count the lag of every
        # registered projection, one that has never run included.
        from observability import health
        from projections.registry import PROJECTIONS

        health.register_projections(PROJECTIONS)
