"""Certificates routes: translate HTTP to ``services.certificates`` and back.

Verification and the PDF are public (no token needed, none looked at) and say only what a
certificate prints: no email, no user id. Both tell caches to revalidate on every use
(``no-cache`` with an ETag), so a revocation is never hidden by a browser or proxy copy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from eduflow.api.deps import CurrentUser, PageDep, SessionDep, page_body
from eduflow.api.etag import etag_matches, if_none_match, json_response
from eduflow.api.problems import problem_responses
from eduflow.cache.responses import etag_of
from eduflow.models.certificates import (
    SERIAL_MAX_CHARS,
    CertificateAdminView,
    CertificatePage,
    CertificateRevoke,
    CertificateVerification,
)
from eduflow.services import certificates
from eduflow.services.certificate_files import certificate_pdf

router = APIRouter(tags=["certificates"])
Serial = Annotated[
    str, Path(min_length=1, max_length=SERIAL_MAX_CHARS, description="Certificate serial.")
]
PUBLIC_CACHE = "no-cache"  # store if you like, but ask every time: revocation shows at once


@router.get(
    "/certificates/",
    summary="List certificates",
    response_model=CertificatePage,
    responses=problem_responses(401, 422),
)
def list_certificates(
    request: Request,
    actor: CurrentUser,
    session: SessionDep,
    page: PageDep,
    course: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Course id.")] = None,
    student: Annotated[str | None, Query(max_length=150, description="Student's username.")] = (
        None
    ),
) -> Response:
    """Students: their own; instructors: those of their courses; admins: all. Newest first."""
    count, rows = certificates.list_certificates(
        session, actor, course_id=course, student=student, offset=page.offset, limit=page.page_size
    )
    results = [certificates.to_public(c, username) for c, username in rows]
    return json_response(CertificatePage.model_validate(page_body(request, page, count, results)))


def _public_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": PUBLIC_CACHE}


@router.get(
    "/certificates/{serial}/",
    summary="Verify a certificate (public)",
    response_model=CertificateVerification,
    responses=problem_responses(404, 422),
)
def verify_certificate(request: Request, serial: Serial, session: SessionDep) -> Response:
    """Anyone may check a serial: name, course, date and ``valid`` or ``revoked``."""
    body = certificates.verify_certificate(session, serial).model_dump_json().encode()
    tag = etag_of(body)
    if etag_matches(if_none_match(request.scope), tag.encode()):
        return Response(status_code=304, headers=_public_headers(tag))
    return Response(body, media_type="application/json", headers=_public_headers(tag))


@router.get(
    "/certificates/{serial}/pdf/",
    summary="Download a certificate as PDF (public)",
    response_class=Response,
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "A one-page PDF.",
        },
        304: {"description": "Not modified: If-None-Match named the current ETag."},
        **problem_responses(404, 422),
    },
)
def download_certificate(request: Request, serial: Serial, session: SessionDep) -> Response:
    """One landscape page: name, course, date, serial, the verification URL and its QR code
    (a revoked certificate says so on the page)."""
    header = if_none_match(request.scope)
    pdf = certificate_pdf(
        session, serial, client_has=lambda tag: etag_matches(header, tag.encode())
    )
    headers = {
        **_public_headers(pdf.etag),
        "Content-Disposition": f'inline; filename="certificate-{serial}.pdf"',
    }
    if pdf.not_modified:
        return Response(status_code=304, headers=headers)
    return Response(pdf.body, media_type="application/pdf", headers=headers)


@router.post(
    "/certificates/{serial}/revoke/",
    summary="Revoke a certificate (admin)",
    response_model=CertificateAdminView,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
)
def revoke_certificate(
    serial: Serial, body: CertificateRevoke, actor: CurrentUser, session: SessionDep
) -> Response:
    """``status: revoked`` from now on, everywhere; the reason is kept and audited."""
    certificate, username = certificates.revoke_certificate(session, actor, serial, body.reason)
    return json_response(certificates.to_admin_view(certificate, username))
