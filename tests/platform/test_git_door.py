"""The door the catalog reads repositories through, against a real git daemon: one commit's
files, a missing file as None, a branch that is not there, transports and hosts refused,
and a host without git told so (never a crash)."""

import pytest

from devtools.git_server import GitServer
from doors.git import GitError, GitRefused, read_files


@pytest.fixture
def git(tmp_path):
    server = GitServer(tmp_path)
    yield server
    server.stop()


def test_it_reads_the_newest_commit_of_a_branch(git):
    clone = git.repository("app")
    git.commit(clone, "one", {"slipway.yaml": "first"})
    newest = git.commit(clone, "two", {"slipway.yaml": "second"})
    snapshot = read_files(git.url("app"), paths=["slipway.yaml", "catalog-info.yaml"])
    assert (snapshot.commit, snapshot.files) == (
        newest, {"slipway.yaml": "second", "catalog-info.yaml": None},
    )  # fmt: skip
    with pytest.raises(GitError, match="couldn't find remote ref"):
        read_files(git.url("app"), ref="no-such-branch", paths=["slipway.yaml"])


@pytest.mark.parametrize("url", ["file:///etc", "/etc", "ext::sh -c id", "git://10.1.2.3/x.git"])
def test_local_paths_other_transports_and_private_hosts_are_refused(url):
    with pytest.raises(GitRefused):
        read_files(url, paths=["slipway.yaml"])


def test_a_host_without_git_says_so(git, monkeypatch, tmp_path):
    clone = git.repository("app")
    git.commit(clone, "one", {"slipway.yaml": "first"})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GitError, match="git is not installed where Slipway runs"):
        read_files(git.url("app"), paths=["slipway.yaml"])
