"""A release's evidence as a printable page, its signed JSON to download, and a form that
tells whether a saved copy was altered."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from releases.evidence import release_evidence, verify
from releases.views.common import release_or_404

# A saved evidence file is a few hundred KB at most; anything larger is not one.
MAX_EVIDENCE_BYTES = 5 * 1024 * 1024


def _evidence(request, pk: int) -> dict:
    release = release_or_404(request, pk, "jenkins_server", "drone_server", "requested_by")
    return release_evidence(release, generated_by=request.user.get_username())


@login_required
def evidence_page(request, pk: int):
    document = _evidence(request, pk)
    return render(request, "releases/evidence.html", {"evidence": document, "pk": pk})


@login_required
def evidence_json(request, pk: int):
    document = _evidence(request, pk)
    answer = HttpResponse(
        json.dumps(document, indent=2, ensure_ascii=False), content_type="application/json"
    )
    answer["Content-Disposition"] = f'attachment; filename="release-{pk}-evidence.json"'
    return answer


@login_required
@require_http_methods(["GET", "POST"])
def evidence_verify(request):
    """Upload (or paste) a saved evidence file: valid, or altered."""
    if request.method == "GET":
        return render(request, "releases/evidence_verify.html", {"check": None})
    upload = request.FILES.get("file")
    if upload is not None and upload.size > MAX_EVIDENCE_BYTES:
        said = f"The file is larger than {MAX_EVIDENCE_BYTES // 1024 // 1024} MB: not evidence."
        return render(request, "releases/evidence_verify.html", {"error": said}, status=413)
    raw = upload.read() if upload is not None else request.POST.get("text", "").encode()
    try:
        document = json.loads(raw)
    except ValueError:
        said = "That is not JSON: upload the file Slipway gave you, unchanged."
        return render(request, "releases/evidence_verify.html", {"error": said}, status=400)
    check = verify(document)
    return render(
        request,
        "releases/evidence_verify.html",
        {"check": check},
        status=200 if check.valid else 400,
    )
