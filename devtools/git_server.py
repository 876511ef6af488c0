"""A real Git server for tests and `make run`: `git daemon` serving bare repositories on
loopback (push enabled), and a working clone per repository to commit and push from.
`seed_repository` makes a served repository with a first commit, without the daemon."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin",
}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env={**GIT_ENV, "HOME": str(cwd)}, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def seed_repository(root: Path, name: str, files: dict[str, str], message: str) -> bool:
    """Make `root/name.git` (bare, branch main) holding `files` in one commit, unless it
    exists (what someone pushed since stays); True when made."""
    bare = root / f"{name}.git"
    if bare.exists():
        return False
    root.mkdir(parents=True, exist_ok=True)
    _git("init", "-q", "--bare", "-b", "main", str(bare), cwd=root)
    work = root / f".{name}-seed"
    _git("init", "-q", "-b", "main", str(work), cwd=root)
    for path, text in files.items():
        (work / path).write_text(text)
        _git("add", path, cwd=work)
    _git("commit", "-q", "-m", message, cwd=work)
    _git("push", "-q", str(bare), "main", cwd=work)
    shutil.rmtree(work)
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GitServer:
    def __init__(self, root: Path) -> None:
        self.root = root / "served"
        self.work = root / "work"
        self.root.mkdir()
        self.work.mkdir()
        self.port = _free_port()
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
             f"--base-path={self.root}", "--listen=127.0.0.1", f"--port={self.port}",
             str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def repository(self, name: str) -> Path:
        """A new bare repository served as `name`, and its working clone (returned)."""
        _git("init", "-q", "--bare", "-b", "main", f"{name}.git", cwd=self.root)
        clone = self.work / name
        _git("clone", "-q", self.url(name), str(clone), cwd=self.work)
        _git("checkout", "-q", "-b", "main", cwd=clone)
        return clone

    def commit(self, clone: Path, message: str, files: dict[str, str | None]) -> str:
        """Write (or, with None, remove) files, commit, push; the new commit's sha."""
        for path, text in files.items():
            if text is None:
                _git("rm", "-q", path, cwd=clone)
            else:
                (clone / path).write_text(text)
                _git("add", path, cwd=clone)
        _git("commit", "-q", "-m", message, cwd=clone)
        _git("push", "-q", "origin", "main", cwd=clone)
        return _git("rev-parse", "HEAD", cwd=clone)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
