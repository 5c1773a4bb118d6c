"""The read side: the query API and dashboard pages. Reads read models and, for raw listings,
the event store; never imports the command side.
"""
