"""Find helm, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, or
build them from Go modules into a cache.

Reuse first: KUBEBUILDER_ASSETS (envtest's folder), then PATH, then the cache
(~/.cache/slipway/bin/<name>-<version>/). Only what is missing is built, through the
Go module proxy, with each binary's version stamped in so `helm version` and the
apiserver's /version report real versions (pyhelm3 parses helm's as SemVer).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOMOD = HERE / "gomod"
KUBE_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.4"
HELM_VERSION = "v3.19.5"
KWOK_VERSION = "v0.8.0"


def cache_root() -> Path:
    return Path(os.environ.get("SLIPWAY_CACHE", Path.home() / ".cache" / "slipway")) / "bin"


def say(message: str) -> None:
    print(f"[kube] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Binary:
    name: str
    version: str
    version_args: tuple[str, ...]
    version_pattern: str  # regex with one group capturing "major.minor"

    @property
    def cached(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}" / self.name

    def reported_version(self, path: Path) -> str | None:
        try:
            out = subprocess.run(
                [str(path), *self.version_args], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        match = re.search(self.version_pattern, out)
        return match.group(1) if match else None

    def acceptable(self, path: Path) -> bool:
        """Same major.minor as the version we build (patch releases may differ)."""
        reported = self.reported_version(path)
        wanted = ".".join(self.version.lstrip("v").split(".")[:2])
        return reported == wanted


HELM = Binary(
    "helm", HELM_VERSION, ("version", "--template", "{{ .Version }}"), r"v?(\d+\.\d+)\.\d+"
)
KUBE_APISERVER = Binary(
    "kube-apiserver", KUBE_VERSION, ("--version",), r"Kubernetes v(\d+\.\d+)\.\d+"
)
ETCD = Binary("etcd", ETCD_VERSION, ("--version",), r"etcd Version: (\d+\.\d+)\.\d+")
KUBE_CONTROLLER_MANAGER = Binary(
    "kube-controller-manager", KUBE_VERSION, ("--version",), r"Kubernetes v(\d+\.\d+)\.\d+"
)
KUBE_SCHEDULER = Binary(
    "kube-scheduler", KUBE_VERSION, ("--version",), r"Kubernetes v(\d+\.\d+)\.\d+"
)
KWOK = Binary("kwok", KWOK_VERSION, ("--version",), r"v?(\d+\.\d+)\.\d+")
# The control plane's binaries, in the order they are built (and started).
KUBERNETES = (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER)
ALL = (HELM, ETCD, *KUBERNETES, KWOK)


def _run_go(args: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    started = time.monotonic()
    say(f"building {what} (first time only; several minutes) …")
    process = subprocess.Popen(
        ["go", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = 0
    for line in process.stdout:
        lines += 1
        if line.startswith("go: downloading") and lines % 20 != 1:
            continue  # keep progress visible without a thousand lines
        say(f"  {line.rstrip()}")
    if process.wait() != 0:
        raise RuntimeError(f"building {what} failed: go {' '.join(args)} (see output above)")
    say(f"built {what} in {time.monotonic() - started:.0f} s")


def _go_install(
    package: str, binary: Binary, stamp: str, partial: Path, env: dict[str, str]
) -> None:
    """`go install package@version` (its own module graph) into a scratch GOBIN, the
    version stamped in by `stamp` (-X …), then moved to `partial`."""
    gobin = partial.parent / "gobin"
    _run_go(
        [
            "install",
            "-trimpath",
            "-ldflags",
            f"-s -w {stamp}",
            f"{package}@{binary.version}",
        ],
        HERE,
        {**env, "GOBIN": str(gobin)},
        binary.name,
    )
    shutil.move(str(gobin / binary.name), partial)
    shutil.rmtree(gobin, ignore_errors=True)


def build(binary: Binary) -> Path:
    if not shutil.which("go"):
        raise RuntimeError(f"{binary.name} not found and Go is not installed to build it")
    target = binary.cached
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    env = {"CGO_ENABLED": "0"}
    if binary is HELM:
        _go_install(
            "helm.sh/helm/v3/cmd/helm",
            binary,
            f"-X helm.sh/helm/v3/internal/version.version={binary.version}",
            partial,
            env,
        )
    elif binary is KWOK:
        _go_install(
            "sigs.k8s.io/kwok/cmd/kwok",
            binary,
            f"-X sigs.k8s.io/kwok/pkg/consts.Version={binary.version.lstrip('v')}",
            partial,
            env,
        )
    elif binary in KUBERNETES:
        major, minor = binary.version.lstrip("v").split(".")[:2]
        ldflags = " ".join(
            [
                "-s -w",
                f"-X k8s.io/component-base/version.gitVersion={binary.version}",
                f"-X k8s.io/component-base/version.gitMajor={major}",
                f"-X k8s.io/component-base/version.gitMinor={minor}",
                "-X k8s.io/component-base/version.gitTreeState=clean",
            ]
        )
        _run_go(
            [
                "build",
                "-trimpath",
                "-tags",
                "selinux,notest",
                "-ldflags",
                ldflags,
                "-o",
                str(partial),
                f"k8s.io/kubernetes/cmd/{binary.name}",
            ],
            GOMOD / "kubernetes",
            env,
            binary.name,
        )
    elif binary is ETCD:
        _run_go(
            [
                "build",
                "-trimpath",
                "-ldflags",
                "-s -w",
                "-o",
                str(partial),
                "go.etcd.io/etcd/server/v3",
            ],
            GOMOD / "etcd",
            env,
            "etcd",
        )
    partial.rename(target)  # only a complete binary ever sits at the cached path
    return target


def _usable(binary: Binary) -> Path | None:
    candidates = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        candidates.append(Path(assets) / binary.name)
    on_path = shutil.which(binary.name)
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(binary.cached)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK) and binary.acceptable(candidate):
            return candidate
    return None


@contextlib.contextmanager
def build_lock(ready=None, on_wait=None):
    """One builder at a time per cache (a background `build`, a test session, `make run`):
    whoever comes second waits until it holds the lock, or until `ready()` returns what it
    waited for (another builder made it: no need to queue behind that builder's next
    binary). Yields None with the lock held, else what `ready()` returned. `on_wait(tail)`
    is called every 30 s while waiting, with the build log's latest line."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("w") as lock:
        waited = 0
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                found = ready() if ready else None
                if found is not None:
                    yield found
                    return
                if on_wait and waited % 30 == 0:
                    on_wait(build_log_tail())
                time.sleep(1)
                waited += 1
                continue
            try:
                yield None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            return


