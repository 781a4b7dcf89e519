"""Errors the store raises; their messages are written for the person reading them."""

from __future__ import annotations

from ganad_clinic.errors import GanadError


class StoreError(GanadError):
    """The results database cannot do what was asked; the message says why and what to do."""


class AppendOnlyError(StoreError):
    """An attempt to change or delete a row of an append-only table (scores, reviews, audit)."""


class DatabaseLostError(StoreError):
    """The database the process opened is gone or was replaced (its file deleted or moved):
    nothing more can be saved. Not retryable: whoever gets it stops and says so."""


class SignOffRefused(StoreError):
    """A specimen cannot be signed off now (flags unreviewed, images unscored, nothing changed
    since its signature); the message names the images. Nothing was written."""


class ClaimLost(StoreError):
    """A station's claim on a slide lapsed and another station took it over: the other's result
    is the one kept, so this station's is not written (a slide is scored once)."""
