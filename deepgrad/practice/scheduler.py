"""Spaced repetition with FSRS (the ``fsrs`` package), rated by the judge.

The judge's result sets the rating, so nothing is self-reported: a pass at the first attempt
without hints is *Good*, a pass after hints or failed attempts is *Hard*, a failure is *Again*.
Fuzzing is off: the same history always gives the same schedule.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
>>> card, due = review(None, rating_for(passed=True, hints=0, failed_before=0), now)
>>> due - now   # a clean first pass on a new card: due again after FSRS's first learning step, 10 minutes
datetime.timedelta(seconds=600)
"""

from __future__ import annotations

from datetime import UTC, datetime

from fsrs import Card, Rating, Scheduler

_SCHEDULER = Scheduler(enable_fuzzing=False)


def rating_for(passed: bool, hints: int, failed_before: int) -> Rating:
    """Good for a clean first-try pass, Hard for a pass after hints or failures, Again for a fail."""
    if not passed:
        return Rating.Again
    return Rating.Good if hints == 0 and failed_before == 0 else Rating.Hard


def review(card_json: str | None, rating: Rating, now: datetime) -> tuple[str, datetime]:
    """One review of an item's card (a new card when ``card_json`` is None): the new card and its due time."""
    card = Card() if card_json is None else Card.from_json(card_json)
    if card_json is None:
        card.due = now  # a new card is due the moment it is first seen
    card, _ = _SCHEDULER.review_card(card, rating, review_datetime=_aware(now))
    return card.to_json(), card.due


def retrievability(card_json: str | None, now: datetime) -> float:
    """The probability of recalling the item now (0 for an item never reviewed)."""
    if card_json is None:
        return 0.0
    return float(_SCHEDULER.get_card_retrievability(Card.from_json(card_json), _aware(now)))


def due_of(card_json: str) -> datetime:
    return Card.from_json(card_json).due


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)
