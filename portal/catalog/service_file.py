"""`slipway.yaml`: a service declared in its own repository, read strictly (an unknown
field is an error, not a silence), every error with the line it is on.

    apiVersion: slipway.dev/v1
    kind: Service
    metadata:
      name: storefront            # the service's slug
      title: Storefront
      team: shop                  # a team's slug
    spec:
      chart: {ref: oci://registry.example.com/charts/web, version: 1.4.2}
      image:
        repository: registry.example.com/shop/storefront
        values: {image: {repository: "{repository}", digest: "{digest}"}}   # optional
      build: {backend: jenkins, server: main, job: shop/storefront}
      # or: build: {backend: drone, server: drone, repository: shop/storefront}
      values: {replicaCount: 2}   # the chart's values for every environment
      targets:
        - {environment: beta, cluster: beta-1, namespace: shop-beta}
        - {environment: prod, cluster: prod-1, namespace: shop-prod, release: storefront,
           values: {replicaCount: 4}, wave: 1}

Backstage's `catalog-info.yaml` may point here instead: a Component with the annotation
`slipway.dev/service: <slug>` names the service this repository's `slipway.yaml` declares,
and its `metadata.name` is kept as the Backstage entity the service links back to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ValidationError

from portal.catalog.validators import dns_label
from portal.core.images import validate_image_values

API_VERSION = "slipway.dev/v1"
FILE = "slipway.yaml"
BACKSTAGE_FILE = "catalog-info.yaml"
BACKSTAGE_ANNOTATION = "slipway.dev/service"
BACKENDS = ("jenkins", "drone")
TARGET_FIELDS = {"environment", "cluster", "namespace", "release", "values", "wave", "variables"}
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def orphan_refusal(service) -> str:
    """Why an orphaned service neither builds nor deploys."""
    where = service.catalog_repository or "its repository"
    return (
        f"{service.name} is orphaned: its {FILE} is gone from {where} "
        f"(since {service.orphaned_at:%Y-%m-%d %H:%M} UTC). Its history is kept; it builds and "
        "deploys again once the file is back."
    )


class FileInvalid(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class TargetSpec:
    environment: str
    cluster: str
    namespace: str
    release: str
    values: dict
    wave: int
    line: int | None = None
    # name → a plain value, or {"secret": NAME}: the environment's secret variable NAME,
    # kept by an admin in Slipway (a file never holds a secret).
    variables: dict = field(default_factory=dict)


@dataclass
class ServiceSpec:
    slug: str
    name: str
    team: str
    chart: str
    chart_version: str
    image_repository: str
    image_values: dict | None
    build_backend: str
    build_server: str
    build_job: str
    default_values: dict
    targets: list[TargetSpec] = field(default_factory=list)
    backstage_entity: str = ""
    # Per environment: {"environment", "prometheus", "metrics": [{name, query, …}], "line"}
    # (applied by the release engine, which owns verification: releases/declared.py).
    verification: list[dict] = field(default_factory=list)
    # Gates the service adds before a release leaves an environment: {"environment", "name",
    # "kind", "soak_minutes" (None: not said), "prometheus_url", "query", "min_value",
    # "max_value", "line"}
    # (applied by the release engine, which owns gates: releases/declared.py).
    gates: list[dict] = field(default_factory=list)


class DeclarationRefused(Exception):
    """What a part of Slipway that reads the file refuses (raised by a receiver of
    `service_declared`), with the line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class _Reader:
    """Walks the parsed document beside its node tree, for the line of every value."""

    def __init__(self, text: str) -> None:
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise FileInvalid(f"not valid YAML: {exc.problem}", line) from exc
        except yaml.YAMLError as exc:
            raise FileInvalid(f"not valid YAML: {exc}") from exc

    def line(self, path: tuple) -> int | None:
        node, line = self.root, None
        for key in path:
            if node is None:
                break
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == key), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                node = node.value[key] if key < len(node.value) else None
            else:
                node = None
        return node.start_mark.line + 1 if node is not None else line

    def fail(self, path: tuple, message: str) -> FileInvalid:
        where = ".".join(str(p) for p in path)
        return FileInvalid(f"{where}: {message}" if where else message, self.line(path))

    def mapping(self, value, path: tuple, allowed: set[str], required: set[str] = frozenset()):
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        for key in value:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail((*path, key), f"unknown field (known here: {known})")
        for key in sorted(required - set(value)):
            raise self.fail(path, f"{key} is required")
        return value

    def text(self, value, path: tuple, *, required: bool = True, limit: int = 200) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(path, "must be a text")
        text = str(value).strip()
        if required and not text:
            raise self.fail(path, "must not be empty")
        if len(text) > limit:
            raise self.fail(path, f"is longer than {limit} characters")
        return text

    def label(self, value, path: tuple) -> str:
        text = self.text(value, path)
        try:
            dns_label(text)
        except ValidationError as exc:
            raise self.fail(path, " ".join(exc.messages)) from exc
        return text


