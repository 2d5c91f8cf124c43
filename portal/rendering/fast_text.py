"""A faster drop-in for WeasyPrint 70's `draw_first_line`, the loop that writes each text line's glyphs,
and two shortcuts in its line layout (a layout kept for drawing, a preformatted line shaped once).

For the invoice's thousands of plain text lines it writes the same bytes with a fraction of the work.
Imports nothing from the app: the rendering process (pdfa.py) installs it.

Why: drawing is about a third of an invoice PDF's render time (bench/pdf.py), nearly all of it in
that function's per-glyph Python loop: for every glyph it reads several cffi fields one by one and
formats its hexadecimal id, its width check and its kerning anew. Here a run's glyphs are read as
columns of the C array in one pass, each distinct (glyph, width, offset) of a font is formatted
once, and a run's text is joined from those pieces without a Python loop per glyph. Anything
unusual on a line (an ellipsis, a bitmap or colour font, a missing glyph, an empty glyph, a raised
glyph) goes to WeasyPrint's own function, unchanged. `tests/rendering/test_fast_text.py` checks
that both write identical PDFs, and `install()` does nothing on a WeasyPrint version or a Pango
struct layout it was not written for.
"""

from __future__ import annotations

import importlib
import struct

WEASYPRINT_VERSION = "70.0"
# PangoGlyphInfo: guint32 glyph; gint32 width, x_offset, y_offset; a 32-bit attribute bitfield.
_GLYPH_INFO = struct.Struct("=Iiii4x")
# What Pango ends a paragraph at (pango_find_paragraph_boundary), unless in single-paragraph mode.
_PARAGRAPH_SEPARATORS = ("\n", "\r", "\u2029")

_original = None
_text_ffi = None  # weasyprint.text.ffi once installed (an import per line costs time)
_original_layout_methods = None
_original_split_first_line = None
# The modules that imported WeasyPrint's split_first_line by name (the line layout calls it per line).
_SPLIT_FIRST_LINE_USERS = (
    "weasyprint.text.line_break",
    "weasyprint.layout.inline",
    "weasyprint.layout.preferred",
)


def install() -> bool:
    """Put the fast path in place of `weasyprint.draw.text.draw_first_line`, with the two layout
    shortcuts (`_keep_layouts`, `_split_preformatted_lines_once`); True if they are in place."""
    global _original, _text_ffi
    # WeasyPrint (Pango, cffi) is imported in the functions: heavy, and only the rendering process
    # that installs this fast path should pay for it.
    import weasyprint
    from weasyprint.draw import text as draw_text  # WeasyPrint: rendering process only
    from weasyprint.text import ffi as text_ffi  # WeasyPrint: rendering process only
    from weasyprint.text.ffi import ffi  # WeasyPrint: rendering process only

    _text_ffi = text_ffi
    if draw_text.draw_first_line is draw_first_line:
        return True
    if weasyprint.__version__ != WEASYPRINT_VERSION:
        return False
    if ffi.sizeof("PangoGlyphInfo") != _GLYPH_INFO.size or ffi.offsetof("PangoGlyphInfo", "geometry") != 4:
        return False
    _original = draw_text.draw_first_line
    draw_text.draw_first_line = draw_first_line
    _keep_layouts()
    _split_preformatted_lines_once()
    return True


def _split_preformatted_lines_once() -> None:
    """Lay out a line of preformatted text (white-space: pre) that a newline ends once, not twice.

    WeasyPrint's split_first_line shapes the line with the newline and one character after it (to
    learn where the next line starts), then sets the text to the line alone and shapes it again.
    A newline in pre text always ends the line and the next starts one byte after it, so here the
    line alone is shaped once, with the same result. Anything else takes WeasyPrint's function.
    """
    global _original_split_first_line
    from weasyprint.text.ffi import FROM_UNITS, pango  # WeasyPrint: rendering process only
    from weasyprint.text.line_break import create_layout, line_size  # WeasyPrint: rendering only

    if _original_split_first_line is not None:
        return
    original = _original_split_first_line = importlib.import_module(
        _SPLIT_FIRST_LINE_USERS[0]
    ).split_first_line

    def split_first_line(
        text, style, context, max_width, justification_spacing, is_line_start=True, minimum=False
    ):
        newline = text.find("\n") if style["white_space"] == "pre" else -1
        if newline != -1:
            line = text[:newline]
            layout = create_layout(line, style, context, max_width, justification_spacing)
            first_line, resume_index = layout.get_first_line()
            if resume_index is None:  # else another break inside the line (U+2028 ...)
                width, height = line_size(first_line, style)
                baseline = pango.pango_layout_get_baseline(layout.layout) * FROM_UNITS
                layout.deactivate()
                return layout, first_line.length, len(line.encode()) + 1, width, height, baseline
        return original(text, style, context, max_width, justification_spacing, is_line_start, minimum)

    for name in _SPLIT_FIRST_LINE_USERS:
        importlib.import_module(name).split_first_line = split_first_line


