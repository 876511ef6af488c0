"""A private OpenLDAP (Debian's slapd) for the sign-in tests: its own config, data dir and
free port, people and groups loaded with ldapadd, stopped at the end."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.services import free_port

SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "ldap-admin-pw"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SCHEMAS = ("core", "cosine", "inetorgperson")


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


@dataclass
class Slapd:
    uri: str
    root: Path
    process: subprocess.Popen

    def _run(self, tool: str, ldif: str) -> None:
        result = subprocess.run(
            [tool, "-x", "-H", self.uri, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=ldif,
            capture_output=True,
            text=True,
            timeout=20,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr}")

    def add(self, ldif: str) -> None:
        self._run("ldapadd", ldif)

    def delete(self, dn: str) -> None:
        self._run("ldapdelete", dn + "\n")

    def modify(self, ldif: str) -> None:
        self._run("ldapmodify", ldif)

    def add_person(self, uid: str, password: str) -> None:
        self.add(
            f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
            f"sn: {uid.title()}\ngivenName: {uid}\nmail: {uid}@example.com\n"
            f"userPassword: {password}\n"
        )

    def add_group(self, name: str, *members: str) -> None:
        lines = "".join(f"member: {person_dn(m)}\n" for m in members)
        # groupOfNames needs a member; an empty group keeps the admin as a placeholder.
        self.add(
            f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n"
            + (lines or f"member: {ADMIN_DN}\n")
        )

    def set_members(self, name: str, *members: str) -> None:
        values = "".join(f"member: {person_dn(m)}\n" for m in members) or f"member: {ADMIN_DN}\n"
        self.modify(f"dn: {group_dn(name)}\nchangetype: modify\nreplace: member\n{values}")


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    binary = shutil.which("slapd") or "/usr/sbin/slapd"
    if not Path(binary).exists():
        pytest.fail("slapd is missing: `make test` installs Debian's slapd and ldap-utils")
    root = tmp_path_factory.mktemp("slapd")
    (root / "data").mkdir()
    hashed = subprocess.run(
        ["slappasswd", "-h", "{SSHA}", "-s", ADMIN_PASSWORD], capture_output=True, text=True
    ).stdout.strip()
    includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
    (root / "slapd.conf").write_text(
        f"{includes}"
        f"pidfile {root}/slapd.pid\nargsfile {root}/slapd.args\n"
        "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        "access to attrs=userPassword by anonymous auth by self write by * none\n"
        "access to * by * read\n"
        f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{ADMIN_DN}"\nrootpw {hashed}\n'
        f"directory {root}/data\n"
    )
    uri = f"ldap://127.0.0.1:{free_port()}/"
    process = subprocess.Popen(
        [binary, "-f", str(root / "slapd.conf"), "-h", uri, "-d", "none"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "slapd.log").open("wb"),
    )
    server = Slapd(uri, root, process)
    deadline = time.monotonic() + 15
    while True:
        try:
            server.add(
                f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
                f"o: Example\n\ndn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n"
                f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n"
            )
            break
        except (RuntimeError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "slapd did not start: " + (root / "slapd.log").read_text(errors="replace")
                ) from None
            time.sleep(0.05)
    yield server
    process.terminate()
    process.wait(timeout=10)
