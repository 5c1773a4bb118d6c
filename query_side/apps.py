from django.apps import AppConfig


class QuerySideConfig(AppConfig):
    name = "query_side"
    verbose_name = "Query API"
