"""Start and stop the PostgreSQL and Redis that Slipway needs, on loopback.

`python -m devtools.services up` uses DATABASE_URL / REDIS_URL when they answer.
Otherwise it installs the Debian packages when missing (as root) and runs private
instances on free loopback ports, and writes the URLs to `.local/services.env`, where the
Makefile and the settings find them. Running `up` twice reuses what is already running;
`down` stops what `up` started.

PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, which may not
enter the checkout (a clone in root's 0700 home): its data then lives in that user's home,
`/var/lib/postgresql/slipway/<checkout>-<hash of its path>/`, one per checkout, with a
link to it at `.local/pg`. Redis keeps its files under `.local/redis`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
ENV_FILE = LOCAL / "services.env"
PG_LINK = LOCAL / "pg"
# Two roles, as in production: the owner runs migrations; the app's runtime role owns
# nothing, so it can never TRUNCATE, ALTER or disable the audit log's trigger.
OWNER_ROLE = "slipway_owner"
RUNTIME_ROLE = "slipway_app"
CREATE_ROLES = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
    CREATE ROLE {OWNER_ROLE} LOGIN CREATEDB;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RUNTIME_ROLE}') THEN
    CREATE ROLE {RUNTIME_ROLE} LOGIN;
  END IF;
END $$;
-- The test suite makes its database again between tests that commit, ending the worker's
-- sessions on it (DROP DATABASE ... WITH (FORCE)): a local convenience, not production's.
GRANT pg_signal_backend TO {OWNER_ROLE};
"""
# Hands over what an older checkout created as the bootstrap superuser.
OWN_SCHEMA = f"""
ALTER SCHEMA public OWNER TO {OWNER_ROLE};
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {RUNTIME_ROLE};
DO $$ DECLARE item record; BEGIN
  FOR item IN SELECT tablename FROM pg_tables
              WHERE schemaname = 'public' AND tableowner <> '{OWNER_ROLE}' LOOP
    EXECUTE format('ALTER TABLE public.%I OWNER TO {OWNER_ROLE}', item.tablename);
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '{OWNER_ROLE}' LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO {OWNER_ROLE}', item.signature);
  END LOOP;
END $$;
"""
REDIS_DIR = LOCAL / "redis"
DB_NAME = "slipway"