def build_log() -> Path:
    return cache_root() / "build.log"


def build_log_tail() -> str:
    try:
        lines = build_log().read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return next((line for line in reversed(lines) if "go: downloading" not in line), "")


def find(binary: Binary, build_missing: bool = True, on_wait=None) -> Path:
    """The path of a usable binary, building it if nothing usable exists (after any other
    builder of this cache is done)."""
    found = _usable(binary)
    if found is not None:
        return found
    if not build_missing:
        raise FileNotFoundError(binary.name)
    with build_lock(ready=lambda: _usable(binary), on_wait=on_wait) as found:
        return found or _usable(binary) or build(binary)


def missing() -> list[Binary]:
    """The binaries neither found nor cached (nothing is built)."""
    return [b for b in ALL if _usable(b) is None]


def ensure_all(on_wait=None) -> dict[str, Path]:
    """Every binary the local clusters need, built when missing (progress on stderr)."""
    started = time.monotonic()
    found = {b.name: find(b, on_wait=on_wait) for b in ALL}
    say(f"all {len(found)} binaries ready after {time.monotonic() - started:.0f} s")
    return found


def build_in_background() -> None:
    """Start building what is missing in a process of its own, at the lowest CPU priority,
    and return at once: `make test` runs the tiers that need no cluster meanwhile, and
    the first test that needs one waits for it (`find` takes the build lock)."""
    absent = missing()
    if not absent:
        say(f"all {len(ALL)} binaries found")
        return
    log = build_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "devtools.kube", "build"],
            cwd=HERE.parent.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    names = ", ".join(b.name for b in absent)
    say(
        f"building {names} in the background (first time only; {log}); the tests that "
        "need no cluster run meanwhile, the first that needs one waits for it"
    )


def regenerate_gomod() -> None:
    """Rewrite the kube-apiserver wrapper's replace list from k8s.io/kubernetes's go.mod."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{KUBE_VERSION}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    ).stdout
    gomod_path = re.search(r'"GoMod": "([^"]+)"', out).group(1)
    staging = re.findall(r"^\s+(k8s\.io/[\w-]+) v0\.0\.0$", Path(gomod_path).read_text(), re.M)
    published = "v0." + KUBE_VERSION.lstrip("v").split(".", 1)[1]
    replaces = "\n".join(f"\t{m} => {m} {published}" for m in staging)
    text = (GOMOD / "kubernetes" / "go.mod").read_text()
    text = re.sub(
        r"require k8s.io/kubernetes v[\d.]+", f"require k8s.io/kubernetes {KUBE_VERSION}", text
    )
    text = re.sub(r"replace \((.|\n)*?\n\)", f"replace (\n{replaces}\n)", text, count=1)
    (GOMOD / "kubernetes" / "go.mod").write_text(text)
    subprocess.run(["go", "mod", "tidy"], cwd=GOMOD / "kubernetes", check=True)
