"""The API's rate per caller holds under a burst: requests at once, across web processes,
are counted atomically (DRF's own throttle read and wrote back a list of timestamps, so
requests at once all read the same list and a burst passed the limit)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from portal.access.choices import TokenScope
from portal.access.tokens import token_issue
from tests.conftest import database_url_for
from tests.factories import UserFactory
from tests.support.web import WebProcess


@pytest.fixture
def limited_server(tmp_path):
    """The portal as the Procfile serves it, two processes, 5 API requests a minute."""
    web = WebProcess(
        tmp_path / "web.log",
        workers=2,
        env={
            "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SLIPWAY_API_RATE": "5/min",
        },
    )
    yield web.url
    web.stop()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_requests_passes_exactly_the_rate(limited_server):
    token = token_issue(user=UserFactory(), name="burst", scopes=TokenScope.values)[1]
    other = token_issue(user=UserFactory(), name="other", scopes=TokenScope.values)[1]

    def call(raw: str) -> requests.Response:
        return requests.get(
            f"{limited_server}/api/v1/me", headers={"Authorization": f"Bearer {raw}"}, timeout=30
        )

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(call, [token] * 40))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 5 + [429] * 35
    refused = [a for a in answers if a.status_code == 429]
    assert all(a.headers["Content-Type"] == "application/problem+json" for a in refused)
    # The minute's rest, and a fifth of the next, for one of its five to slide out.
    assert all(1 <= int(a.headers["Retry-After"]) <= 72 for a in refused)
    # Refused requests are not counted against the caller, and other callers are apart.
    assert call(other).status_code == 200
