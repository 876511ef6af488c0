"""The git data of a build, as Jenkins's git plugin reports it in pipelines and freestyle
jobs (shapes from real Jenkins answers)."""

from datetime import UTC, datetime

from doors.jenkins import GitCommit, git_commit

SHA = "a" * 40
BUILD_DATA = {
    "_class": "hudson.plugins.git.util.BuildData",
    "lastBuiltRevision": {
        "SHA1": SHA,
        "branch": [{"SHA1": SHA, "name": "refs/remotes/origin/main"}],
    },
}
ITEM = {"_class": "hudson.plugins.git.GitChangeSet", "commitId": SHA, "timestamp": 1700000000000}


def test_a_pipeline_reports_change_sets():
    data = {"actions": [{}, BUILD_DATA], "changeSets": [{"kind": "git", "items": [ITEM]}]}
    assert git_commit(data) == GitCommit(SHA, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))


def test_a_freestyle_job_reports_one_change_set():
    data = {"actions": [BUILD_DATA], "changeSet": {"kind": "git", "items": [ITEM]}}
    assert git_commit(data).committed_at is not None


def test_no_change_set_item_for_the_revision_leaves_the_time_unknown():
    other = {**ITEM, "commitId": "b" * 40}
    data = {"actions": [BUILD_DATA], "changeSets": [{"items": [other]}]}
    assert git_commit(data) == GitCommit(SHA, None)


def test_no_git_data_is_no_commit():
    assert git_commit({"actions": [{"_class": "hudson.model.CauseAction"}]}) is None
    assert git_commit({"actions": [{"lastBuiltRevision": {"SHA1": "not-a-sha"}}]}) is None
