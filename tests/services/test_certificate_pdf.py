"""The certificate PDF as a person gets it: parsed (pypdf) and rendered to PNG (pdftoppm)."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from eduflow.services.certificate_pdf import (
    PAGE_H,
    PAGE_W,
    CertificateContent,
    qr_matrix,
    render_certificate_pdf,
)

SERIAL = "Zq3Yb9Z0cJmYl2T1sWq4f8w6dXk"
URL = f"https://eduflow.example/api/v1/certificates/{SERIAL}/"


def _content(name: str, title: str = "Practical Databases", **extra: object) -> CertificateContent:
    return CertificateContent(
        serial=SERIAL,
        student_name=name,
        course_title=title,
        issued_at=datetime(2026, 3, 14, 9, 30, tzinfo=UTC),
        verify_url=URL,
        **extra,  # type: ignore[arg-type]
    )


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


@pytest.mark.parametrize(
    "name",
    [
        "Ada Lovelace",
        "Анна Каренина",  # Cyrillic
        "Αλέξανδρος Παπαδόπουλος",  # Greek (with tonos)
        "Łukasz Żółć-Ærøskøbing",  # Latin beyond Latin-1
        "Ἀριστοτέλης & <Ёжик>",  # polytonic Greek, markup characters
    ],
)
def test_names_in_any_script_survive_text_extraction(name: str) -> None:
    text = _text(render_certificate_pdf(_content(name, title="Введение в Python: Ελληνικά")))
    assert name in text
    assert "Введение в Python: Ελληνικά" in text
    assert SERIAL in text
    assert URL in text
    assert "14 March 2026" in text


def test_one_landscape_a4_page_with_metadata() -> None:
    reader = PdfReader(io.BytesIO(render_certificate_pdf(_content("Ada Lovelace"))))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert round(float(box.width) / 72 * 25.4) == PAGE_W  # 297 mm wide
    assert round(float(box.height) / 72 * 25.4) == PAGE_H  # 210 mm high
    assert reader.metadata is not None and SERIAL in (reader.metadata.title or "")
    fonts = reader.pages[0]["/Resources"]["/Font"]  # type: ignore[index]
    embedded = {str(f.get_object()["/BaseFont"]) for f in fonts.values()}
    assert embedded and all("DejaVuSans" in name for name in embedded)  # the bundled font


def test_a_long_name_and_title_stay_on_the_page() -> None:
    name = "Maximiliana Wilhelmina Theodora von Hohenzollern-Sigmaringen-Ἀλεξάνδρεια"
    title = "Advanced Topics in Distributed Systems: Consensus, Replication and Recovery"
    text = _text(render_certificate_pdf(_content(name, title)))
    flat = " ".join(text.split())
    assert name in flat and title in flat


def test_a_revoked_certificate_says_so() -> None:
    revoked = datetime(2026, 4, 1, tzinfo=UTC)
    assert "REVOKED" not in _text(render_certificate_pdf(_content("Ada")))
    assert "REVOKED on 01 April 2026" in _text(
        render_certificate_pdf(_content("Ada", revoked_at=revoked))
    )


DPI = 200


def _px(mm: float) -> int:
    return round(mm / 25.4 * DPI)


def test_rendered_png_shows_the_verification_qr_code(tmp_path: Path) -> None:
    """pdftoppm draws the page; the QR code on it is module for module the one of the URL."""
    from PIL import Image

    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils) is needed; .ci/run installs it"
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(render_certificate_pdf(_content("Анна Каренина")))
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(DPI), "-singlefile", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    image = Image.open(tmp_path / "page.png").convert("L")
    assert image.size == (_px(PAGE_W), _px(PAGE_H))  # landscape A4
    # The QR code: 32 mm square, 22 mm from the right and bottom edges of the page.
    matrix = qr_matrix(URL)
    size, x0, y0 = 32.0, PAGE_W - 54.0, PAGE_H - 54.0
    module = size / len(matrix)
    wrong = 0
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            x = _px(x0 + (c + 0.5) * module)
            y = _px(y0 + (r + 0.5) * module)
            if (image.getpixel((x, y)) < 128) != dark:  # type: ignore[operator]
                wrong += 1
    assert wrong == 0
    # Text was drawn in the middle of the page (the name's line is far from blank).
    band = image.crop((_px(40), _px(76), _px(PAGE_W - 40), _px(92)))
    dark_pixels = sum(1 for p in band.getdata() if p < 128)  # type: ignore[operator]
    assert dark_pixels > 1000
