"""This repository's suite configuration lives in pyproject.toml ([tool.perfsuite]).

The perfsuite pytest plugin is loaded through its `pytest11` entry point; nothing else is needed here.
"""