def _keep_layouts() -> None:
    """Keep each text line's Pango layout from layout time to drawing, instead of WeasyPrint's
    dropping it after layout and building and shaping the same one again to draw it (a Pango
    context, a layout and a shaping per line saved; a few MB more for a 10,000-line invoice).

    Only where rebuilding would give the same layout: no justification spacing (which WeasyPrint
    adds only when drawing), text that does not wrap (no width set, in which Pango would align
    it), and the same style.
    """
    global _original_layout_methods
    from weasyprint.text.line_break import Layout  # WeasyPrint: rendering process only

    if _original_layout_methods is not None:
        return
    deactivate, reactivate = _original_layout_methods = (Layout.deactivate, Layout.reactivate)

    def keeps(layout) -> bool:
        # Text that never wraps (pre, nowrap) never has a width set while it is laid out.
        return not layout.justification_spacing and layout.style["white_space"] in ("pre", "nowrap")

    def deactivate_unless_kept(self):
        if not keeps(self):
            deactivate(self)

    def reactivate_unless_kept(self, style):
        if not hasattr(self, "layout") or style is not self.style or not keeps(self):
            reactivate(self, style)

    Layout.deactivate, Layout.reactivate = deactivate_unless_kept, reactivate_unless_kept


def uninstall() -> None:
    """Put WeasyPrint's own functions back (tests compare the two)."""
    from weasyprint.draw import text as draw_text  # WeasyPrint: rendering process only

    global _original_layout_methods, _original_split_first_line
    from weasyprint.text.line_break import Layout  # WeasyPrint: rendering process only

    if _original is not None:
        draw_text.draw_first_line = _original
    if _original_layout_methods is not None:
        Layout.deactivate, Layout.reactivate = _original_layout_methods
        _original_layout_methods = None
    if _original_split_first_line is not None:
        for name in _SPLIT_FIRST_LINE_USERS:
            importlib.import_module(name).split_first_line = _original_split_first_line
        _original_split_first_line = None


_original_split_first_line = None
# The modules that imported WeasyPrint's split_first_line by name (the line layout calls it per line).
_SPLIT_FIRST_LINE_USERS = (
    "weasyprint.text.line_break",
    "weasyprint.layout.inline",
    "weasyprint.layout.preferred",
)


def _fragments(font, font_size) -> dict:
    """The formatted glyphs of one font of one document at one size (kept on the font, which lives
    as long as the document)."""
    caches = getattr(font, "_portal_fragments", None)
    if caches is None:
        caches = font._portal_fragments = {}
    return caches.setdefault(font_size, {})


def _glyph_columns(glyph_string) -> tuple[list, list, list, list]:
    """A run's glyph ids, widths, x and y offsets, each read in one pass over the C array."""
    count = glyph_string.num_glyphs
    fields = memoryview(_text_ffi.ffi.buffer(glyph_string.glyphs, count * _GLYPH_INFO.size)).cast("i")
    step = _GLYPH_INFO.size // 4
    return (
        fields[0::step].tolist(),
        fields[1::step].tolist(),
        fields[2::step].tolist(),
        fields[3::step].tolist(),
    )


