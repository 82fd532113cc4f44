from __future__ import annotations

from kit.errors import NotFound


class GridNotFound(NotFound):
    code = "price_grid_not_found"
