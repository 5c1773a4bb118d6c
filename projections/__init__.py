"""Projection workers, their checkpoints and read-model tables; replay, rebuild and verify.

Imports nothing of ours but `contracts`: it reads the event store through SQL.
"""
