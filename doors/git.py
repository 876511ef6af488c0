"""The door to Git servers: read a few files of one branch of a repository, at its newest
commit, with the `git` command (any server that speaks Git: HTTP(S), git://, SSH).

Only what is needed travels: `git fetch --depth 1` of one ref into an empty repository,
then `git show <commit>:<path>` per file. Local paths, `file://` and `ext::` transports are
refused (a repository URL typed into a form must not read the server's own disk or run a
command), as are hosts the egress door refuses; credentials in a URL never appear in an
error.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from doors import egress
from portal.core.errors import DoorError

TIMEOUT_SECONDS = 60.0
MAX_FILE_BYTES = 256 * 1024
SCHEMES = ("https", "http", "git", "ssh")


class GitError(DoorError):
    """The repository could not be read (unreachable, no such branch, refused)."""

    retryable = True


class GitRefused(GitError):
    """The URL may not be read from here at all."""

    retryable = False


@dataclass(frozen=True)
class Snapshot:
    """Some files of one commit: path → text (None where the commit has no such file)."""

    url: str
    commit: str
    files: dict[str, str | None]


def _checked(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise GitRefused(
            f"{egress.safe_url(url)} is not a repository URL Slipway reads "
            f"({', '.join(s + '://' for s in SCHEMES)} only)."
        )
    default_port = {"https": 443, "http": 80, "git": 9418, "ssh": 22}[parts.scheme]
    try:
        port = parts.port or default_port
        # The egress door's address rules, whatever the transport.
        egress.check_destination(f"http://{parts.hostname}:{port}/")
    except ValueError as exc:
        raise GitRefused(f"{egress.safe_url(url)} has an invalid port") from exc
    except egress.EgressError as exc:
        raise GitRefused(f"{egress.safe_url(url)}: {exc}") from exc
    return url


def _git(args: list[str], cwd: str, timeout: float) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": cwd,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
    }
    protocols = ["-c", "protocol.allow=never"] + [
        arg for scheme in SCHEMES for arg in ("-c", f"protocol.{scheme}.allow=always")
    ]
    try:
        return subprocess.run(
            ["git", *protocols, *args], cwd=cwd, env=env, capture_output=True, timeout=timeout,
            check=False,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise GitError(
            "git is not installed where Slipway runs (its image has it; apt-get install git)"
        ) from exc


def _said(result: subprocess.CompletedProcess, url: str) -> str:
    """What git said went wrong: from its first `fatal:` line on, on one line."""
    lines = [line.strip() for line in result.stderr.decode("utf-8", "replace").splitlines()]
    first = next((i for i, line in enumerate(lines) if line.startswith("fatal:")), 0)
    said = " ".join(line for line in lines[first:] if line) or f"git exited {result.returncode}"
    return said.replace(url, egress.safe_url(url))[:300]


def read_files(
    url: str, *, ref: str = "", paths: list[str], timeout: float = TIMEOUT_SECONDS
) -> Snapshot:
    """The files at `paths` in the newest commit of `ref` (the default branch if empty)."""
    _checked(url)
    with tempfile.TemporaryDirectory(prefix="slipway-git-") as workdir:
        init = _git(["init", "-q", "--bare", "."], workdir, timeout)
        if init.returncode:
            raise GitError(f"git init failed: {_said(init, url)}")
        try:
            fetched = _git(
                ["fetch", "-q", "--depth", "1", "--no-tags", url, ref or "HEAD"], workdir, timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"{egress.safe_url(url)} did not answer within {timeout:.0f} s") from exc
        if fetched.returncode:
            raise GitError(_said(fetched, url))
        head = _git(["rev-parse", "FETCH_HEAD"], workdir, timeout)
        commit = head.stdout.decode().strip()
        files: dict[str, str | None] = {}
        for path in paths:
            shown = _git(["cat-file", "-p", f"{commit}:{path}"], workdir, timeout)
            if shown.returncode:
                files[path] = None
                continue
            if len(shown.stdout) > MAX_FILE_BYTES:
                raise GitError(f"{path} in {egress.safe_url(url)} is over {MAX_FILE_BYTES} bytes")
            files[path] = shown.stdout.decode("utf-8", "replace")
        return Snapshot(url=egress.safe_url(url), commit=commit, files=files)
