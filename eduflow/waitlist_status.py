"""The statuses of a waitlist entry, importable without the data layer (the CLI's choices)."""

from __future__ import annotations

from enum import StrEnum


class WaitlistStatus(StrEnum):
    """waiting -> offered -> accepted | declined | expired; waiting or offered -> left."""

    waiting = "waiting"
    offered = "offered"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    left = "left"
