"""The summary of a slide that the review queue, the reports and the sign-off gate read: kept apart
from the repository so that the specimen rules can use it without importing the repository."""

from __future__ import annotations

from dataclasses import dataclass

from ganad_clinic.store.models import Review, Score, Slide


@dataclass(frozen=True)
class SlideSummary:
    """A slide with its current score and current review, as reports and the review queue show it.

    For a duplicate, `score` is the latest score of the slide it duplicates.
    """

    slide: Slide
    score: Score | None
    review: Review | None
    last_review_id: int = 0  # the slide's latest review row, a withdrawal too: it only grows, unlike `review`
    cells: int = 0  # the current score's cells (tiles); 0 when not scored
    flagged_cells: int = 0  # of those, the flagged ones
    replaced_by_id: int | None = None  # a later slide from the same path (the file replaced), the first of them
    accession: str | None = None  # its specimen's
    signed_reviews_up_to: int | None = None  # its specimen's latest signature covers the reviews up to this id

    @property
    def is_amendment(self) -> bool:
        """Its current review came after its specimen was signed off: an amendment, to sign again."""
        return (self.review is not None and self.signed_reviews_up_to is not None
                and self.review.id > self.signed_reviews_up_to)