def parse_service_file(text: str) -> ServiceSpec:
    """The service `text` declares; raises FileInvalid naming the line."""
    read = _Reader(text)
    doc = read.mapping(read.data, (), {"apiVersion", "kind", "metadata", "spec"},
                       {"apiVersion", "kind", "metadata", "spec"})  # fmt: skip
    if doc["apiVersion"] != API_VERSION:
        raise read.fail(("apiVersion",), f"must be {API_VERSION}")
    if doc["kind"] != "Service":
        raise read.fail(("kind",), "must be Service")
    meta = read.mapping(doc["metadata"], ("metadata",), {"name", "title", "team"}, {"name", "team"})
    spec = read.mapping(doc["spec"], ("spec",), {"chart", "image", "build", "values", "targets",
                        "verification", "gates"}, {"chart", "image", "build"})  # fmt: skip
    chart = read.mapping(spec["chart"], ("spec", "chart"), {"ref", "version"}, {"ref"})
    image = read.mapping(spec["image"], ("spec", "image"), {"repository", "values"}, {"repository"})
    image_values = image.get("values")
    if image_values is not None:
        try:
            validate_image_values(image_values)
        except ValidationError as exc:
            raise read.fail(("spec", "image", "values"), " ".join(exc.messages)) from exc
    build = read.mapping(spec["build"], ("spec", "build"), {"backend", "server", "job",
                         "repository"}, {"server"})  # fmt: skip
    backend = read.text(build.get("backend", "jenkins"), ("spec", "build", "backend"))
    if backend not in BACKENDS:
        raise read.fail(("spec", "build", "backend"), f"must be one of {', '.join(BACKENDS)}")
    what = "repository" if backend == "drone" else "job"
    if what not in build:
        raise read.fail(("spec", "build"), f"{what} is required for {backend}")
    values = spec.get("values") or {}
    if not isinstance(values, dict):
        raise read.fail(("spec", "values"), "must be a mapping of chart values")
    service = ServiceSpec(
        slug=read.label(meta["name"], ("metadata", "name")),
        name=read.text(meta.get("title") or meta["name"], ("metadata", "title"), limit=100),
        team=read.label(meta["team"], ("metadata", "team")),
        chart=read.text(chart["ref"], ("spec", "chart", "ref")),
        chart_version=read.text(
            chart.get("version"), ("spec", "chart", "version"), required=False, limit=50
        ),
        image_repository=read.text(image["repository"], ("spec", "image", "repository")),
        image_values=image_values,
        build_backend=backend,
        build_server=read.text(build["server"], ("spec", "build", "server"), limit=100),
        build_job=read.text(build[what], ("spec", "build", what)),
        default_values=values,
    )
    targets = spec.get("targets") or []
    if not isinstance(targets, list):
        raise read.fail(("spec", "targets"), "must be a list")
    seen = set()
    for i, raw in enumerate(targets):
        path = ("spec", "targets", i)
        item = read.mapping(raw, path, TARGET_FIELDS, {"environment", "cluster", "namespace"})
        wave = item.get("wave", 1)
        if not isinstance(wave, int) or isinstance(wave, bool) or not 1 <= wave <= 20:
            raise read.fail((*path, "wave"), "must be a whole number from 1 to 20")
        target_values = item.get("values") or {}
        if not isinstance(target_values, dict):
            raise read.fail((*path, "values"), "must be a mapping of chart values")
        variables = item.get("variables") or {}
        if not isinstance(variables, dict):
            raise read.fail((*path, "variables"), "must be a mapping of NAME: value")
        for name, value in variables.items():
            where = (*path, "variables", name)
            if not isinstance(name, str) or not ENV_NAME_RE.match(name):
                raise read.fail(where, "a variable's name is upper case letters, digits and _")
            if isinstance(value, dict):
                if set(value) != {"secret"} or not isinstance(value["secret"], str):
                    raise read.fail(where, "a reference is {secret: NAME}")
            elif not isinstance(value, str | int | float) or isinstance(value, bool):
                raise read.fail(where, "must be a text, or {secret: NAME}")
        target = TargetSpec(
            environment=read.label(item["environment"], (*path, "environment")),
            cluster=read.text(item["cluster"], (*path, "cluster"), limit=100),
            namespace=read.label(item["namespace"], (*path, "namespace")),
            release=read.label(item.get("release") or service.slug, (*path, "release")),
            values=target_values,
            wave=wave,
            variables={k: v if isinstance(v, dict) else str(v) for k, v in variables.items()},
            line=read.line(path),
        )
        key = (target.environment, target.cluster)
        if key in seen:
            raise read.fail(path, f"a second target in {key[0]} on {key[1]}")
        seen.add(key)
        service.targets.append(target)
    service.verification = _verification(read, spec.get("verification") or [])
    service.gates = _gates(read, spec.get("gates") or [])
    return service