def draw_first_line(stream, textbox, text_overflow, block_ellipsis, matrix):
    """`weasyprint.draw.text.draw_first_line`, same arguments, same output."""
    if (
        text_overflow == "ellipsis"
        or block_ellipsis != "none"
        or not textbox.text.strip()
        or textbox.style["font_size"] < 1e-6
    ):
        return _original(stream, textbox, text_overflow, block_ellipsis, matrix)
    ffi, pango = _text_ffi.ffi, _text_ffi.pango
    # WeasyPrint turns on single-paragraph mode here, and Pango then lays the text out again. A
    # text without a paragraph separator lays out the same either way: the kept layout's line
    # (see _keep_layouts) is drawn as it is, not shaped a second time.
    if any(separator in textbox.pango_layout.text for separator in _PARAGRAPH_SEPARATORS):
        pango.pango_layout_set_single_paragraph_mode(textbox.pango_layout.layout, True)
    first_line, _ = textbox.pango_layout.get_first_line()

    # Read every run first: if anything needs WeasyPrint's own handling, nothing is written yet.
    # PANGO_GLYPH_EMPTY (0x0FFFFFFF) and PANGO_GLYPH_UNKNOWN_FLAG (0x10000000) are the highest ids.
    special = min(pango.PANGO_GLYPH_EMPTY, pango.PANGO_GLYPH_UNKNOWN_FLAG)
    runs = []
    run = first_line.runs[0]
    while run != ffi.NULL:
        glyph_item = run.data
        run = run.next
        ids, widths, x_offsets, y_offsets = _glyph_columns(glyph_item.glyphs)
        if any(y_offsets) or (ids and max(ids) >= special):
            return _original(stream, textbox, text_overflow, block_ellipsis, matrix)
        pango_font = glyph_item.item.analysis.font
        font, font_size = stream.add_font(pango_font)
        if font.bitmap or font.png or font.svg or font.colr:
            return _original(stream, textbox, text_overflow, block_ellipsis, matrix)
        if pango.pango_version() < 14802:
            font_size = textbox.style["font_size"]
        runs.append(
            (glyph_item, pango_font, font, font_size, ids, list(zip(ids, widths, x_offsets, strict=True)))
        )

    stream.set_text_matrix(*matrix.values)
    previous_pango_font = None
    string = ""
    for glyph_item, pango_font, font, font_size, ids, keys in runs:
        if pango_font != previous_pango_font:
            previous_pango_font = pango_font
            if string:
                stream.show_text(string)
            string = ""
            stream.set_font_size(font.hash, font_size)
        cache = _fragments(font, font_size)
        new = set(keys).difference(cache)
        if new:
            _map_new_glyphs(textbox, glyph_item, font, ids)
            for glyph_id, width, x_offset in new:
                cache[glyph_id, width, x_offset] = _format_glyph(
                    stream, font, pango_font, font_size, glyph_id, width, x_offset
                )
        string += "<" + "".join(map(cache.__getitem__, keys))
        # Close the glyph list of this run, dropping it if empty (as WeasyPrint does).
        if string[-1] == "<":
            string = string[:-1]
        else:
            string += ">"
    stream.show_text(string)
    return []


def _map_new_glyphs(textbox, glyph_item, font, ids) -> None:
    """Record which characters each glyph first seen here shows, for text extraction (as WeasyPrint
    does: the text of the glyph's cluster at its first occurrence)."""
    unmapped = [glyph_id for glyph_id in dict.fromkeys(ids) if glyph_id not in font.to_unicode]
    if not unmapped:
        return
    clusters = glyph_item.glyphs.log_clusters
    count = len(ids)
    offset_in_text = glyph_item.item.offset
    right_to_left = glyph_item.item.analysis.level % 2
    utf8_text = textbox.pango_layout.text.encode()
    for glyph_id in unmapped:
        i = ids.index(glyph_id)
        start = clusters[i]
        if right_to_left:
            end = glyph_item.item.length if i == 0 else clusters[i - 1]
        else:
            end = glyph_item.item.length if i == count - 1 else clusters[i + 1]
        font.to_unicode[glyph_id] = utf8_text[offset_in_text + start : offset_in_text + end].decode()


def _format_glyph(stream, font, pango_font, font_size, glyph_id, width, x_offset) -> str:
    """One glyph as WeasyPrint writes it into a TJ array: offset, hexadecimal id, kerning."""
    from weasyprint.text.ffi import FROM_UNITS, pango  # WeasyPrint: rendering process only

    offset = x_offset / font_size
    fragment = f">{-offset}<" if offset else ""
    fragment += f"{glyph_id:04x}"
    logical_width = font.widths.get(glyph_id)
    if logical_width is None:
        pango.pango_font_get_glyph_extents(pango_font, glyph_id, stream.ink_rect, stream.logical_rect)
        logical_width = font.widths[glyph_id] = round(
            stream.logical_rect.width * 1000 * FROM_UNITS / font_size
        )
    kerning = logical_width + offset - width * 1000 * FROM_UNITS / font_size
    if kerning:
        fragment += f">{int(kerning)}<"
    return fragment
