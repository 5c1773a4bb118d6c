from django.apps import AppConfig


class CommandSideConfig(AppConfig):
    name = "command_side"
    verbose_name = "Ingestion"
