"""The certificate as a one-page landscape A4 PDF: name, course, date, serial, the
verification URL and a QR code of it.

fpdf2 writes it: pure Python (no C toolchain, no system libraries), maintained, and it
embeds a subset of a TrueType font with a ToUnicode map, so a name in any script the
font covers prints and survives text extraction (copy-paste, screen readers, pypdf).
The font is DejaVu Sans, bundled in ``eduflow/static/fonts`` with its licence (the
Bitstream Vera licence allows redistribution). The QR code comes from segno as a module
matrix and is drawn as vector squares: sharp at any zoom, no raster image to embed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path(__file__).resolve().parent.parent / "static" / "fonts"
FONT_FAMILY = "DejaVuSans"
PAGE_W, PAGE_H = 297.0, 210.0  # A4 landscape, millimetres

_INK = (33, 37, 41)
_ACCENT = (31, 78, 121)
_MUTED = (108, 117, 125)
_REVOKED = (176, 0, 32)


@dataclass(frozen=True, slots=True)
class CertificateContent:
    """Everything printed on a certificate (copied from the row; nothing private)."""

    serial: str
    student_name: str
    course_title: str
    issued_at: datetime
    verify_url: str
    revoked_at: datetime | None = None


@cache
def _font_files() -> tuple[Path, Path]:
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    for path in (regular, bold):
        if not path.is_file():  # a broken install, not a request's fault
            raise RuntimeError(f"certificate font missing: {path.name}")
    return regular, bold


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR code of ``data`` as rows of dark (True) / light modules, quiet zone excluded."""
    import segno

    code = segno.make_qr(data, error="m")
    return [[bool(module) for module in row] for row in code.matrix]


def render_certificate_pdf(content: CertificateContent) -> bytes:
    """The PDF bytes of one certificate (one landscape page)."""
    regular, bold = _font_files()
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_title(f"Certificate {content.serial}")
    pdf.set_author("EduFlow")
    pdf.set_creator("EduFlow")
    pdf.set_subject(f"{content.student_name} - {content.course_title}")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font(FONT_FAMILY, "", str(regular))
    pdf.add_font(FONT_FAMILY, "B", str(bold))
    pdf.add_page()
    _frame(pdf)
    _body(pdf, content)
    _footer(pdf, content)
    return bytes(pdf.output())


def _frame(pdf: FPDF) -> None:
    pdf.set_draw_color(*_ACCENT)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
    pdf.set_line_width(0.3)
    pdf.rect(14, 14, PAGE_W - 28, PAGE_H - 28)


def _centered(
    pdf: FPDF,
    y: float,
    text: str,
    size: float,
    style: str = "",
    rgb: tuple[int, int, int] = _INK,
) -> None:
    pdf.set_font(FONT_FAMILY, style, size)
    # Long names or titles shrink to fit the frame instead of running off the page.
    while size > 10 and pdf.get_string_width(text) > PAGE_W - 50:
        size -= 1
        pdf.set_font_size(size)
    pdf.set_text_color(*rgb)
    pdf.set_xy(25, y)
    pdf.multi_cell(PAGE_W - 50, size * 0.45, text, align="C")


def _body(pdf: FPDF, content: CertificateContent) -> None:
    issued = content.issued_at.strftime("%d %B %Y")
    _centered(pdf, 30, "EDUFLOW", 14, "B", _ACCENT)
    _centered(pdf, 44, "Certificate of Completion", 30, "B")
    _centered(pdf, 66, "This certifies that", 13, "", _MUTED)
    _centered(pdf, 78, content.student_name, 30, "B", _ACCENT)
    _centered(pdf, 98, "has completed the course", 13, "", _MUTED)
    _centered(pdf, 110, content.course_title, 22, "B")
    _centered(pdf, 130, f"Issued on {issued}", 12)
    if content.revoked_at is not None:
        revoked = content.revoked_at.strftime("%d %B %Y")
        notice = f"REVOKED on {revoked}: this certificate is no longer valid"
        _centered(pdf, 140, notice, 13, "B", _REVOKED)


def _footer(pdf: FPDF, content: CertificateContent) -> None:
    size, x0, y0 = 32.0, PAGE_W - 22 - 32.0, PAGE_H - 22 - 32.0
    matrix = qr_matrix(content.verify_url)
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):  # one rectangle per run of dark modules
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x0 + start * module, y0 + r * module, (c - start) * module, module, style="F")
    pdf.set_text_color(*_MUTED)
    pdf.set_font(FONT_FAMILY, "", 9)
    pdf.set_xy(24, PAGE_H - 40)
    pdf.cell(0, 5, f"Serial: {content.serial}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(24)
    pdf.cell(0, 5, "Verify at:", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(24)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(0, 5, content.verify_url, link=content.verify_url)