def say(message: str) -> None:
    print(f"[services] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def read_env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def write_env_file(values: dict[str, str]) -> None:
    LOCAL.mkdir(exist_ok=True)
    lines = ["# Written by devtools/services.py; read by the Makefile and settings."]
    lines += [f"{key}={value}" for key, value in sorted(values.items())]
    ENV_FILE.write_text("\n".join(lines) + "\n")


def url_answers(url: str) -> bool:
    parsed = urlparse(url)
    return bool(parsed.hostname) and port_answers(parsed.hostname, parsed.port or 0)


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        sys.exit(f"[services] {' '.join(packages)} missing and not root: install them first.")
    say(f"installing {' '.join(packages)} with apt-get (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def pg_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not candidates:
        apt_install("postgresql")
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent


def as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    # PostgreSQL refuses to run as root, so its tools run as the postgres user, from a
    # directory that user may enter.
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, cwd="/", **kwargs)


def pg_dir() -> Path:
    """Where this checkout's PostgreSQL keeps its data (see the module's docstring)."""
    if os.geteuid() != 0:
        return LOCAL / "pg"
    home = Path(pwd.getpwnam("postgres").pw_dir)
    tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
    return home / "slipway" / f"{ROOT.name}-{tag}"


def _prepare_pg_dir() -> Path:
    pg_bindir()  # installs PostgreSQL (and so the postgres user) when missing
    directory = pg_dir()
    if os.geteuid() == 0:
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(directory.parent, "postgres", "postgres")
        directory.mkdir(exist_ok=True)
        shutil.chown(directory, "postgres", "postgres")
        LOCAL.mkdir(exist_ok=True)
        if not PG_LINK.is_symlink() and not PG_LINK.exists():
            PG_LINK.symlink_to(directory)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory


def start_postgres(port: int | None) -> str:
    bindir = pg_bindir()
    directory = _prepare_pg_dir()
    data = directory / "data"
    if not (data / "PG_VERSION").exists():
        say(f"initialising a private PostgreSQL cluster in {directory}")
        as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "slipway",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    port = port or free_port()
    status = as_postgres(
        [str(bindir / "pg_ctl"), "-D", str(data), "status"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if status.returncode == 0:
        # Already running for this checkout (its .local was removed, say): use its port.
        port = int((data / "postmaster.pid").read_text().splitlines()[3])
        say(f"PostgreSQL already runs on 127.0.0.1:{port}")
    else:
        say(f"starting PostgreSQL on 127.0.0.1:{port}")
        as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(directory / "log"),
                "-w",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off"
                " -c max_connections=200",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    base = f"postgresql://slipway@127.0.0.1:{port}"
    _psql(f"{base}/postgres", CREATE_ROLES)
    exists = _psql(f"{base}/postgres", f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'")
    if exists.strip() != "1":
        _psql(f"{base}/postgres", f"CREATE DATABASE {DB_NAME} OWNER {OWNER_ROLE}")
    _psql(f"{base}/postgres", f"ALTER DATABASE {DB_NAME} OWNER TO {OWNER_ROLE}")
    _psql(f"{base}/{DB_NAME}", OWN_SCHEMA)
    return f"postgresql://{RUNTIME_ROLE}@127.0.0.1:{port}/{DB_NAME}"


def _psql(url: str, sql: str) -> str:
    return as_postgres(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def owner_url(runtime_url: str) -> str:
    """The migration role's URL for the private instance whose runtime URL is given."""
    parsed = urlparse(runtime_url)
    return parsed._replace(netloc=f"{OWNER_ROLE}@{parsed.hostname}:{parsed.port}").geturl()


def start_redis(port: int | None) -> str:
    binary = shutil.which("redis-server")
    if not binary:
        apt_install("redis-server")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    say(f"starting Redis on 127.0.0.1:{port}")
    subprocess.run(
        [
            binary,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(REDIS_DIR),
            "--pidfile",
            str(REDIS_DIR / "pid"),
            "--logfile",
            str(REDIS_DIR / "log"),
        ],
        check=True,
    )
    for _ in range(50):
        if port_answers("127.0.0.1", port):
            break
        time.sleep(0.1)
    else:
        sys.exit(f"[services] Redis did not answer on port {port}; see .local/redis/log")
    return f"redis://127.0.0.1:{port}/0"


def up() -> dict[str, str]:
    """Make PostgreSQL and Redis answer; return (and record) their URLs."""
    recorded = read_env_file()
    values = dict(recorded)
    for key, start in (("DATABASE_URL", start_postgres), ("REDIS_URL", start_redis)):
        given = os.environ.get(key)
        if given and given != recorded.get(key) and url_answers(given):
            say(f"using {key} from the environment")
            values[key] = given
            continue
        known = recorded.get(key)
        # A private PostgreSQL set up before the two roles existed is set up again.
        legacy = key == "DATABASE_URL" and known and urlparse(known).username != RUNTIME_ROLE
        if known and url_answers(known) and not legacy:
            say(f"{key.split('_')[0].lower()} already running")
            values[key] = known
            if key == "DATABASE_URL":  # roles and grants as this checkout expects them
                _psql(
                    f"postgresql://slipway@127.0.0.1:{urlparse(known).port}/postgres", CREATE_ROLES
                )
            continue
        port = urlparse(known).port if known else None
        if port and port_answers("127.0.0.1", port) and not legacy:
            port = None  # someone else took the port meanwhile
        values[key] = start(port)
    if urlparse(values["DATABASE_URL"]).username == RUNTIME_ROLE:
        values["MIGRATION_DATABASE_URL"] = owner_url(values["DATABASE_URL"])
    elif os.environ.get("MIGRATION_DATABASE_URL"):
        values["MIGRATION_DATABASE_URL"] = os.environ["MIGRATION_DATABASE_URL"]
    # This checkout runs with its development secrets (settings refuse them otherwise).
    values["SLIPWAY_DEV"] = "1"
    write_env_file(values)
    return values


def down() -> None:
    """Stop the private instances that `up` started."""
    try:
        data = pg_dir() / "data"
    except KeyError:
        data = LOCAL / "none"  # no postgres user: PostgreSQL was never installed here
    if (data / "postmaster.pid").exists():
        say("stopping PostgreSQL")
        as_postgres(
            [str(pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            stdout=subprocess.DEVNULL,
        )
    pidfile = REDIS_DIR / "pid"
    if pidfile.exists():
        say("stopping Redis")
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().strip()), 15)
        pidfile.unlink(missing_ok=True)


def remove() -> None:
    """Stop the private instances and delete their data: this checkout's PostgreSQL lives
    outside the checkout (the postgres user's home), so deleting .local alone leaves it."""
    down()
    try:
        directory = pg_dir()
    except KeyError:
        return  # PostgreSQL was never installed here
    if directory.exists():
        say(f"deleting the private PostgreSQL in {directory}")
        shutil.rmtree(directory)
    ENV_FILE.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "up"
    if command == "up":
        for key, value in up().items():
            say(f"{key}={value}")
    elif command == "down":
        down()
    elif command == "remove":
        remove()
    else:
        sys.exit("usage: python -m devtools.services up|down|remove")


if __name__ == "__main__":
    main(sys.argv[1:])
