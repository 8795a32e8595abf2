"""Cron expressions as CronJobs use them: five fields, macros and time zones.

A :class:`Schedule` parses ``minute hour day-of-month month day-of-week`` with the
standard syntax - ``*``, lists (``1,15``), ranges (``1-5``), steps (``*/10``, ``0-30/5``),
month and weekday names (``JAN``-``DEC``, ``SUN``-``SAT``, ``7`` is Sunday too) and ``?``
as ``*`` - plus the macros ``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
``@daily``/``@midnight`` and ``@hourly``. As in cron (and Kubernetes' robfig/cron), when
both day-of-month and day-of-week are restricted a day matches if either does.

Times are evaluated in an IANA time zone (``timeZone`` of a CronJob, default UTC) with
:mod:`zoneinfo`: :meth:`Schedule.next_after` returns the next matching minute strictly
after a Unix time, walking wall-clock minutes of that zone, so a run at ``02:30`` is
skipped on a spring-forward day that has no 02:30, as cron does. Bad input raises
:class:`CronError` with a one-line message naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# (name, low, high, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
MAX_YEARS = 5  # how far next_after looks before deciding a schedule never fires (e.g. Feb 30)


class CronError(ValueError):
    """An unparseable schedule or unknown time zone."""


def _value(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> int:
    t = text.upper()
    if t in names:
        return names[t]
    try:
        v = int(text)
    except ValueError:
        raise CronError(f"{name}: {text!r} is not a number{' or name' if names else ''}") from None
    if not lo <= v <= hi:
        raise CronError(f"{name}: {v} is outside {lo}-{hi}")
    return v


def _field(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """The values a field allows and whether it was unrestricted (``*``/``?`` without a step)."""
    out: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise CronError(f"{name}: empty list item in {text!r}")
        rng, slash, step_s = part.partition("/")
        step = 1
        if slash:
            try:
                step = int(step_s)
            except ValueError:
                raise CronError(f"{name}: step {step_s!r} is not a number") from None
            if step < 1:
                raise CronError(f"{name}: step must be at least 1")
        if rng in ("*", "?"):
            a, b = lo, hi
            star = star or not slash
        elif "-" in rng:
            a_s, _, b_s = rng.partition("-")
            a, b = _value(a_s, name, lo, hi, names), _value(b_s, name, lo, hi, names)
            if a > b:
                raise CronError(f"{name}: range {rng!r} runs backwards")
        else:
            a = _value(rng, name, lo, hi, names)
            b = hi if slash else a
        out.update(range(a, b + 1, step))
    return frozenset(out), star


def zone(name: str | None) -> tzinfo:
    """The tzinfo of an IANA name (``None``/empty is UTC); :class:`CronError` if unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool
    dow_star: bool
    tz: tzinfo = UTC

    @classmethod
    def parse(cls, expr: str, time_zone: str | None = None) -> Schedule:
        text = expr.strip()
        if text.upper().startswith(("TZ=", "CRON_TZ=")):
            raise CronError("the schedule may not set TZ=; use spec.timeZone")
        text = MACROS.get(text.lower(), text)
        if text.startswith("@"):
            raise CronError(f"unknown macro {expr!r}; use one of {', '.join(MACROS)}")
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"expected 5 fields (minute hour day month weekday), got {len(parts)}: {expr!r}")
        vals = [_field(p, *f) for p, f in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in vals[4][0])
        return cls(
            vals[0][0], vals[1][0], vals[2][0], vals[3][0], weekdays, vals[2][1], vals[4][1], zone(time_zone)
        )

    def _day_ok(self, d: datetime) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next_after(self, t: float) -> float | None:
        """The first matching minute strictly after Unix time ``t``; None if none within MAX_YEARS."""
        tz = self.tz
        start = datetime.fromtimestamp(t, tz).replace(second=0, microsecond=0, tzinfo=None)
        cur = start + timedelta(minutes=1)
        limit = start + timedelta(days=366 * MAX_YEARS)
        hours = sorted(self.hours)
        minutes = sorted(self.minutes)
        while cur <= limit:
            if not self._day_ok(cur):
                cur = (cur + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            for h in hours:
                if h < cur.hour:
                    continue
                for m in minutes:
                    if h == cur.hour and m < cur.minute:
                        continue
                    wall = cur.replace(hour=h, minute=m)
                    aware = wall.replace(tzinfo=tz)
                    # A wall time that does not exist in the zone (DST gap) does not round-trip.
                    back = datetime.fromtimestamp(aware.timestamp(), tz).replace(tzinfo=None)
                    if back != wall:
                        continue
                    ts = aware.timestamp()
                    if ts > t:
                        return ts
            cur = (cur + timedelta(days=1)).replace(hour=0, minute=0)
        return None

    def times_between(self, after: float, until: float, limit: int = 100) -> list[float]:
        """Matching times in ``(after, until]``, at most ``limit`` of them (the most recent kept last)."""
        out: list[float] = []
        t = after
        while True:
            n = self.next_after(t)
            if n is None or n > until:
                return out
            out.append(n)
            if len(out) > limit:
                out.pop(0)
            t = n


def parse(expr: str, time_zone: str | None = None) -> Schedule:
    """:meth:`Schedule.parse`."""
    return Schedule.parse(expr, time_zone)
