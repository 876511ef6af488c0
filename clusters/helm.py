"""The one door to Helm: pyhelm3 (which runs the `helm` binary) behind small
dataclasses and Slipway's errors.

The portal never uses `helm --wait`: success is judged by the rollout watcher
(clusters/rollout.py) on the Kubernetes API, which is also what the page shows.
Each revision Slipway makes carries its deployment's marker in its description, so a
retried step finds the revision it already made instead of upgrading twice.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyhelm3
import yaml
from django.conf import settings
from pyhelm3 import errors as helm_errors
from pyhelm3.client import mergeconcat

from clusters.errors import ClusterUnreachable, HelmFailed, HelmMissing, HelmReleaseNotFound
from clusters.kubeconfig import kubeconfig_checked, kubeconfig_file

HISTORY_MAX = 10


class Ownership:
    """Who a Helm release belongs to, read from its owner label (helm --labels)."""

    ABSENT = "absent"  # no such release yet: an install labels it
    OURS = "ours"  # labelled with the asking owner
    OTHER = "other"  # labelled with another owner
    UNOWNED = "unowned"  # exists without an owner label (installed outside Slipway)


def helm_deadline_seconds(timeout_seconds: float) -> float:
    """When a helm run is stopped whatever it is doing: its own --timeout, and a little."""
    return timeout_seconds + 5


@dataclass(frozen=True)
class HelmRevision:
    revision: int
    status: str  # helm's word: deployed, superseded, failed, pending-upgrade, …
    updated: datetime
    description: str
    chart: str = ""

    @property
    def deployed(self) -> bool:
        """What the release runs now (helm's current, good revision)."""
        return self.status == "deployed"

    @property
    def pending(self) -> bool:
        """A helm run left it mid-way (pending-install, -upgrade or -rollback)."""
        return self.status.startswith("pending-")

    @property
    def ran(self) -> bool:
        """Was deployed at some point: a revision to roll back to."""
        return self.status in ("deployed", "superseded")


@dataclass(frozen=True)
class Recovery:
    """What `recover_stuck` did to a release left pending."""

    action: str  # "rolled-back" | "uninstalled"
    from_revision: int
    from_status: str
    to_revision: int | None


def helm_executable() -> str:
    """SLIPWAY_HELM, else helm on PATH; a deployment fails at once, saying so, without one."""
    configured = settings.SLIPWAY_HELM
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise HelmMissing(
                f"SLIPWAY_HELM={configured} is not an executable file; point it at a helm 3 binary."
            )
        return configured
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    raise HelmMissing(
        "helm not found: install helm 3 on the worker's PATH or set SLIPWAY_HELM to its path "
        "(for local development, `python -m devtools.kube build` builds one and prints it)."
    )


@functools.lru_cache(maxsize=8)
def _client_version(executable: str):
    return pyhelm3.Command(executable=executable).client_version()


def _go_environment() -> list[str]:
    """`NAME=value` words for helm's Go runtime (see SLIPWAY_HELM_MEMORY_LIMIT): collect
    garbage only near the limit. A GOGC or GOMEMLIMIT the worker was started with wins."""
    limit = settings.SLIPWAY_HELM_MEMORY_LIMIT
    if not limit or "GOGC" in os.environ or "GOMEMLIMIT" in os.environ:
        return []
    return ["GOGC=off", f"GOMEMLIMIT={limit}"]


class _Command(pyhelm3.Command):
    """pyhelm3 runs `helm version` each time a client is made (one per Helm call); the
    binary does not change under a running worker, so it is asked once per executable.
    helm runs through `env`, with its Go runtime's settings: pyhelm3 passes no environment
    of its own, and setting the worker's would reach every Go program it starts."""

    def __init__(self, *, executable: str, **options) -> None:
        super().__init__(executable="env", **options)
        self._helm = executable

    async def run(self, command: list, input: bytes | None = None) -> bytes:
        return await super().run([*_go_environment(), self._helm, *command], input)

    def client_version(self):
        return _client_version(self._helm)


def _message(error: helm_errors.Error) -> str:
    text = (error.stderr or b"").decode(errors="replace").strip()
    text = re.sub(r"\s+", " ", text.removeprefix("Error: "))
    return text[:1000] or f"helm exited with {error.returncode}"


class Helm:
    """Runs helm against one cluster. Every public method raises only ClusterErrors."""

    def __init__(
        self,
        kubeconfig: str,
        context: str = "",
        executable: str | None = None,
        timeout_seconds: float | None = None,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        self._executable = executable or helm_executable()
        kubeconfig_checked(kubeconfig)  # an unusable one fails here, not as "unreachable"
        self._kubeconfig = kubeconfig
        self._context = context or None
        self.timeout_seconds = float(timeout_seconds or settings.SLIPWAY_HELM_TIMEOUT_SECONDS)
        self._before_call = before_call or (lambda: None)
        # One Helm serves one step: the chart it resolved (`helm show chart`) and the
        # upgrades it has dry-run on the server, validated (see render and upgrade).
        self._charts: dict[tuple[str, str | None], object] = {}
        self._validated: set[str] = set()
        # What `ownership` listed of each release: its newest revision, None when absent.
        self._newest: dict[tuple[str, str], HelmRevision | None] = {}

    async def _chart(self, client, chart: str, version: str | None):
        """The chart, resolved once per Helm: a step's render and upgrade apply the same
        version even when `version` is unset and the repository publishes a new one in
        between (and helm runs once, not twice, to resolve it)."""
        key = (chart, version or None)
        if key not in self._charts:
            self._charts[key] = await client.get_chart(chart, version=version or None)
        return self._charts[key]

    @staticmethod
    def _upgrade_key(release: str, namespace: str, loaded, merged: dict) -> str:
        return json.dumps(
            [release, namespace, str(loaded.ref), loaded.repo, loaded.metadata.version, merged],
            sort_keys=True,
            default=str,
        )

    def _run(self, work):
        async def call(path: Path):
            options = {
                "executable": self._executable,
                "kubeconfig": path,
                "kubecontext": self._context,
                "default_timeout": f"{int(self.timeout_seconds)}s",
            }
            command = _Command(**options)
            client = pyhelm3.Client(command, executable=self._executable)
            # pyhelm3's Client has no --labels or --selector: those calls go through its
            # Command, which runs helm with the same kubeconfig and context.
            client.slipway_command = command
            # helm gets its own timeout; this one ends a helm that hangs regardless.
            return await asyncio.wait_for(work(client), helm_deadline_seconds(self.timeout_seconds))

        self._before_call()
        with kubeconfig_file(self._kubeconfig) as path:
            try:
                return asyncio.run(call(path))
            except TimeoutError as exc:
                raise ClusterUnreachable(
                    f"helm did not finish within {self.timeout_seconds:.0f} s"
                ) from exc
            except helm_errors.ReleaseNotFoundError as exc:
                raise HelmReleaseNotFound(_message(exc)) from exc
            except helm_errors.ConnectionError as exc:
                raise ClusterUnreachable(f"cluster unreachable: {_message(exc)}") from exc
            except helm_errors.Error as exc:
                message = _message(exc)
                if re.search(
                    r"kubernetes cluster unreachable|connection refused|no such host|"
                    r"i/o timeout|unauthorized",
                    message,
                    re.I,
                ):
                    raise ClusterUnreachable(f"cluster unreachable: {message}") from exc
                raise HelmFailed(message) from exc

    # -- reads ------------------------------------------------------------------------

    def history(self, release: str, namespace: str) -> list[HelmRevision]:
        """Every revision, oldest first: one `helm history` (pyhelm3's own reads the
        status first, a second helm run for nothing we use)."""

        async def work(client):
            return await client.slipway_command.history(release, namespace=namespace)

        return sorted(
            (_revision_from_history(r) for r in self._run(work)), key=lambda r: r.revision
        )

    def history_or_empty(self, release: str, namespace: str) -> list[HelmRevision]:
        """The history, or none for a release helm has never installed."""
        try:
            return self.history(release, namespace)
        except HelmReleaseNotFound:
            return []

    def current(self, release: str, namespace: str) -> HelmRevision | None:
        try:
            return self._run(lambda c: _current(c, release, namespace))
        except HelmReleaseNotFound:
            return None

    def ownership(self, release: str, namespace: str, *, label: str, owner: str) -> str:
        """Whose the release is, by its `label`: ours (`owner`), another's, nobody's, or
        absent (see Ownership). One helm run when it is ours, two for a first install,
        three only when the release is not ours to touch."""

        async def listed(client, selector: str | None) -> dict | None:
            command = ["list", "--all", "--namespace", namespace, "--output", "json"]
            command += ["--filter", f"^{re.escape(release)}$", "--max", 5]
            if selector:
                command += ["--selector", selector]
            found = json.loads(await client.slipway_command.run(command) or b"[]")
            return next((item for item in found or [] if item.get("name") == release), None)

        async def work(client):
            ours = await listed(client, f"{label}={owner}")
            if ours is not None:
                self._newest[(release, namespace)] = _revision_from_list(ours)
                return Ownership.OURS  # every deployment after the first: one helm run
            if await listed(client, None) is None:
                self._newest[(release, namespace)] = None
                return Ownership.ABSENT
            return Ownership.OTHER if await listed(client, label) else Ownership.UNOWNED

        return self._run(work)

    def history_as_listed(self, release: str, namespace: str) -> list[HelmRevision] | None:
        """The history as far as a first upgrade needs it, from what this Helm's
        `ownership` has just listed, without running helm again: none for an absent
        release, the newest revision of ours (which runs now, and is not pending: nothing
        to recover). None when it listed nothing of the kind: read `history`."""
        key = (release, namespace)
        if key not in self._newest:
            return None
        newest = self._newest[key]
        if newest is None:
            return []
        return None if newest.pending else [newest]

    def render(
        self,
        *,
        release: str,
        namespace: str,
        chart: str,
        values: list[dict],
        version: str | None = None,
    ) -> list[dict]:
        """The manifests `upgrade` would apply now, hooks included: a server-side dry run of
        the same upgrade, so the chart sees the target cluster's version and API groups
        (`kubeVersion`, `.Capabilities`) and its `lookup`s see the cluster, exactly as the
        upgrade will. Nothing is changed."""

        async def work(client):
            loaded = await self._chart(client, chart, version)
            command = _upgrade_command(release, loaded, namespace, self.timeout_seconds)
            command += ["--dry-run=server"]
            merged = mergeconcat(*values) if values else {}
            out = await client.slipway_command.run(command, json.dumps(merged).encode())
            data = json.loads(out[out.index(b"{") :])
            texts = [data.get("manifest") or ""]
            texts += [hook.get("manifest") or "" for hook in data.get("hooks") or []]
            # helm checked these manifests against the cluster's OpenAPI schema on the way.
            self._validated.add(self._upgrade_key(release, namespace, loaded, merged))
            return _documents(texts)

        return self._run(work)

    # -- writes -----------------------------------------------------------------------

    def upgrade(
        self,
        *,
        release: str,
        namespace: str,
        chart: str,
        values: list[dict],
        description: str,
        version: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> HelmRevision:
        """`helm upgrade --install` (no --wait) with `labels` on the release; returns the
        revision it made. After `render` of the same upgrade by this Helm, helm skips its
        OpenAPI validation (`--disable-openapi-validation`): the dry run has just run it
        over the same chart and values on the same cluster, and fetching and reading the
        cluster's OpenAPI document is two thirds of an upgrade's CPU (0.22 of 0.35 s)."""

        async def work(client):
            loaded = await self._chart(client, chart, version)
            command = _upgrade_command(release, loaded, namespace, self.timeout_seconds)
            command += ["--description", description]
            if labels:
                command += ["--labels", ",".join(f"{k}={v}" for k, v in labels.items())]
            merged = mergeconcat(*values) if values else {}
            if self._upgrade_key(release, namespace, loaded, merged) in self._validated:
                command += ["--disable-openapi-validation"]
            out = await client.slipway_command.run(command, json.dumps(merged).encode())
            return _revision_from_json(json.loads(out[out.index(b"{") :]))

        return self._run(work)

    def rollback(self, *, release: str, namespace: str, revision: int | None) -> HelmRevision:
        """Roll back to `revision` (None: the previous one); Helm makes a new revision."""

        async def work(client):
            current = await client.get_current_revision(release, namespace=namespace)
            return _revision(await current.release.rollback(revision, wait=False))

        return self._run(work)

    def uninstall(self, *, release: str, namespace: str) -> bool:
        """`helm uninstall` (no --wait); False when there was no such release."""

        async def work(client):
            current = await client.get_current_revision(release, namespace=namespace)
            await current.release.uninstall(wait=False)

        try:
            self._run(work)
        except HelmReleaseNotFound:
            return False
        return True

    def find_revision(
        self, release: str, namespace: str, marker: str, history: list[HelmRevision] | None = None
    ) -> HelmRevision | None:
        """The revision whose description carries `marker`, if Slipway already made it
        (in `history` when the caller has just read it)."""
        if history is None:
            history = self.history_or_empty(release, namespace)
        return next((r for r in reversed(history) if marker in r.description), None)

    def recover_stuck(
        self,
        *,
        release: str,
        namespace: str,
        older_than: timedelta,
        history: list[HelmRevision] | None = None,
    ) -> Recovery | None:
        """A release left pending-* longer than `older_than` (helm was killed) blocks every
        upgrade: roll it back to the last deployed revision, or uninstall one that was
        never deployed. Returns what was done, or None if nothing needed doing (`history`:
        when the caller has just read it)."""
        if history is None:
            history = self.history_or_empty(release, namespace)
        if not history:
            return None
        latest = history[-1]
        if not latest.pending or datetime.now(UTC) - latest.updated < older_than:
            return None
        good = [r for r in history[:-1] if r.ran]
        if not good:

            async def uninstall(client):
                current = await client.get_current_revision(release, namespace=namespace)
                await current.release.uninstall(wait=False)

            self._run(uninstall)
            return Recovery("uninstalled", latest.revision, latest.status, None)
        made = self.rollback(release=release, namespace=namespace, revision=good[-1].revision)
        return Recovery("rolled-back", latest.revision, latest.status, made.revision)


def _upgrade_command(release: str, chart, namespace: str, timeout_seconds: float) -> list:
    """`helm upgrade --install` of a loaded chart, values on stdin, JSON out."""
    command = [
        "upgrade", release, chart.ref, "--install", "--output", "json",
        "--history-max", HISTORY_MAX, "--timeout", f"{int(timeout_seconds)}s",
        "--values", "-", "--create-namespace", "--namespace", namespace,
        "--version", chart.metadata.version,
    ]  # fmt: skip
    if chart.repo:
        command += ["--repo", chart.repo]
    return command


def _documents(texts: list[str]) -> list[dict]:
    """The YAML documents of rendered manifests (empty ones dropped)."""
    return [
        document
        for text in texts
        for document in yaml.safe_load_all(text)
        if isinstance(document, dict)
    ]


async def _current(client, release: str, namespace: str) -> HelmRevision:
    return _revision(await client.get_current_revision(release, namespace=namespace))


def _revision_from_json(data: dict) -> HelmRevision:
    """A revision from `helm upgrade --output json`."""
    info = data.get("info") or {}
    updated = datetime.fromisoformat(
        str(info.get("last_deployed") or datetime.now(UTC).isoformat()).replace("Z", "+00:00")
    )
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return HelmRevision(
        revision=int(data["version"]),
        status=str(info.get("status", "")),
        updated=updated,
        description=str(info.get("description", "")),
    )


def _revision_from_list(data: dict) -> HelmRevision:
    """A release's newest revision from `helm list --output json` (`updated` as Go prints
    a time: `2026-12-04 04:58:51.066218549 +0000 UTC`; no description)."""
    match = re.match(r"(\S+) (\d\d:\d\d:\d\d)(\.\d+)? ([+-]\d\d)(\d\d)", str(data.get("updated")))
    if match:
        day, clock, fraction, hours, minutes = match.groups()
        updated = _go_time(f"{day}T{clock}{fraction or ''}{hours}:{minutes}")
    else:
        updated = datetime.now(UTC)
    return HelmRevision(
        revision=int(data["revision"]), status=str(data.get("status", "")), updated=updated,
        description="", chart=str(data.get("chart", "")),
    )  # fmt: skip


def _revision_from_history(data: dict) -> HelmRevision:
    """A revision from `helm history --output json` (`updated` in Go's time format)."""
    return HelmRevision(
        revision=int(data["revision"]),
        status=str(data.get("status", "")),
        updated=_go_time(str(data.get("updated", ""))),
        description=str(data.get("description", "")),
    )


def _go_time(text: str) -> datetime:
    """`2026-12-03T20:14:00.123456789Z` or `…+01:00` → an aware datetime (Python reads at
    most microseconds)."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return datetime.now(UTC)
    whole, fraction, zone = match.groups()
    return datetime.fromisoformat(
        f"{whole}.{(fraction or '0')[:6].ljust(6, '0')}{'+00:00' if zone in (None, 'Z') else zone}"
    )


def _revision(revision) -> HelmRevision:
    updated = revision.updated
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    status = revision.status.value if hasattr(revision.status, "value") else str(revision.status)
    return HelmRevision(
        revision=revision.revision,
        status=status,
        updated=updated,
        description=revision.description or "",
    )