# Per kind, the fields a gate may have besides environment, name and kind.
GATE_FIELDS = {
    "soak": {"minutes"},
    "prometheus": {"prometheus", "query", "min", "max", "window"},
    "checklist": set(),
}


def _minutes(read: _Reader, value, path: tuple) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10080:
        raise read.fail(path, "a whole number of minutes from 1 to 10080 (a week)")
    return value


def _bound(read: _Reader, value, path: tuple) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise read.fail(path, "a number")
    return float(value)


def _gates(read: _Reader, entries) -> list[dict]:
    """`spec.gates`: what must hold before a release of this service leaves an environment,
    in addition to the environment's own gates (docs/gates.md): soak, prometheus, checklist."""
    if not isinstance(entries, list):
        raise read.fail(("spec", "gates"), "must be a list of gates")
    found, seen = [], set()
    for i, raw in enumerate(entries):
        path = ("spec", "gates", i)
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind not in GATE_FIELDS:
            where = (*path, "kind") if isinstance(raw, dict) and "kind" in raw else path
            raise read.fail(where, f"kind must be one of {', '.join(GATE_FIELDS)}")
        entry = read.mapping(raw, path, {"environment", "name", "kind", *GATE_FIELDS[kind]},
                             {"environment", "name", "kind"})  # fmt: skip
        environment = read.label(entry["environment"], (*path, "environment"))
        name = read.text(entry["name"], (*path, "name"), limit=100)
        if (environment, name) in seen:
            raise read.fail((*path, "name"), f"a second gate {name} in {environment}")
        seen.add((environment, name))
        # soak_minutes None: the gate model's own default (the release engine fills it in).
        gate = {"environment": environment, "name": name, "kind": kind, "soak_minutes": None,
                "prometheus_url": "", "query": "", "min_value": None, "max_value": None,
                "line": read.line(path)}  # fmt: skip
        if kind == "soak" and "minutes" in entry:
            gate["soak_minutes"] = _minutes(read, entry["minutes"], (*path, "minutes"))
        if kind == "prometheus":
            for key in ("prometheus", "query"):
                if key not in entry:
                    raise read.fail(path, f"{key} is required for a prometheus gate")
            url = read.text(entry["prometheus"], (*path, "prometheus"))
            if not url.startswith(("http://", "https://")):
                raise read.fail((*path, "prometheus"), "an http:// or https:// address")
            gate["prometheus_url"] = url
            gate["query"] = read.text(entry["query"], (*path, "query"), limit=2000)
            gate["min_value"] = _bound(read, entry.get("min"), (*path, "min"))
            gate["max_value"] = _bound(read, entry.get("max"), (*path, "max"))
            if gate["min_value"] is None and gate["max_value"] is None:
                raise read.fail(path, "give min, max or both")
            if "window" in entry:
                gate["soak_minutes"] = _minutes(read, entry["window"], (*path, "window"))
        found.append(gate)
    return found


