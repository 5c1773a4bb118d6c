"""Sessions' pure rules: what a session is, the explicit sessions' commutative fold and the
inferred sessions' walk (30-minute gap, 24-hour cap) with its incremental step. No Django, no
I/O: projections/sessions.py reads and writes, and hands the rules plain tuples.
"""
