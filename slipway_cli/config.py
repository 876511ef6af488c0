"""Where the CLI finds the portal and its token: `--url`/`--token`, then SLIPWAY_URL /
SLIPWAY_TOKEN, then the file `slipway login` wrote ($XDG_CONFIG_HOME/slipway/config.json,
mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "slipway" / "config.json"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str


def load(url: str | None = None, token: str | None = None) -> Settings:
    stored: dict = {}
    path = config_path()
    if path.exists():
        stored = json.loads(path.read_text())
    return Settings(
        url=(url or os.environ.get("SLIPWAY_URL") or stored.get("url") or "").rstrip("/"),
        token=token or os.environ.get("SLIPWAY_TOKEN") or stored.get("token") or "",
    )


def save(url: str, token: str) -> Path:
    """Write the file readable by its owner only (the token is a credential)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump({"url": url.rstrip("/"), "token": token}, out)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
    return path
