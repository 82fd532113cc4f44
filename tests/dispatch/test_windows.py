"""Legal send windows on known dates, per recipient territory."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch import windows
from kit.settings import DispatchSettings

PARIS = ZoneInfo("Europe/Paris")
REUNION = ZoneInfo("Indian/Reunion")
METRO = windows.calendar_of("75")
STRASBOURG = windows.calendar_of("67")
METZ = windows.calendar_of("57")
LA_REUNION = windows.calendar_of("974")


def paris(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def test_calendars_of_departments() -> None:
    assert METRO.time_zone == "Europe/Paris"
    assert STRASBOURG.subdivision == "6AE"
    assert METZ.subdivision == "57"
    assert LA_REUNION.time_zone == "Indian/Reunion"
    assert windows.calendar_of("2A") == METRO
    assert windows.calendar_of("973").time_zone == "America/Cayenne"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (paris(2027, 3, 10, 12), paris(2027, 3, 10, 12)),  # open: a Wednesday at noon
        (paris(2027, 3, 14, 12), paris(2027, 3, 15, 8)),  # Sunday -> Monday 08:00
        (paris(2027, 3, 10, 7, 30), paris(2027, 3, 10, 8)),  # before opening
        (paris(2027, 3, 10, 22), paris(2027, 3, 11, 8)),  # closing time is closed
        (paris(2027, 5, 5, 22, 30), paris(2027, 5, 7, 8)),  # Ascension Thursday 6 May
        (paris(2027, 5, 15, 23), paris(2027, 5, 18, 8)),  # Sunday then Whit Monday 17 May
        (paris(2027, 3, 26, 10), paris(2027, 3, 26, 10)),  # Good Friday: open in Paris
    ],
)
def test_metropolitan_window(at: datetime, expected: datetime) -> None:
    assert windows.next_opening(METRO, at) == expected


def test_a_batch_at_2159_has_one_minute_left() -> None:
    at = paris(2027, 3, 10, 21, 59)
    assert windows.is_open(METRO, at)
    assert windows.seconds_left(METRO, at) == 60
    assert windows.closing(METRO, at) == paris(2027, 3, 10, 22)
    assert not windows.is_open(METRO, paris(2027, 3, 10, 22))
    assert windows.seconds_left(METRO, paris(2027, 3, 10, 22)) == 0


def test_other_send_hours_from_the_settings_are_kept() -> None:
    weekdays = windows.SendHours.of(
        DispatchSettings(
            send_days=[0, 1, 2, 3, 4], send_window_start="09:30", send_window_end="19:00"
        )
    )
    assert weekdays.next_opening(METRO, paris(2027, 3, 10, 8)) == paris(2027, 3, 10, 9, 30)
    assert weekdays.closing(METRO, paris(2027, 3, 10, 12)) == paris(2027, 3, 10, 19)
    # Saturday closed, Sunday closed, Monday 09:30.
    assert weekdays.next_opening(METRO, paris(2027, 3, 12, 19)) == paris(2027, 3, 15, 9, 30)
    assert windows.is_open(METRO, paris(2027, 3, 13, 12))  # the configured hours: Saturdays too


def test_good_friday_and_26_december_in_alsace_moselle_only() -> None:
    good_friday = paris(2027, 3, 26, 10)
    assert windows.is_open(METRO, good_friday)
    assert not windows.is_open(STRASBOURG, good_friday)
    assert not windows.is_open(METZ, good_friday)
    assert windows.next_opening(STRASBOURG, good_friday) == paris(2027, 3, 27, 8)
    st_stephen = paris(2026, 12, 26, 10)  # a Saturday
    assert windows.is_open(METRO, st_stephen)
    assert not windows.is_open(STRASBOURG, st_stephen)


def test_reunion_has_its_own_time_and_20_december() -> None:
    abolition = datetime(2027, 12, 20, 12, tzinfo=REUNION)  # a Monday, 09:00 in Paris
    assert not windows.is_open(LA_REUNION, abolition)
    assert windows.is_open(METRO, abolition)
    assert windows.next_opening(LA_REUNION, abolition) == datetime(2027, 12, 21, 8, tzinfo=REUNION)
    # 08:00 in Reunion is 05:00 in Paris in winter: open there, closed in Paris.
    early = datetime(2027, 12, 21, 4, 30, tzinfo=UTC)
    assert windows.is_open(LA_REUNION, early)
    assert not windows.is_open(METRO, early)


def test_the_nights_the_clocks_change() -> None:
    # Spring: Saturday 27 March 2027 closes at 22:00 CET; Sunday is closed, clocks go forward,
    # Monday 29 is Easter Monday: the next opening is Tuesday 08:00 CEST = 06:00 UTC.
    assert windows.closing(METRO, paris(2027, 3, 27, 21)) == datetime(2027, 3, 27, 21, tzinfo=UTC)
    assert windows.next_opening(METRO, paris(2027, 3, 27, 22)) == datetime(
        2027, 3, 30, 6, tzinfo=UTC
    )
    # Autumn: after Saturday 30 October, Sunday (clocks go back) and All Saints' Monday: next is
    # Tuesday 2 November 08:00 CET = 07:00 UTC.
    assert windows.next_opening(METRO, paris(2027, 10, 30, 22)) == datetime(
        2027, 11, 2, 7, tzinfo=UTC
    )
