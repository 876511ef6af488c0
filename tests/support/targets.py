"""Saving a deployment target through the team page, as a team or platform admin would."""

from __future__ import annotations


def save_target(client, target, **changes):
    """POST the team page's form for `target` with `changes`; the response after redirects
    and its text (where the page's message is)."""
    fields = {
        "service": target.service_id,
        "environment": target.environment_id,
        "cluster": target.cluster_id,
        "namespace": target.namespace,
        "helm_release_name": target.helm_release_name,
        "values": "{}",
        **changes,
    }
    response = client.post(
        f"/teams/{target.service.team.slug}/targets/{target.pk}",
        {f"t{target.pk}-{key}": value for key, value in fields.items()},
        follow=True,
    )
    return response, response.content.decode()
