"""Where a certificate's rendered PDF is cached, and its forgetting after a revocation
(below ``services.certificates`` and ``services.certificate_files``, which both use it)."""

from __future__ import annotations

from sqlmodel import Session

from eduflow.cache.stores import StoreUnavailable, key
from eduflow.models.certificates import CertificateStatus

NAMESPACE = "certificates"


def pdf_key(serial: str, status: CertificateStatus) -> str:
    """The cache key of one rendering."""
    return key("certs", "pdf", serial, status.value)


def forget_cached_pdfs(session: Session, serial: str) -> None:
    """After the commit, drop the cached "valid" rendering of a revoked certificate."""
    from eduflow.db import on_commit

    def _drop() -> None:
        from eduflow.cache.health import get_cache_store, health

        if not health.usable(NAMESPACE):
            return
        try:
            get_cache_store().delete(pdf_key(serial, CertificateStatus.valid))
        except StoreUnavailable as exc:
            health.failed(NAMESPACE, exc)

    on_commit(session, _drop)
