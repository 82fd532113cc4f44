"""Wave counts a customer sees: nothing under the minimum, nor derivable from the total."""

from __future__ import annotations

from dispatch.waves import _suppress


def test_a_small_wave_is_hidden_with_another() -> None:
    shown = _suppress({"metro": 5_000, "971": 300, "974": 30}, 100)
    assert shown["974"] is None  # under the minimum
    assert shown["971"] is None  # else 5,330 - 5,000 - 300 would tell the 30
    assert shown["metro"] == 5_000


def test_waves_all_above_the_minimum_are_shown() -> None:
    assert _suppress({"metro": 900, "974": 120}, 100) == {"metro": 900, "974": 120}
    assert _suppress({"974": 40, "971": 50}, 100) == {"974": None, "971": None}
