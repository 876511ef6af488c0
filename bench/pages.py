"""Pages and API pages as a lead sees them, each beside the raw SQL for the same rows."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

from bench.measure import Figure, RawSQL, count_queries, paired_timings
from bench.seed import World

DASHBOARD_SQL = """
SELECT s.id, s.slug, s.name, t.slug, e.slug, d.id, d.status, d.finished_at, d.image,
       r.id, r.ref, r.image_digest, u.username
FROM portal_service s
JOIN portal_team t ON t.id = s.team_id
JOIN portal_deploymenttarget dt ON dt.service_id = s.id
JOIN portal_environment e ON e.id = dt.environment_id
LEFT JOIN LATERAL (
    SELECT d.* FROM releases_targetrollout tr
    JOIN releases_deployment d ON d.id = tr.deployment_id
    WHERE tr.target_id = dt.id
      AND (tr.status = 'succeeded' OR (tr.status = 'failed' AND tr.helm_revision IS NOT NULL))
    ORDER BY tr.finished_at DESC NULLS LAST, tr.id DESC LIMIT 1
) d ON true
LEFT JOIN releases_release r ON r.id = d.release_id
LEFT JOIN auth_user u ON u.id = d.requested_by_id
WHERE s.id IN (SELECT id FROM portal_service WHERE team_id = ANY(%(teams)s) {search}
               ORDER BY name, id LIMIT 50)
ORDER BY s.name, e."order", dt.wave
"""

SERVICE_SQL = """
SELECT r.id, r.ref, r.status, r.image_digest, r.created_at, u.username,
       (SELECT d.id FROM releases_deployment d
        WHERE d.service_id = r.service_id AND d.environment_id = %(beta)s
          AND d.status = 'succeeded'
        ORDER BY d.id DESC LIMIT 1) AS beta_now,
       (SELECT d.id FROM releases_deployment d
        WHERE d.service_id = r.service_id AND d.environment_id = %(prod)s
          AND d.status = 'succeeded'
        ORDER BY d.id DESC LIMIT 1) AS prod_now
FROM releases_release r LEFT JOIN auth_user u ON u.id = r.requested_by_id
WHERE r.service_id = %(service)s
ORDER BY r.id DESC LIMIT 25
"""

RELEASES_SQL = """
SELECT r.*, s.slug, u.username,
  (SELECT coalesce(json_agg(to_jsonb(d) || jsonb_build_object(
            'environment', e.slug, 'requested_by', du.username,
            'approved_by', au.username, 'decision_comment', a.comment) ORDER BY d.id), '[]')
   FROM releases_deployment d
   JOIN portal_environment e ON e.id = d.environment_id
   LEFT JOIN auth_user du ON du.id = d.requested_by_id
   LEFT JOIN releases_approval a ON a.deployment_id = d.id
   LEFT JOIN auth_user au ON au.id = a.decided_by_id
   WHERE d.release_id = r.id) AS deployments
FROM releases_release r
JOIN portal_service s ON s.id = r.service_id
LEFT JOIN auth_user u ON u.id = r.requested_by_id
WHERE s.team_id = ANY(%(teams)s) {where}
ORDER BY r.id DESC LIMIT 51
"""

DEPLOYMENTS_SQL = """
SELECT d.*, s.slug, e.slug, r.ref, r.image_digest, u.username, a.comment, au.username
FROM releases_deployment d
JOIN portal_service s ON s.id = d.service_id
JOIN portal_environment e ON e.id = d.environment_id
JOIN releases_release r ON r.id = d.release_id
LEFT JOIN auth_user u ON u.id = d.requested_by_id
LEFT JOIN releases_approval a ON a.deployment_id = d.id
LEFT JOIN auth_user au ON au.id = a.decided_by_id
WHERE s.team_id = ANY(%(teams)s)
ORDER BY d.id DESC LIMIT 51
"""

AUDIT_SQL = """
SELECT * FROM portal_auditevent
WHERE (team_id = ANY(%(teams)s) OR (actor_id = %(actor)s AND actor_type IN ('user', 'token')))
  AND target_type = %(type)s AND target_id = %(id)s
