"""`make run`: migrate, load demo data, then run web, worker and beat until Ctrl-C.

Honcho runs the Procfile in the foreground; Ctrl-C or SIGTERM stops every process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def main() -> None:
    os.environ.setdefault("DEBUG", "1")
    manage("migrate", "--no-input", "-v", "0")
    manage("load_demo")
    print("Slipway on http://127.0.0.1:8000/ — Ctrl-C stops it.", flush=True)
    honcho = Path(sys.executable).with_name("honcho")
    os.execv(str(honcho), [str(honcho), "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"])


if __name__ == "__main__":
    main()
