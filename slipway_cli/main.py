"""The `slipway` command: login, services, build, promote, approve, rollback, status, history,
canary, verification.

Every command takes `--json` for scripts (one JSON document on stdout, progress on stderr)
and exits non-zero when what it asked for failed: 1 for a failed build or deployment, 2
for a refused or bad request.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any

import click

from slipway_cli import config
from slipway_cli.client import ApiError, Client

FAILED = 1
REFUSED = 2
RELEASE_ACTIVE = {"requested", "queued", "building"}
DEPLOYMENT_OPEN = {"queued", "awaiting_approval", "pending", "deploying", "rolling_out", "canary"}


class Context:
    def __init__(self, url: str | None, token: str | None, as_json: bool):
        self.settings = config.load(url, token)
        self.as_json = as_json
        self._client: Client | None = None

    @property
    def api(self) -> Client:
        if self._client is None:
            if not self.settings.token:
                fail("Not logged in: run `slipway login` or set SLIPWAY_TOKEN.", REFUSED)
            self._client = Client(self.settings.url, self.settings.token)
        return self._client

    def out(self, data: Any, text: str) -> None:
        click.echo(json.dumps(data, indent=2) if self.as_json else text)


def fail(message: str, code: int = FAILED) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def progress(message: str) -> None:
    click.echo(f"[{time.strftime('%H:%M:%S')}] {message}", err=True)


def _short(digest: str) -> str:
    return digest[7:19] if digest else "—"


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option("--url", envvar="SLIPWAY_URL", help="The portal, e.g. https://slipway.example.com")
@click.option("--token", envvar="SLIPWAY_TOKEN", help="An API token (else the stored one).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout, for scripts.")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, as_json: bool) -> None:
    """Build once, deploy to Beta, promote the same digest to Prod — from a terminal."""
    ctx.obj = Context(url, token, as_json)


def _run(function):
    """Turn API errors into one line on stderr and exit code 2."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ApiError as exc:
            fail(str(exc), REFUSED)

    return wrapper


@cli.command()
@click.option("--url", "login_url", required=True, help="The portal's address.")
@click.option("--token", "login_token", prompt=True, hide_input=True, help="An API token.")
@pass_context
@_run
def login(obj: Context, login_url: str, login_token: str) -> None:
    """Check a token against the portal and store both (mode 0600)."""
    me = Client(login_url, login_token).get("/api/v1/me")
    path = config.save(login_url, login_token)
    obj.out(
        {"username": me["username"], "config": str(path)},
        f"Logged in to {login_url} as {me['username']} (saved in {path}).",
    )


@cli.command()
@pass_context
@_run
def services(obj: Context) -> None:
    """Services of your teams and what runs in each environment."""
    rows = list(obj.api.pages("/api/v1/services/"))
    lines = []
    for service in rows:
        cells = []
        for env in service["environments"]:
            running = env.get("running")
            cells.append(
                f"{env['environment']}: #{running['release']} {_short(running['digest'])}"
                if running
                else f"{env['environment']}: —"
            )
        lines.append(f"{service['slug']:<24} {'  '.join(cells)}")
    obj.out(rows, "\n".join(lines) or "No services.")


def _follow_log(api: Client, release_id: int) -> dict:
    """Print the build console as it grows; return the release once its build ended."""
    offset = 0
    while True:
        chunk = api.get(f"/api/v1/releases/{release_id}/log", offset=offset)
        if chunk["text"]:
            click.echo(chunk["text"], nl=False, err=True)
        offset = chunk["next_offset"]
        if not chunk["more"]:
            release = api.get(f"/api/v1/releases/{release_id}/")
            if release["status"] not in RELEASE_ACTIVE:
                return release
        time.sleep(1)


def _wait_release(api: Client, release_id: int) -> dict:
    seen = ""
    while True:
        release = api.get(f"/api/v1/releases/{release_id}/")
        state = f"{release['status']} {release.get('progress') or ''}".strip()
        if state != seen:
            progress(f"release #{release_id}: {state}")
            seen = state
        if release["status"] not in RELEASE_ACTIVE:
            return release
        time.sleep(1)


