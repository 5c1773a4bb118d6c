"""People: which distinct_ids are one person (identity merges) and a person's properties
($set, $set_once, $unset). Pure rules, no I/O: projections/people.py stores what they decide.
"""
