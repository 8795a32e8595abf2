"""The cron-expression module: fields, names, ranges, steps, macros, day-of-month/weekday OR,
time zones across DST changes, and one-line errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ctl.types.cron import CronError, parse


def _t(*a: int) -> float:
    return datetime(*a, tzinfo=UTC).timestamp()


def _n(expr: str, after: float, tz: str | None = None) -> datetime:
    n = parse(expr, tz).next_after(after)
    assert n is not None
    return datetime.fromtimestamp(n, UTC)


def test_fields_ranges_steps_names() -> None:
    s = parse("*/15 9-17 * JAN-MAR mon-fri")
    assert s.minutes == {0, 15, 30, 45} and s.hours == set(range(9, 18))
    assert s.months == {1, 2, 3} and s.weekdays == {1, 2, 3, 4, 5}
    assert parse("0-30/10 0 1,15 * 7").minutes == {0, 10, 20, 30}
    assert parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert parse("5/20 * * * *").minutes == {5, 25, 45}
    # 2026-12-04 is a Friday: the next weekday 09:00 slot after Friday 17:50 is Monday 09:00.
    assert _n("*/15 9-17 * * MON-FRI", _t(2026, 12, 4, 17, 50)) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    # strictly after: a time on the schedule gives the next one
    assert _n("*/5 * * * *", _t(2026, 1, 1, 0, 5)) == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)


def test_macros() -> None:
    t = _t(2026, 5, 17, 10, 30)
    assert _n("@hourly", t) == datetime(2026, 5, 17, 11, 0, tzinfo=UTC)
    assert _n("@daily", t) == _n("@midnight", t) == datetime(2026, 5, 18, 0, 0, tzinfo=UTC)
    assert _n("@weekly", t) == datetime(2026, 5, 24, 0, 0, tzinfo=UTC)  # a Sunday
    assert _n("@monthly", t) == datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert _n("@yearly", t) == _n("@annually", t) == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)


def test_day_of_month_or_weekday() -> None:
    # Both restricted: the 13th or any Friday (2026-02-06 is a Friday, before the 13th).
    assert _n("0 0 13 * FRI", _t(2026, 2, 1)) == datetime(2026, 2, 6, tzinfo=UTC)
    # Only the day of month restricted: the 13th only.
    assert _n("0 0 13 * *", _t(2026, 2, 1)) == datetime(2026, 2, 13, tzinfo=UTC)
    assert parse("0 0 30 2 *").next_after(_t(2026, 1, 1)) is None  # never


def test_time_zones_and_dst() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
    assert _n("0 9 * * *", _t(2026, 1, 10), "America/New_York") == datetime(2026, 1, 10, 14, tzinfo=UTC)
    assert _n("0 9 * * *", _t(2026, 7, 10), "America/New_York") == datetime(2026, 7, 10, 13, tzinfo=UTC)
    # 2026-03-08 has no 02:30 in New York (spring forward): that run is skipped.
    assert _n("30 2 * * *", _t(2026, 3, 7, 12), "America/New_York") == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    s = parse("*/30 * * * *", "Asia/Kolkata")  # a half-hour offset zone
    assert _n("0 0 * * *", _t(2026, 1, 1, 12), "Asia/Kolkata") == datetime(2026, 1, 1, 18, 30, tzinfo=UTC)
    assert len(s.times_between(_t(2026, 1, 1), _t(2026, 1, 1, 2))) == 4


@pytest.mark.parametrize(
    ("expr", "tz", "words"),
    [
        ("* * * *", None, "expected 5 fields"),
        ("60 * * * *", None, "minute: 60 is outside 0-59"),
        ("* 24 * * *", None, "hour"),
        ("* * 0 * *", None, "day of month"),
        ("* * * FOO *", None, "month"),
        ("*/0 * * * *", None, "step must be at least 1"),
        ("5-1 * * * *", None, "runs backwards"),
        ("@often", None, "unknown macro"),
        ("TZ=UTC * * * * *", None, "spec.timeZone"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_errors(expr: str, tz: str | None, words: str) -> None:
    with pytest.raises(CronError) as e:
        parse(expr, tz)
    assert words in str(e.value) and "\n" not in str(e.value)
