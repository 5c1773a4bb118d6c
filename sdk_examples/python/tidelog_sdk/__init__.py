"""Tidelog's example Python client: `Tidelog(TidelogConfig(host, api_key, storage_dir))`."""

from .client import Tidelog
from .config import TidelogConfig

__all__ = ["Tidelog", "TidelogConfig"]