def _wait_deployment(api: Client, deployment_id: int, timeout: float = 3600) -> dict:
    seen, deadline = "", time.monotonic() + timeout
    while True:
        deployment = api.get(f"/api/v1/deployments/{deployment_id}/")
        progress_ = deployment.get("progress") or {}
        bar = ""
        workloads = progress_.get("workloads") if isinstance(progress_, dict) else None
        if workloads:
            desired = sum(w.get("desired", 0) for w in workloads)
            ready = sum(w.get("ready", 0) for w in workloads)
            updated = sum(w.get("updated", 0) for w in workloads)
            bar = f" {updated}/{desired} updated, {ready} ready"
        canary_ = progress_.get("canary") if isinstance(progress_, dict) else None
        if canary_:
            bar = f" {canary_.get('weight')} % (step {canary_.get('step')}, {canary_.get('phase')})"
        state = f"{deployment['status']}{bar}"
        if state != seen:
            waits = " (waiting for a lead)" if deployment["status"] == "awaiting_approval" else ""
            progress(f"deployment #{deployment_id} to {deployment['environment']}: {state}{waits}")
            seen = state
        if deployment["status"] not in DEPLOYMENT_OPEN or time.monotonic() > deadline:
            return deployment
        time.sleep(1)


@cli.command()
@click.argument("service")
@click.option("--ref", required=True, help="Branch, tag or commit to build.")
@click.option("--deploy-to", help="Deploy to this (first) environment once built, e.g. beta.")
@click.option("--follow", is_flag=True, help="Stream the log; wait for the build and deploy.")
@pass_context
@_run
def build(obj: Context, service: str, ref: str, deploy_to: str | None, follow: bool) -> None:
    """Build SERVICE at REF once; optionally deploy it to Beta."""
    body = {"ref": ref, **({"deploy_to": deploy_to} if deploy_to else {})}
    release = obj.api.post(f"/api/v1/services/{service}/releases/", body)
    progress(f"release #{release['id']} of {service} at {ref}: {release['status']}")
    if follow:
        release = _follow_log(obj.api, release["id"])
        if release["status"] == "built" and deploy_to:
            deployment = _first_deployment(obj.api, release["id"], deploy_to)
            if deployment is not None:
                deployment = _wait_deployment(obj.api, deployment["id"])
            release = obj.api.get(f"/api/v1/releases/{release['id']}/")
    obj.out(release, _release_line(release))
    if follow:
        _exit_for(release, deploy_to)


def _first_deployment(api: Client, release_id: int, environment: str) -> dict | None:
    for _ in range(30):  # the worker starts it right after the build
        release = api.get(f"/api/v1/releases/{release_id}/")
        found = [d for d in release["deployments"] if d["environment"] == environment]
        if found:
            return found[0]
        time.sleep(1)
    return None


def _release_line(release: dict) -> str:
    line = f"release #{release['id']} {release['service']} {release['ref']}: {release['status']}"
    if release.get("image_digest"):
        line += f" {release['image']}"
    if release.get("status_reason"):
        line += f"\n  {release['status_reason']}"
    for d in release.get("deployments", []):
        line += f"\n  deployment #{d['id']} to {d['environment']}: {d['status']}"
        if d.get("status_reason"):
            line += f" ({d['status_reason']})"
        clusters = d.get("clusters") or []
        if len(clusters) > 1:
            line += "".join(f"\n    {c['cluster']}: {c['status']}" for c in clusters)
    return line


def _exit_for(release: dict, deploy_to: str | None) -> None:
    if release["status"] != "built":
        sys.exit(FAILED)
    if deploy_to:
        statuses = [d["status"] for d in release["deployments"] if d["environment"] == deploy_to]
        if not statuses or statuses[-1] != "succeeded":
            sys.exit(FAILED)