METRIC_FIELDS = {
    "name": "name",
    "query": "query",
    "interval": "interval_seconds",
    "count": "count",
    "initialDelay": "initial_delay_seconds",
    "successCondition": "success_condition",
    "failureCondition": "failure_condition",
    "failureLimit": "failure_limit",
    "inconclusiveLimit": "inconclusive_limit",
}


def _verification(read: _Reader, entries) -> list[dict]:
    """`spec.verification`: per environment, a Prometheus and metrics in Argo Rollouts'
    words (successCondition, failureLimit …); the conditions are checked by the engine."""
    if not isinstance(entries, list):
        raise read.fail(("spec", "verification"), "must be a list, one entry per environment")
    found, seen = [], set()
    for i, raw in enumerate(entries):
        path = ("spec", "verification", i)
        entry = read.mapping(raw, path, {"environment", "prometheus", "metrics"},
                             {"environment", "prometheus", "metrics"})  # fmt: skip
        environment = read.label(entry["environment"], (*path, "environment"))
        if environment in seen:
            raise read.fail(path, f"a second verification for {environment}")
        seen.add(environment)
        prometheus = read.text(entry["prometheus"], (*path, "prometheus"))
        if not prometheus.startswith(("http://", "https://")):
            raise read.fail((*path, "prometheus"), "an http:// or https:// address")
        metrics = entry["metrics"]
        if not isinstance(metrics, list) or not metrics:
            raise read.fail((*path, "metrics"), "a list of one or more metrics")
        made = []
        for j, metric in enumerate(metrics):
            where = (*path, "metrics", j)
            metric = read.mapping(metric, where, set(METRIC_FIELDS), {"name", "query"})
            # Where each value is, for what the engine refuses (a condition it cannot read).
            row = {"_lines": {column: read.line((*where, key)) for key, column in
                              METRIC_FIELDS.items() if key in metric}}  # fmt: skip
            for key, column in METRIC_FIELDS.items():
                if key not in metric:
                    continue
                value = metric[key]
                if column.endswith(("_seconds", "count", "_limit")):
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        raise read.fail((*where, key), "a whole number, 0 or more")
                    row[column] = value
                else:
                    row[column] = read.text(value, (*where, key), limit=2000)
            made.append(row)
        found.append({"environment": environment, "prometheus": prometheus, "metrics": made,
                      "line": read.line(path)})  # fmt: skip
    return found


def backstage_pointer(text: str) -> tuple[str, str] | None:
    """From a Backstage `catalog-info.yaml`: (the Slipway service it names, its entity
    ref), or None when it names none. Several documents may be in one file."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        return None
    for doc in documents:
        meta = doc.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        slug = annotations.get(BACKSTAGE_ANNOTATION) if isinstance(annotations, dict) else None
        if slug:
            kind = str(doc.get("kind", "Component")).lower()
            namespace = meta.get("namespace") or "default"
            return str(slug), f"{kind}:{namespace}/{meta.get('name', slug)}"
    return None
