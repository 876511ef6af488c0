"""python -m devtools.kube up|down|env|run|build|gomod

build  find or build helm, etcd, kube-apiserver, kube-controller-manager, kube-scheduler
       and kwok (prints progress; cached); `build --background` starts building what is
       missing in a niced process of its own and returns (`make test` does)
up     start the local cluster (control plane + kwok nodes) in the background
env    print `export KUBECONFIG=…` and `export SLIPWAY_HELM=…` for the running one
down   stop what `up` started
run    start in the foreground until Ctrl-C (what `make run` uses)
gomod  regenerate the Kubernetes wrapper module's replace list
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.kube.binaries import (
    HELM,
    build_in_background,
    ensure_all,
    find,
    regenerate_gomod,
    say,
)
from devtools.kube.controlplane import ControlPlane, free_port

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local" / "kube"


def local_plane() -> ControlPlane:
    """The control plane `make run` uses: state under .local/kube, a stable admin token,
    the apiserver port from SLIPWAY_KUBE_PORT (so the portal's kubeconfig stays valid)."""
    STATE.mkdir(parents=True, exist_ok=True)
    token_file = STATE / "token"
    if not token_file.exists():
        token_file.write_text(secrets.token_hex(16))
        token_file.chmod(0o600)
    port = int(os.environ.get("SLIPWAY_KUBE_PORT", "0")) or free_port()
    return ControlPlane(STATE, apiserver_port=port, token=token_file.read_text().strip(), nodes=2)


def run_foreground() -> None:
    plane = local_plane().start()
    (STATE / "state.json").write_text(
        json.dumps({"pid": os.getpid(), "kubeconfig": str(plane.kubeconfig_path)})
    )
    say(f"cluster up; KUBECONFIG={plane.kubeconfig_path}")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        plane.stop()
        (STATE / "state.json").unlink(missing_ok=True)


def _waiting(tail: str) -> None:
    say(f"waiting for another build of this cache: {tail or '…'}")


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "help"
    if command == "build" and argv[1:] == ["--background"]:
        build_in_background()
    elif command == "build":
        for name, path in ensure_all(on_wait=_waiting).items():
            print(f"{name}: {path}")
    elif command == "run":
        run_foreground()
    elif command == "up":
        STATE.mkdir(parents=True, exist_ok=True)
        ensure_all()
        log = (STATE / "run.log").open("ab")
        subprocess.Popen(
            [sys.executable, "-m", "devtools.kube", "run"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(300):
            if (STATE / "state.json").exists():
                print(f"export KUBECONFIG={STATE / 'kubeconfig'}")
                return
            time.sleep(0.3)
        sys.exit(f"cluster did not come up; see {STATE / 'run.log'}")
    elif command == "env":
        print(f"export KUBECONFIG={STATE / 'kubeconfig'}")
        print(f"export SLIPWAY_HELM={find(HELM)}")
    elif command == "down":
        state = STATE / "state.json"
        if state.exists():
            os.kill(json.loads(state.read_text())["pid"], signal.SIGTERM)
            print("stopping the local cluster")
    elif command == "gomod":
        regenerate_gomod()
    else:
        print(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
