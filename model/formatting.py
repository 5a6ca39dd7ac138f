"""How numbers are written for people: in findings, in heatmap cells and in the status bar.

Large values keep every integer digit with thousands separators (the question printed
-49678.5: a reader should see exactly that size), tiny and astronomical ones use scientific
notation, and nothing is rounded to a misleading zero.
"""

from __future__ import annotations

import math
import re

import numpy as np


def format_number(value: float, digits: int = 4) -> str:
    """Readable, honest form of ``value`` with about ``digits`` significant digits.

    Examples: 0 -> '0', 0.0213 -> '0.02130', -49678.53 -> '-49,678.5', 3.2e-07 -> '3.200e-07',
    1.5e12 -> '1.500e+12', nan -> 'NaN', inf -> 'inf'.
    """
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e9 or magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    if magnitude >= 1000:
        return f"{value:,.1f}"
    decimals = max(digits - 1 - math.floor(math.log10(magnitude)), 0)
    return f"{value:.{decimals}f}"


def format_range(low: float, high: float) -> str:
    """'[low, high]' with ``format_number`` on both ends."""
    return f"[{format_number(low)}, {format_number(high)}]"


def format_product(factors: str, source, result) -> str:
    """'factors × [a, b] = [c, d]' for ``result`` made from ``source`` element by element (the
    update from the gradient), with the ends in step: [a, b] is the range of ``source`` and c, d
    are ``result`` at those same elements. With a negative factor c is then the larger, so the
    equation checks end by end (both as [min, max] did not: −0.5 × [107,312.7, 130,185.8] read
    "= [-65,092.9, -53,656.4]", a teacher's review). Minus signs are the hyphens of every other
    number shown, non-finite elements are left out."""
    source = np.asarray(source, dtype=np.float64).reshape(-1)
    result = np.asarray(result, dtype=np.float64).reshape(-1)
    finite = np.flatnonzero(np.isfinite(source) & np.isfinite(result))
    if not finite.size:
        return f"{factors} × [no finite value]"
    low = finite[np.argmin(source[finite])]
    high = finite[np.argmax(source[finite])]
    return (
        f"{factors} × {format_range(source[low], source[high])} = "
        f"{format_range(result[low], result[high])}"
    )


def format_share(share: float, decimals: int = 0) -> str:
    """A fraction as a percentage with ``decimals`` decimals that never reads 0% or 100% unless
    it is exactly that: a share that would round to either is written '<1%' or '>99%' ('<0.1%',
    '>99.9%' with one decimal). '–' when not finite."""
    share = float(share)
    if not math.isfinite(share):
        return "–"
    text = f"{share:.{decimals}%}"
    step = 10.0 ** -(decimals + 2)
    if 0 < share and text == f"{0:.{decimals}%}":
        return f"<{step:.{decimals}%}"
    if share < 1 and text == f"{1:.{decimals}%}":
        return f">{1 - step:.{decimals}%}"
    return text


def format_compact(value: float) -> str:
    """Short form for small cells (3 significant digits), e.g. '-4.97e+04', '0.0213', '12.5'."""
    value = float(value)
    if not math.isfinite(value):
        return format_number(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


_SHORT_EXPONENT = re.compile(r"e\+?(-?)0*(\d)")


def format_cell(value: float) -> str:
    """Short but honest text of a heatmap cell: thousands to hundreds of thousands keep every
    integer digit ('-65,092', as the question printed its weights), everything else has
    three significant digits (``format_compact``) with a short exponent: '0.0451',
    '2.54e-4', '-3.97e8'. The window's cells and a saved snapshot's say the same."""
    value = float(value)
    # (on the value as written: 999.6 is "1,000", 999,999.6 "1e6")
    if math.isfinite(value) and 1e3 <= abs(round(value)) < 1e6:
        return f"{value:,.0f}"
    return _SHORT_EXPONENT.sub(r"e\1\2", format_compact(value))


def format_count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 file', '3 files': a count and its noun, plural (``noun`` + 's' unless given) but
    for one."""
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


def format_filters(count: int, kernel: int) -> str:
    """'1 filter of 3×3', '16 filters of 5×5': a number of square filters and their size."""
    return f"{format_count(count, 'filter')} of {kernel}×{kernel}"