def _deploy(obj: Context, release: int, environment: str, kind: str, wait: bool, **extra) -> None:
    body = {"environment": environment, "kind": kind}
    body.update({k: v for k, v in extra.items() if v})
    deployment = obj.api.post(f"/api/v1/releases/{release}/deployments/", body)
    progress(f"deployment #{deployment['id']} to {environment}: {deployment['status']}")
    if wait:
        deployment = _wait_deployment(obj.api, deployment["id"])
    text = f"deployment #{deployment['id']} of release #{release} to {environment}: "
    text += deployment["status"] + (
        f" ({deployment['status_reason']})" if deployment.get("status_reason") else ""
    )
    if deployment.get("change_ticket"):
        ticket = deployment["change_ticket"]
        text += f" · change {ticket['number']} ({ticket['state']}, {ticket['approval']})"
    obj.out(deployment, text)
    if wait and deployment["status"] != "succeeded":
        sys.exit(FAILED)


@cli.command()
@click.argument("release", type=int)
@click.option("--to", "environment", required=True, help="The environment, e.g. prod.")
@click.option("--wait", is_flag=True, help="Wait (approval, rollout) until it ends.")
@click.option("--override-freeze", help="A lead's reason to deploy during a freeze.")
@click.option("--override-gates", help="A lead's reason to promote past failing gates.")
@click.option(
    "--emergency", help="A lead's reason for an emergency change (it skips the ticket's approval)."
)
@pass_context
@_run
def promote(
    obj: Context,
    release: int,
    environment: str,
    wait: bool,
    override_freeze: str | None,
    override_gates: str | None,
    emergency: str | None,
) -> None:
    """Promote RELEASE (the same image digest) to an environment."""
    _deploy(
        obj,
        release,
        environment,
        "promote",
        wait,
        freeze_override=override_freeze,
        gate_override=override_gates,
        emergency_reason=emergency,
    )


@cli.command()
@click.argument("deployment", type=int)
@click.option("--comment", default="", help="Recorded with the decision.")
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option(
    "--as",
    "represented_as",
    default="",
    help="The approval rule your approval counts for (default: the first unmet one).",
)
@pass_context
@_run
def approve(obj: Context, deployment: int, comment: str, reject: bool, represented_as: str) -> None:
    """Approve (or --reject) a deployment waiting for approval."""
    verb = "reject" if reject else "approve"
    body = {"comment": comment, "represented_as": represented_as}
    result = obj.api.post(f"/api/v1/deployments/{deployment}/{verb}", body)
    mine = result.get("approvals", [])[-1:] or [{}]
    counted = f" (counted as {mine[0]['represented_as']})" if mine[0].get("represented_as") else ""
    obj.out(result, f"deployment #{deployment}: {result['status']}{counted}")


@cli.command()
@click.argument("deployment", type=int)
@pass_context
@_run
def approvals(obj: Context, deployment: int) -> None:
    """Where DEPLOYMENT stands against its approval policy, rule by rule."""
    state = obj.api.get(f"/api/v1/deployments/{deployment}/approvals")
    lines = [f"deployment #{deployment}: {state['status']} · policy {state['policy']}"]
    for rule in state["rules"]:
        by = ", ".join(a["by"] for a in rule["approvals"]) or "nobody yet"
        mark = "met" if rule["met"] else "waiting"
        lines.append(
            f"  {rule['name']}: {len(rule['approvals'])}/{rule['required_approvals']} {mark}"
            f" — approved by {by}"
            + ("" if rule["met"] else f"; may approve: {', '.join(rule['may_approve']) or '—'}")
        )
    if state["rejection"]:
        lines.append(f"  rejected by {state['rejection']['by']}")
    obj.out(state, "\n".join(lines))


@cli.command()
@click.argument("service")
@click.option("--env", "environment", required=True, help="The environment, e.g. prod.")
@click.option(
    "--to",
    "release",
    type=int,
    help="The release to go back to (default: the last good one before).",
)
@click.option("--wait", is_flag=True, help="Wait until the rollback ends.")
@pass_context
@_run
def rollback(obj: Context, service: str, environment: str, release: int | None, wait: bool) -> None:
    """Roll SERVICE back in an environment."""
    if release is None:
        detail = obj.api.get(f"/api/v1/services/{service}/")
        env = next((e for e in detail["environments"] if e["environment"] == environment), None)
        if env is None:
            fail(f"{service} has no environment {environment!r}.", REFUSED)
        release = env.get("rollback_to")
        if release is None:
            fail(
                f"Nothing to roll back to in {environment}: no earlier release succeeded there.",
                REFUSED,
            )
    _deploy(obj, release, environment, "rollback", wait)


