"""The human gate on promotion: N reviewed items and a minimum mimicry rate (off by default).

With ``TONEFLOW_PROMOTE_MIN_REVIEWS`` > 0, ``trainer.registry.promote`` refuses a candidate until
reviewers have rated that many of its items in the console's blind review (``toneflow ui``, page
Review) and the share of ratings saying "the student matches the teacher" is at least
``TONEFLOW_PROMOTE_MIN_MIMICRY``. ``--force`` skips it, as it skips the offline gate (the online
gate in serving/rollout.py promotes with force: its evidence is live traffic).
"""

from __future__ import annotations

from foundation.settings import Settings
from trainer.exceptions import GateRejected, TrainerError


class ReviewsRequired(GateRejected):
    """The candidate lacks the reviews, or the mimicry rate, that promotion requires."""

    def __init__(self, message: str) -> None:  # noqa: D107 - the numbers are in the message
        TrainerError.__init__(self, message)


def check_reviews(settings: Settings, version: str) -> None:
    """Raise ReviewsRequired unless ``version`` meets the review settings (no-op when they are off)."""
    need = settings.promote_min_reviews
    if need <= 0:
        return
    from warehouse.reviews import version_review_stats

    stats = version_review_stats(settings, version)
    if stats.items < need:
        msg = (f"not promoting {version}: {stats.items} of its items reviewed, TONEFLOW_PROMOTE_MIN_REVIEWS asks for "
               f"{need}; review it in `toneflow ui` (page Review) or use --force")
        raise ReviewsRequired(msg)
    mimicry = stats.mimicry or 0.0
    if mimicry < settings.promote_min_mimicry:
        msg = (f"not promoting {version}: reviewers say the student matches the teacher in {mimicry:.0%} of "
               f"{stats.ratings} ratings, TONEFLOW_PROMOTE_MIN_MIMICRY asks for {settings.promote_min_mimicry:.0%}; "
               "train a better student or use --force")
        raise ReviewsRequired(msg)
