"""Experiments beside the product: recipes, paper-protocol runs, benchmarks and their results.

A package, so tests import its modules (`from training import tables`); each module is also a
script (`python training/run.py RECIPE`), which is why the few that use a sibling fall back to
importing it by its own name when run that way.
"""
