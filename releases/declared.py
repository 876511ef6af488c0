"""The parts of a service's `slipway.yaml` the release engine owns (docs/catalog.md):

- its verification: each `spec.verification` entry becomes the service's analysis template
  "slipway.yaml" in that environment (metrics replaced as the file says); an environment
  left out of the file loses that template. Templates an admin made are never touched.
- its gates: each `spec.gates` entry is a promotion gate of that environment for this
  service only, found again by its name; a gate gone from the file is disabled, not
  deleted (its results and ticks stay in the releases' evidence). The environment's own
  gates are never touched: a file adds gates, it cannot take one away.
"""

from __future__ import annotations

from django.db import transaction

from portal.catalog.models import Environment
from portal.catalog.service_file import FILE, DeclarationRefused, ServiceSpec
from releases.analysis import ConditionError, parse_condition
from releases.models import AnalysisMetric, AnalysisTemplate, PromotionGate

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


GATE_FIELDS = ("kind", "soak_minutes", "prometheus_url", "query", "min_value", "max_value")


def gates_declared(sender, service, spec: ServiceSpec, apply: bool, **kwargs) -> list[str]:
    """Plan (and with `apply`, make) the gates the service's file adds."""
    environments = {}
    for gate in spec.gates:
        slug = gate["environment"]
        if slug not in environments:
            environments[slug] = Environment.objects.filter(slug=slug).first()
        if environments[slug] is None:
            raise DeclarationRefused(f"gates: no environment {slug}", gate["line"])
    have = {}
    if service is not None and service.pk:
        for gate in PromotionGate.objects.filter(service=service).select_related("environment"):
            have[(gate.environment.slug, gate.name)] = gate
    said, wanted = [], {}
    for gate in spec.gates:
        key = (gate["environment"], gate["name"])
        wanted[key] = {f: gate[f] for f in GATE_FIELDS}
        if wanted[key]["soak_minutes"] is None:  # not said in the file
            wanted[key]["soak_minutes"] = PromotionGate._meta.get_field("soak_minutes").default
        current = have.get(key)
        if current is None or not current.enabled:
            said.append(f"+ gate {gate['name']} ({gate['kind']}) in {gate['environment']}")
        elif any(getattr(current, f) != v for f, v in wanted[key].items()):
            said.append(f"~ gate {gate['name']} in {gate['environment']}")
    for key, gate in have.items():
        if key not in wanted and gate.enabled:
            said.append(f"- gate {gate.name} in {gate.environment.slug}")
    if apply and said:
        with transaction.atomic():
            for order, ((slug, name), fields) in enumerate(wanted.items()):
                PromotionGate.objects.update_or_create(
                    environment=environments[slug], service=service, name=name,
                    defaults={**fields, "order": order, "enabled": True},
                )  # fmt: skip
            gone = [gate.pk for key, gate in have.items() if key not in wanted and gate.enabled]
            PromotionGate.objects.filter(pk__in=gone).update(enabled=False)
    return said