@cli.command()
@click.argument("service")
@pass_context
@_run
def status(obj: Context, service: str) -> None:
    """What runs in each environment of SERVICE, and what moves."""
    detail = obj.api.get(f"/api/v1/services/{service}/")
    lines = [f"{detail['name']} ({detail['slug']})"]
    for env in detail["environments"]:
        running = env.get("running")
        line = f"  {env['environment']:<8}"
        if running:
            line += (
                f" release #{running['release']} {running['digest']}"
                f" since {running.get('since') or '?'}"
                f" by {running.get('by') or 'Slipway'}"
            )
        elif any(c.get("release") for c in env.get("clusters") or []):
            line += " not one release on every cluster:"
        else:
            line += " nothing running"
        if env.get("in_flight"):
            line += f"  [{env['in_flight']['status']} #{env['in_flight']['release']}]"
        if env.get("waiting"):
            line += f"  [{env['waiting']} waiting]"
        if env.get("freeze"):
            line += "  [frozen]"
        if env.get("drift"):
            line += "  [drift]"
        lines.append(line)
        clusters = env.get("clusters") or []
        if len(clusters) > 1:  # each cluster, in wave order
            for c in clusters:
                what = f"release #{c['release']} {c['status']}" if c.get("release") else "nothing"
                drift = "  [drift]" if c.get("drift") else ""
                lines.append(f"    {c['wave']}. {c['cluster']:<16} {what}{drift}")
    obj.out(detail, "\n".join(lines))


