"""Projects and their keys: the one identity both APIs authenticate against.

It imports nothing of the command or query side; both sides import it.
"""
