"""When an account's results can next change on their own: its next due day.

The rules read the run's time only as its UTC day (`Facts.today`), through time
windows. For an unchanged account, a finding, the coverage or a contact status can
only flip on a day where one of those windows opens or closes. `next_due` is the
earliest such day after `as_of`'s (None: never, until something is written);
sync/evaluate.py stores it and a later run evaluates the account again once its
day has come (state/dirty.py). Earlier is always safe (the account is evaluated
and found unchanged); later would miss a change, so each window below errs early.

Each rule's windows, as the rule reads them:

- engaged (rules/context.py; coverage, single-threaded, successors): activity within
  `engaged_days` -> flips the day after activity + engaged_days;
- stale contacts (rules/stale_contacts.py): activity or creation within the tier's
  window -> the day after activity/creation + window; an open stale finding carries
  its cutoff day in its evidence, which moves every day -> tomorrow;
- coverage recency (rules/coverage.py): the score falls day by day while the latest
  activity of an active contact is older than engaged_days and younger than the
  stale window -> tomorrow;
- roles that count (rules/context.py): a role on a won opportunity counts for
  `role_won_window_days` after its close -> the day after close + window;
- renewal (rules/context.py): an account renewal date counts from window days
  before it to its day; an open opportunity's close date from window days before to
  window days after it; which of them is nearest changes when one passes -> each
  of those edges;
- snoozes (rules/suppression.py): a snooze holds until its date -> that date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from crmsync.state.model import AccountView

from . import AccountResult, RuleSettings, stale_contacts, suppression
from .context import activity_day


def next_due(
    view: AccountView, settings: RuleSettings, as_of: datetime, result: AccountResult
) -> date | None:
    """The first day after `as_of`'s on which `result` could differ for the same view."""
    today = as_of.astimezone(UTC).date()
    tomorrow = today + timedelta(days=1)
    common = settings.common
    engaged, won, renewal = (
        common.engaged_days,
        common.role_won_window_days,
        common.renewal_window_days,
    )
    stale = stale_contacts.window_days(settings.stale_contact, result.tier)
    if any(f.rule == stale_contacts.NAME for f in result.flags):
        return tomorrow
    days: list[date] = []
    people = (*view.contacts, *view.former_contacts)
    for c in people:
        last = activity_day(c)
        if last is not None:
            days += [last + timedelta(days=engaged + 1), last + timedelta(days=stale + 1)]
        if c.created_at is not None:
            days.append(c.created_at.date() + timedelta(days=stale + 1))
    facts = result.facts
    active = facts.active if facts is not None else people
    latest = max((d for d in map(activity_day, active) if d is not None), default=None)
    if latest is not None and engaged < (today - latest).days < stale:
        return tomorrow
    if view.account.renewal_date is not None:
        r = view.account.renewal_date
        days += [r - timedelta(days=renewal), r + timedelta(days=1)]
    for o in view.opportunities:
        if o.close_date is None:
            continue
        close = o.close_date
        if o.is_won:
            days.append(close + timedelta(days=won + 1))
        elif not o.is_closed:
            days += [close - timedelta(days=renewal), close + timedelta(days=1),
                     close + timedelta(days=renewal + 1)]  # fmt: skip
    for value in (view.account.exemption, *(c.exemption for c in people)):
        if value:
            for entry in suppression.read(value, settings.suppression, today).rules.values():
                if entry.until is not None:
                    days.append(entry.until)
    return min((d for d in days if d > today), default=None)
