"""The certificate PDF: rendered on the first request, then served from the cache.

Rendering costs tens of milliseconds of CPU (font subsetting, QR code), so the bytes are
kept in the cache store (Redis, or in-process on the embedded default) under
``certs:pdf:<serial>:<status>``. What a PDF shows is fixed at issue except its status, and
the status is read from the database on every request: a revocation switches every process
to the other key at once. The old key is dropped after the revoking commit only to free
memory; correctness does not rest on that. When the cache is down, PDFs are rendered per
request (slower, never wrong).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from eduflow.cache.stores import StoreUnavailable
from eduflow.models.certificates import Certificate
from eduflow.services.certificate_cache import NAMESPACE, pdf_key


@dataclass(frozen=True, slots=True)
class CertificateFile:
    """A rendered PDF and its strong ETag (no body when the client's copy is current)."""

    body: bytes
    etag: str
    cached: bool
    not_modified: bool = False


def pdf_etag(certificate: Certificate) -> str:
    """A strong ETag known without rendering: serial, status and revocation time decide the
    bytes (the renderer's version too, through ``RENDER_VERSION``)."""
    revoked = certificate.revoked_at.isoformat() if certificate.revoked_at else "-"
    raw = f"{RENDER_VERSION}|{certificate.serial}|{revoked}".encode()
    return '"' + hashlib.blake2b(raw, digest_size=16).hexdigest() + '"'


RENDER_VERSION = "1"  # change when the layout changes, so cached PDFs and ETags move on


def certificate_pdf(
    session: Session, serial: str, client_has: Callable[[str], bool] | None = None
) -> CertificateFile:
    """The PDF of ``serial`` (404 when unknown): from the cache, else rendered and cached;
    no body at all when ``client_has`` says the client holds the current ETag."""
    from eduflow.cache.health import get_cache_store, health, stats
    from eduflow.config import get_settings
    from eduflow.services.certificates import find_by_serial

    certificate = find_by_serial(session, serial)
    cache_key = pdf_key(certificate.serial, certificate.status)
    etag = pdf_etag(certificate)
    if client_has is not None and client_has(etag):
        return CertificateFile(b"", etag, cached=True, not_modified=True)
    usable = health.usable(NAMESPACE)
    if usable:
        try:
            body = get_cache_store().get(cache_key)
        except StoreUnavailable as exc:
            health.failed(NAMESPACE, exc)
            usable = False
        else:
            if body is not None:
                stats.record(NAMESPACE, "hits")
                return CertificateFile(body, etag, cached=True)
            stats.record(NAMESPACE, "misses")
    body = render_pdf(certificate)
    if usable:
        try:
            get_cache_store().set(cache_key, body, get_settings().certificate_pdf_ttl)
        except StoreUnavailable as exc:
            health.failed(NAMESPACE, exc)
    return CertificateFile(body, etag, cached=False)


def render_pdf(certificate: Certificate) -> bytes:
    """Render ``certificate`` (no cache)."""
    from eduflow.services.certificate_pdf import CertificateContent, render_certificate_pdf
    from eduflow.services.certificates import verify_url

    return render_certificate_pdf(
        CertificateContent(
            serial=certificate.serial,
            student_name=certificate.student_name,
            course_title=certificate.course_title,
            issued_at=certificate.issued_at,
            verify_url=verify_url(certificate.serial),
            revoked_at=certificate.revoked_at,
        )
    )