ORDER BY id DESC LIMIT 51
"""


def _cursor(position: int) -> str:
    """A DRF cursor that starts just older than `position` (what `next` links carry)."""
    return quote(base64.b64encode(urlencode({"p": str(position)}).encode()).decode())


class Pages:
    def __init__(self, world: World, raw: RawSQL, repeat: int) -> None:
        from django.contrib.auth import get_user_model
        from django.test import Client

        from portal.access.choices import TokenScope
        from portal.access.tokens import token_issue

        self.world, self.raw, self.repeat = world, raw, repeat
        lead = get_user_model().objects.get(username=world.lead_username)
        self.browser = Client()
        self.browser.force_login(lead)
        token = token_issue(user=lead, name="bench", scopes=TokenScope.values)[1]
        self.api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        self.teams = sorted(set(world.teams.values()))

    def measure(
        self, name: str, client, url: str, sql: str, params: dict, goal: str = ""
    ) -> Figure:
        def get():
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
            if response.streaming:
                return sum(len(chunk) for chunk in response.streaming_content)
            return len(response.content)

        queries = count_queries(get)
        size = get()
        times, raw = paired_timings(get, self.raw.runner(sql, params), self.repeat)
        return Figure(
            name, times, queries=queries, raw_ms=raw, goal=goal, extra={"kb": round(size / 1024, 1)}
        )

    def dashboard(self, label: str) -> Figure:
        return self.measure(
            f"dashboard first page, {len(self.world.services):,} services × 3 ({label})",
            self.browser,
            "/",
            DASHBOARD_SQL.format(search=""),
            {"teams": self.teams},
            goal="constant queries, p95 ≤ 300 ms, ≤ 150 KB",
        )

    def dashboard_search(self) -> Figure:
        return self.measure(
            f"dashboard search by name among {len(self.world.services):,} services",
            self.browser,
            "/?q=svc-12",
            DASHBOARD_SQL.format(search="AND (name ILIKE %(q)s OR slug ILIKE %(q)s)"),
            {"teams": self.teams, "q": "%svc-12%"},
            goal="≤ 200 ms",
        )

    def service_page(self, slug: str, label: str) -> Figure:
        service = next(pk for pk, s in self.world.slugs.items() if s == slug)
        return self.measure(
            f"service page {slug} ({label})",
            self.browser,
            f"/services/{slug}/",
            SERVICE_SQL,
            {"service": service, "beta": self.world.beta, "prod": self.world.prod},
            goal="independent of history size",
        )

    def api_pages(self) -> list[Figure]:
        deep = self.raw.rows(
            "SELECT id FROM releases_release ORDER BY id DESC OFFSET 500000 LIMIT 1"
        )
        position = deep[0][0] if deep else 1
        service = self.world.services[7]
        goal = "≤ 10× raw SQL, ≤ 8 queries"
        return [
            self.measure(
                "API releases, first page of 50",
                self.api,
                "/api/v1/releases/",
                RELEASES_SQL.format(where=""),
                {"teams": self.teams},
                goal=goal,
            ),
            self.measure(
                "API releases, page at 500,000 (cursor)",
                self.api,
                f"/api/v1/releases/?cursor={_cursor(position)}",
                RELEASES_SQL.format(where="AND r.id < %(position)s"),
                {"teams": self.teams, "position": position},
                goal=goal + ", ≤ 2× first page",
            ),
            self.measure(
                "API releases, filtered by service + status",
                self.api,
                f"/api/v1/releases/?service={self.world.slugs[service]}&status=failed",
                RELEASES_SQL.format(where="AND r.service_id = %(service)s AND r.status = 'failed'"),
                {"teams": self.teams, "service": service},
                goal=goal,
            ),
            self.measure(
                "API deployments, first page of 50",
                self.api,
                "/api/v1/deployments/",
                DEPLOYMENTS_SQL,
                {"teams": self.teams},
                goal=goal,
            ),
        ]

    def audit_pages(self) -> list[Figure]:
        target = self.raw.rows(
            "SELECT target_id FROM portal_auditevent WHERE target_type = 'releases.Release' "
            "ORDER BY id DESC OFFSET 200000 LIMIT 1"
        )
        target_id = target[0][0] if target else "1"
        params = {
            "teams": self.teams,
            "actor": str(self.world.lead_id),
            "type": "releases.Release",
            "id": target_id,
        }
        query = f"target_type=releases.Release&target_id={target_id}"
        return [
            self.measure(
                "API audit events, filtered by target",
                self.api,
                f"/api/v1/audit-events/?{query}",
                AUDIT_SQL,
                params,
                goal="≤ 10× raw SQL, ≤ 8 queries",
            ),
            self.measure(
                "audit page, filtered by target",
                self.browser,
                f"/audit/?{query}",
                AUDIT_SQL,
                params,
                goal="≤ 10× raw SQL",
            ),
        ]
