"""The headless screening service: watch inbox folders, ingest complete files, score them with the
active model, persist every result. Nothing here knows about a GUI; the GUI embeds the service."""

from __future__ import annotations

from ganad_clinic.screening.events import Outcome, SlideRejected, SlideScored
from ganad_clinic.screening.service import ScreeningService, ServiceConfig

__all__ = ["Outcome", "ScreeningService", "ServiceConfig", "SlideRejected", "SlideScored"]
