"""Entry module of the Dramatiq worker process: `dramatiq command_side.worker`.

Sets Django up before the actors module builds its broker from settings.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()

from command_side.actors import *  # noqa: E402, F403
