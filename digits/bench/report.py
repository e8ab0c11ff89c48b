"""How every benchmark table reads: median (min..max) of what was measured."""

from __future__ import annotations

import statistics


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """median (min..max), the way every cell of the tables reads."""
    median, low, high = (scale * f(values) for f in (statistics.median, min, max))
    return f"{median:.{digits}f} ({low:.{digits}f}..{high:.{digits}f})"
