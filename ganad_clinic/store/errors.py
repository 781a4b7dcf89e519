"""Errors the store raises; their messages are written for the person reading them."""

from __future__ import annotations


class StoreError(Exception):
    """The results database cannot do what was asked; the message says why and what to do."""


class AppendOnlyError(StoreError):
    """An attempt to change or delete a row of an append-only table (scores, reviews, audit)."""
