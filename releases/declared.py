"""The part of a service's `slipway.yaml` the release engine owns: its verification
(docs/catalog.md). Each `spec.verification` entry becomes the service's analysis template
"slipway.yaml" in that environment (metrics replaced as the file says); an environment
left out of the file loses that template. Templates an admin made are never touched.
"""

from __future__ import annotations

from django.db import transaction

from portal.catalog.models import Environment
from portal.catalog.service_file import FILE, DeclarationRefused, ServiceSpec
from releases.analysis import ConditionError, parse_condition
from releases.models import AnalysisMetric, AnalysisTemplate

TEMPLATE = FILE  # the name of the templates a file declares


def _metrics(template: AnalysisTemplate) -> list[dict]:
    fields = (
        "name", "query", "interval_seconds", "count", "initial_delay_seconds",
        "success_condition", "failure_condition", "failure_limit", "inconclusive_limit",
    )  # fmt: skip
    return [{f: getattr(m, f) for f in fields} for m in template.metrics.all()]


def _complete(metric: dict) -> dict:
    defaults = {"interval_seconds": 60, "count": 5, "initial_delay_seconds": 0,
                "success_condition": "", "failure_condition": "", "failure_limit": 0,
                "inconclusive_limit": 0}  # fmt: skip
    return {**defaults, **metric}


def verification_declared(sender, service, spec: ServiceSpec, apply: bool, **kwargs) -> list[str]:
    """Plan (and with `apply`, make) the service's verification as its file says."""
    wanted = {}
    for entry in spec.verification:
        environment = Environment.objects.filter(slug=entry["environment"]).first()
        if environment is None:
            raise DeclarationRefused(f"verification: no environment {entry['environment']}",
                                     entry["line"])  # fmt: skip
        metrics = []
        for declared in entry["metrics"]:
            lines = declared.get("_lines", {})
            metric = _complete({k: v for k, v in declared.items() if k != "_lines"})
            for key in ("success_condition", "failure_condition"):
                try:
                    parse_condition(metric[key])
                except ConditionError as exc:
                    raise DeclarationRefused(
                        f"verification: {metric['name']}: {exc}", lines.get(key, entry["line"])
                    ) from exc
            metrics.append(metric)
        wanted[environment.pk] = (environment, entry["prometheus"], metrics)
    have = {}
    if service is not None and service.pk:
        for template in AnalysisTemplate.objects.filter(service=service, name=TEMPLATE):
            have[template.environment_id] = template
    said = []
    for pk, (environment, prometheus, metrics) in wanted.items():
        current = have.get(pk)
        if current is None:
            said.append(f"+ verification in {environment.slug}: {len(metrics)} metric(s)")
        elif current.prometheus_url != prometheus or _metrics(current) != metrics:
            said.append(f"~ verification in {environment.slug}")
    for pk, template in have.items():
        if pk not in wanted:
            said.append(f"- verification in {template.environment.slug}")
    if apply and said:
        with transaction.atomic():
            for environment, prometheus, metrics in wanted.values():
                template, _ = AnalysisTemplate.objects.update_or_create(
                    environment=environment, service=service, name=TEMPLATE,
                    defaults={"prometheus_url": prometheus, "enabled": True},
                )  # fmt: skip
                template.metrics.all().delete()
                AnalysisMetric.objects.bulk_create(
                    AnalysisMetric(template=template, order=i, **metric)
                    for i, metric in enumerate(metrics)
                )
            for pk, template in have.items():
                if pk not in wanted:
                    template.delete()
    return said