@cli.command()
@click.option("--service", help="One service's releases.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@pass_context
@_run
def history(obj: Context, service: str | None, limit: int) -> None:
    """Recent releases, newest first."""
    rows = []
    for release in obj.api.pages("/api/v1/releases/", service=service):
        rows.append(release)
        if len(rows) >= limit:
            break
    lines = [
        f"#{r['id']:<6} {r['service']:<20} {r['ref']:<20} {r['status']:<10} "
        + " ".join(f"{d['environment']}:{d['status']}" for d in r["deployments"])
        for r in rows
    ]
    obj.out(rows, "\n".join(lines) or "No releases.")


@cli.group()
def canary() -> None:
    """Canary steps of a deployment: promote a paused step, or abort the canary."""


def _canary_line(deployment: dict) -> str:
    lines = [f"deployment #{deployment['id']}: {deployment['status']}"]
    for cluster in deployment["clusters"]:
        c = cluster.get("canary") or {}
        if c:
            lines.append(
                f"  {cluster['cluster']}: canary {c.get('weight')} % (step {c.get('step')} of "
                f"{c.get('steps')}, {c.get('phase')})"
            )
    return "\n".join(lines)


@canary.command("promote")
@click.argument("deployment", type=int)
@click.option("--reason", required=True, help="Why (recorded and audited).")
@pass_context
@_run
def canary_promote(obj: Context, deployment: int, reason: str) -> None:
    """Promote DEPLOYMENT's paused canary step (the next weight, or the stable upgrade)."""
    result = obj.api.post(f"/api/v1/deployments/{deployment}/canary/promote", {"reason": reason})
    obj.out(result, _canary_line(result))


@canary.command("abort")
@click.argument("deployment", type=int)
@click.option("--reason", required=True, help="Why (recorded and audited).")
@click.option("--wait", is_flag=True, help="Wait until the deployment ends.")
@pass_context
@_run
def canary_abort(obj: Context, deployment: int, reason: str, wait: bool) -> None:
    """Abort DEPLOYMENT's canary: its weight to 0, its Helm release removed."""
    result = obj.api.post(f"/api/v1/deployments/{deployment}/canary/abort", {"reason": reason})
    if wait:
        result = _wait_deployment(obj.api, deployment)
    obj.out(result, _canary_line(result) + (f"\n{result['status_reason']}" if wait else ""))


@cli.group()
def verification() -> None:
    """Verification after a deployment: list a release's runs, decide on one."""


def _run_line(run: dict) -> str:
    judged = f" judged {run['judgement']} by {run['decided_by']}" if run["judgement"] else ""
    verified = " [verified]" if run["verified"] else ""
    line = f"#{run['id']:<6} {run['environment']:<8} {run['status']:<12}{verified}{judged}"
    return line + (f"\n        {run['reason']}" if run["reason"] else "")


@verification.command("list")
@click.argument("release", type=int)
@pass_context
@_run
def verification_list(obj: Context, release: int) -> None:
    """RELEASE's verification runs, newest first, with each metric's values."""
    runs = obj.api.get(f"/api/v1/releases/{release}/verifications")
    lines = []
    for run in runs:
        lines.append(_run_line(run))
        values: dict[str, list[str]] = {}
        for m in run["measurements"]:
            shown = "—" if m["value"] is None else f"{m['value']:g}"
            values.setdefault(m["metric"], []).append(f"{shown} ({m['phase']})")
        lines.extend(f"        {metric}: {', '.join(v)}" for metric, v in values.items())
    obj.out(runs, "\n".join(lines) or f"Release #{release} has no verification run.")


@verification.command("decide")
@click.argument("run", type=int)
@click.argument("action", type=click.Choice(["rerun", "skip", "continue", "rollback"]))
@click.option("--reason", required=True, help="Why (recorded and audited).")
@pass_context
@_run
def verification_decide(obj: Context, run: int, action: str, reason: str) -> None:
    """A lead's word on verification RUN: rerun, skip, or (inconclusive) continue / rollback."""
    result = obj.api.post(f"/api/v1/verifications/{run}/{action}", {"reason": reason})
    obj.out(result, _run_line(result))


def main() -> None:
    cli(prog_name="slipway")


@cli.group()
def train() -> None:
    """Release trains: several services' releases to one environment, in order, one approval."""


def _train_text(data: dict) -> str:
    lines = [
        f"train #{data['id']} {data['name']} to {data['environment']}: {data['status']}"
        + (f" ({data['status_reason']})" if data.get("status_reason") else "")
    ]
    for member in data["releases"]:
        deployment = f" deployment #{member['deployment']}" if member["deployment"] else ""
        lines.append(
            f"  {member['position']}. {member['service']} release #{member['release']} "
            f"{member['ref']}: {member['status']}{deployment}"
        )
    for rule in data.get("rules", []):
        by = ", ".join(a["by"] for a in rule["approvals"]) or "nobody yet"
        lines.append(
            f"  approval {rule['name']}: {len(rule['approvals'])}/{rule['required_approvals']}"
            f" — {by}"
        )
    return "\n".join(lines)


@train.command("create")
@click.argument("name")
@click.argument("releases", nargs=-1, type=int, required=True)
@click.option("--to", "environment", required=True, help="The environment, e.g. prod.")
@pass_context
@_run
def train_create(obj: Context, name: str, releases: tuple[int, ...], environment: str) -> None:
    """Make train NAME of RELEASES (ids, in the order they go out) to an environment."""
    body = {"name": name, "environment": environment, "releases": list(releases)}
    data = obj.api.post("/api/v1/trains/", body)
    obj.out(data, _train_text(data))


@train.command("show")
@click.argument("train_id", type=int)
@pass_context
@_run
def train_show(obj: Context, train_id: int) -> None:
    """Where train TRAIN_ID stands: each release, each approval rule."""
    data = obj.api.get(f"/api/v1/trains/{train_id}/")
    obj.out(data, _train_text(data))


@train.command("approve")
@click.argument("train_id", type=int)
@click.option("--comment", default="", help="Recorded with the decision.")
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option("--as", "represented_as", default="", help="The rule your approval counts for.")
@pass_context
@_run
def train_approve(
    obj: Context, train_id: int, comment: str, reject: bool, represented_as: str
) -> None:
    """Approve (or --reject) a train awaiting approval."""
    verb = "reject" if reject else "approve"
    body = {"comment": comment, "represented_as": represented_as}
    data = obj.api.post(f"/api/v1/trains/{train_id}/{verb}", body)
    obj.out(data, _train_text(data))


@train.command("stop")
@click.argument("train_id", type=int)
@pass_context
@_run
def train_stop(obj: Context, train_id: int) -> None:
    """Stop a train: what deploys now ends on its own, nothing after it starts."""
    data = obj.api.post(f"/api/v1/trains/{train_id}/cancel", {})
    obj.out(data, _train_text(data))


@cli.group()
def evidence() -> None:
    """Release evidence: the signed snapshot an auditor keeps, and checking a saved copy."""


@evidence.command("get")
@click.argument("release", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the evidence to this file (else to stdout).")  # fmt: skip
@pass_context
@_run
def evidence_get(obj: Context, release: int, output: str | None) -> None:
    """The signed evidence of RELEASE, as JSON."""
    data = obj.api.get(f"/api/v1/releases/{release}/evidence")
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    with open(output, "w", encoding="utf-8") as saved:
        saved.write(text + "\n")
    signature = data.get("signature") or {}
    progress(
        f"evidence of release #{release} saved in {output} (signed by audit key "
        f"{signature.get('key_id', '?')}, sha256 {str(signature.get('sha256', ''))[:12]}…)"
    )


@evidence.command("verify")
@click.argument("file", type=click.File("rb"))
@pass_context
@_run
def evidence_verify(obj: Context, file) -> None:
    """Whether a saved evidence FILE is what Slipway signed (exit 1 when altered)."""
    try:
        document = json.loads(file.read())
    except ValueError:
        fail(f"{file.name} is not JSON: give the file Slipway gave you, unchanged.", REFUSED)
    result = obj.api.request("POST", "/api/v1/evidence/verify", json=document)
    obj.out(result, result["message"])
    if not result["valid"]:
        sys.exit(FAILED)


@cli.group()
def catalog() -> None:
    """Services declared in their repositories (slipway.yaml): sources and syncing."""


@catalog.command("sources")
@pass_context
@_run
def catalog_sources(obj: Context) -> None:
    """The catalog sources and how each last sync went (platform admins)."""
    data = obj.api.get("/api/v1/catalog/sources/")
    lines = []
    for source in data:
        reports = (source.get("last_report") or {}).get("repositories") or []
        failing = sum(1 for r in reports if r.get("error"))
        lines.append(
            f"#{source['id']} {source['name']}: {len(source['repositories'])} repositories, "
            f"last synced {source['last_synced_at'] or 'never'}"
            + (f", {failing} with errors" if failing else "")
        )
    obj.out(data, "\n".join(lines) or "No catalog sources.")


def _plan_text(plan: dict) -> str:
    verb = "applied" if plan["applied"] else "would change (dry run)"
    lines = [f"{plan['source']}: {verb}"]
    for change in plan["changes"]:
        lines.append(f"  {change['action']} {change['service']} ({change['commit'][:12]})")
        lines += [f"    {name}: {before!r} → {after!r}"
                  for name, (before, after) in change["fields"].items()]  # fmt: skip
        lines += [f"    {said}" for said in change["targets"]]
    if plan["unchanged"]:
        lines.append(f"  unchanged: {', '.join(plan['unchanged'])}")
    for report in plan["repositories"]:
        if report["error"]:
            line = f" line {report['line']}" if report["line"] else ""
            lines.append(f"  error in {report['url']}{line}: {report['error']}")
    return "\n".join(lines)


@catalog.command("sync")
@click.argument("source", type=int)
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@pass_context
@_run
def catalog_sync(obj: Context, source: int, dry_run: bool) -> None:
    """Read SOURCE's repositories now and apply their slipway.yaml (or --dry-run)."""
    plan = obj.api.post(f"/api/v1/catalog/sources/{source}/sync", {"dry_run": dry_run})
    obj.out(plan, _plan_text(plan))
    if any(report["error"] for report in plan["repositories"]):
        sys.exit(FAILED)
