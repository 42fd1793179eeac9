"""Configuration: the suite's settings read once from pyproject.toml and the command line,
validated, frozen; and the files `perfsuite init` writes.
"""
