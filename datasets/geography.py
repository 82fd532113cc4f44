"""Where a department is, the one home of that rule: metropolitan France or overseas (from the
reference table's territory, never from a code prefix), and the department whose calendar and
time zone stand for metropolitan France."""

from __future__ import annotations

from functools import cache

from datasets import reference

METRO = "metro"
OVERSEAS = "overseas"
PARIS = "75"  # its calendar and time zone stand for metropolitan France (control numbers, demo)


@cache
def zone_of_department() -> dict[str, str]:
    """Department code -> "metro" or "overseas" (the zones of prices, mentions and waves)."""
    deps = reference.departments()
    return {
        code: METRO if territory == "metro" else OVERSEAS
        for code, territory in zip(deps["code"], deps["territory"], strict=True)
    }


def is_overseas(department: str) -> bool:
    """An overseas department (971-976): its own time zone and holidays, and a STOP link
    instead of a STOP reply, since its operators may not carry replies."""
    return zone_of_department().get(department) == OVERSEAS
