"""Django app of the query side: it owns no models and no tables of its own."""

from django.apps import AppConfig


class QuerySideConfig(AppConfig):
    name = "query_side"
    verbose_name = "Query API"
