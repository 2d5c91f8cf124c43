"""Table columns in proportional type without a table: each invoice line is ONE line of text whose
cells are placed by padding measured in Python from the font's own advance widths.

Why: WeasyPrint's layout time grows with the number of boxes; a table cell per value took about
seven times as long as one text line per invoice line (bench/pdf.py). So each line is text, and the
gaps between cells are filled with Unicode spaces of known widths (en, four-per-em, six-per-em,
thin, hair space ...) chosen to land on the column's position within a few hundredths of an em.
Widths come from the DejaVu Sans files fontconfig finds, the same files WeasyPrint lays out with;
the line blocks switch kerning and ligatures off (invoice.html) so the sum of advances is exact.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FAMILY = "DejaVu Sans"
# Debian/Ubuntu's fonts-dejavu-core: where fontconfig finds them when fc-match is not at hand.
KNOWN_FILES = {
    False: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    True: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
}
FALLBACK_EM = 0.6  # a character the font lacks (another font draws it): a guess
# Spaces whose width is fixed by the font, with no meaning beyond spacing (none is a line break
# opportunity under white-space: pre): em, en, four-per-em, six-per-em, thin, hair, space.
PAD_CHARACTERS = "\u2003\u2002\u2005\u2006\u2009\u200a "
# A cell this close to its column's edge (in em) counts as on it: 0.04 mm at 7.5 pt, far below what
# the eye or a printer resolves; allowing it saves about two glyphs a gap (see `padding`).
CLOSE_EM = 0.015
_EN = "\u2003"  # the bulk of a gap: em spaces, the widest (fewest glyphs to lay out and draw)


@dataclass(frozen=True)
class Column:
    """A column: where it starts and ends on the line (in em of the line's font), and its alignment."""

    start: float
    end: float
    align: str = "left"  # left | right


@functools.cache
def font_file(bold: bool) -> str | None:
    """The file fontconfig picks for DejaVu Sans (bold or book), as WeasyPrint's Pango will."""
    fc_match = shutil.which("fc-match")
    if fc_match:
        style = "Bold" if bold else "Book"
        try:
            found = subprocess.run(  # noqa: S603 - fixed command, no user input
                [fc_match, "--format=%{file}", f"{FAMILY}:style={style}"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found and Path(found).name.startswith("DejaVuSans"):
            return found
    return KNOWN_FILES[bold] if Path(KNOWN_FILES[bold]).exists() else None


@functools.cache
def advance_widths(bold: bool) -> dict[str, float]:
    """Every character the font maps, with its advance width in em."""
    path = font_file(bold)
    if path is None:
        return {}
    from fontTools.ttLib import TTFont  # only where a PDF is laid out; fontTools comes with WeasyPrint

    font = TTFont(path, lazy=True)
    units = font["head"].unitsPerEm
    metrics = font["hmtx"].metrics
    widths = {chr(code): metrics[glyph][0] / units for code, glyph in font.getBestCmap().items()}
    font.close()
    return widths


def text_width(text: str, *, bold: bool = False) -> float:
    """The width of `text` in em, as the font lays it out with kerning and ligatures off."""
    # map() with dict.get runs in C: a 10,000-line invoice measures about 70,000 cells.
    return sum(map(advance_widths(bold).get, text, itertools.repeat(FALLBACK_EM, len(text))))


@functools.cache
def _pad_table(bold: bool) -> tuple[list[float], list[str]]:
    """Every run of up to six small spaces, by width: the pieces `padding` finishes a gap with."""
    widths = advance_widths(bold)
    small = [c for c in PAD_CHARACTERS if c != _EN and c in widths]
    runs = {0.0: (0.0, "")}  # rounded width -> (exact width, the run)
    for n in range(1, 7):
        for combo in itertools.combinations_with_replacement(small, n):
            run = "".join(combo)
            exact = sum(widths[c] for c in run)
            runs.setdefault(round(exact, 6), (exact, run))
    ordered = [runs[key] for key in sorted(runs)]
    return [exact for exact, _ in ordered], [run for _, run in ordered]


@functools.lru_cache(maxsize=4096)  # an invoice's gaps repeat: its cells come from few texts and widths
def padding(gap: float, *, bold: bool = False) -> tuple[str, float]:
    """Spaces that fill `gap` em without exceeding it; returns them and their width.

    Among the runs that come within CLOSE_EM of the gap, the one with the fewest glyphs (each glyph
    is shaped, laid out and drawn: about a fifth of a line's glyphs are padding); if none comes that
    close, the closest run.
    """
    widths = advance_widths(bold)
    if gap <= 0:
        return "", 0.0
    if not widths:  # no font metrics: plain spaces of the fallback width
        count = max(1, round(gap / FALLBACK_EM))
        return " " * count, count * FALLBACK_EM
    en = widths.get(_EN, 1.0)
    sums, runs = _pad_table(bold)
    count = int(gap // en)
    best, best_score = ("", 0.0), None
    # The last en space or two may give way to small spaces that come closer.
    for ens in range(max(0, count - 2), count + 1):
        rest = gap - ens * en
        end = bisect.bisect_right(sums, rest + 1e-9)
        for i in range(min(bisect.bisect_left(sums, rest - CLOSE_EM), end - 1), end):
            short = rest - sums[i]
            glyphs = ens + len(runs[i])
            score = (0, glyphs, short) if short <= CLOSE_EM else (1, short, glyphs)
            if best_score is None or score < best_score:
                best, best_score = (_EN * ens + runs[i], ens * en + sums[i]), score
    return best


@functools.lru_cache(maxsize=4096)  # an invoice repeats its partners and descriptions
def wrap(text: str, width: float, *, bold: bool = False) -> tuple[str, ...]:
    """`text` broken into lines no wider than `width` em, at spaces (long words cut)."""
    if not text:
        return ("",)
    if text_width(text, bold=bold) <= width:
        return (text,)
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, bold=bold) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while text_width(word, bold=bold) > width:  # a word longer than the column: cut it
            cut = len(word) - 1
            while cut > 1 and text_width(word[:cut], bold=bold) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    return tuple(lines)


def line(cells: list[str], columns: list[Column], *, bold: bool = False) -> str:
    """One line of text with each cell at its column (left cells at `start`, right ones ending at `end`)."""
    out = []
    x = 0.0
    for text, column in zip(cells, columns, strict=True):
        if not text:
            continue
        width = text_width(text, bold=bold)
        target = column.end - width if column.align == "right" else column.start
        if x > 0 and target - x < 0.25:  # an overfull cell: keep at least a space between the two
            target = x + 0.25
        pad, pad_width = padding(target - x, bold=bold)
        out.append(pad)
        out.append(text)
        x += pad_width + width
    return "".join(out)
