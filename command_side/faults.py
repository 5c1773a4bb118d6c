"""Crash-test hooks: with TIDELOG_FAULT=<name> set, the process dies at that point, as a kill -9
would. Only the crash tests set it; unset, a hook is one attribute lookup.
"""

import os

from django.conf import settings


def fault_point(name: str) -> None:
    if settings.TIDELOG_FAULT == name:
        os._exit(17)
