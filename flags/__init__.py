"""Feature flags' pure rules: definitions, PostHog's bucketing, property matching, evaluation
and experiment statistics. No Django, no I/O: the command host (evaluation), the projections
(goal filters) and the query host (experiment results) all import it.
"""
