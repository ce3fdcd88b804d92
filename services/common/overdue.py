"""逾期天数, as the bureau counts it: the started days after the deadline.

One minute to 24 hours late is day 1, 24 hours and a minute is day 2. Every reader that says
how long an issue is overdue (``cw report overdue``, the digest, the escalation reminders) counts
with this one function, so that the same issue on the same morning has one number.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DAY = timedelta(days=1)


def days_overdue(due_at: datetime, now: datetime) -> int:
    """Started days past ``due_at`` at ``now``; 0 at or before the deadline.

    Days are 24-hour spans from the deadline's own instant, not calendar days: a deadline of
    17:00 is one day overdue until 17:00 the next day, whatever midnight passes in between.
    """
    late = now - due_at
    if late <= timedelta(0):
        return 0
    whole, rest = divmod(late, DAY)
    return whole + (1 if rest else 0)
