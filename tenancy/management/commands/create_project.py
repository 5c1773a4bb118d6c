"""`manage.py create_project NAME [--json]`: a project with its public and personal keys."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenancy.services import project_create


class Command(BaseCommand):
    help = "Create a project; print its id, public API key (for SDKs) and personal API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        issued = project_create(name=options["name"])
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "project_id": issued.project_id,
                        "api_key": issued.api_key,
                        "personal_api_key": issued.personal_api_key,
                    }
                )
            )
            return
        self.stdout.write(f"project_id        {issued.project_id}")
        self.stdout.write(f"api_key           {issued.api_key}   (public: put it in the SDK)")
        self.stdout.write(f"personal_api_key  {issued.personal_api_key}   (secret: shown once, for the query API)")
