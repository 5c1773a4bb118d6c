"""The write side: ingestion API, project-key authentication, the Redis buffer, and the Dramatiq
actors that append buffered events to the event store. It never imports the query side.
"""
