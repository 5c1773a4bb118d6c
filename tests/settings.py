"""Settings of the test suite: core.settings, with DEBUG off as in production, and a throwaway
secret key where none is set (core.settings refuses to run without one when DEBUG is off).

Set in the environment, not here, so the processes the tests start (crash tests) inherit it.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tidelog-test-suite-only-not-a-secret-0123456789abcdefghijklmnop")

from core.settings import *  # noqa: F403
