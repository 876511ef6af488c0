"""The JSON Jenkins answers, shape by shape: jobs and folders, queue items, builds with
their actions (parameters, causes, the git plugin's build data and change sets), and the
emulator's own state for its control API. Read from Jenkins core's and the git plugin's
classes (see docs/jenkins.md); python-jenkins and Slipway's door read exactly these."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from devtools.jenkins_emulator.state import Build, JenkinsState, QueueItem


class Shapes:
    """Renders the emulator's state as Jenkins does, with URLs under `base`."""

    def __init__(self, state: JenkinsState, base: str, faults: list | None = None) -> None:
        self.state = state
        self.base = base
        self.faults = faults or []

    def job_url(self, name: str) -> str:
        return self.base + "".join(f"job/{part}/" for part in name.split("/"))

    def job_ref(self, name: str) -> dict[str, Any]:
        if name in self.state.jobs:
            job = self.state.jobs[name]
            return {
                "_class": "hudson.model.FreeStyleProject",
                "name": name.split("/")[-1],
                "url": self.job_url(name),
                "color": "disabled" if job.disabled else "blue",
            }
        return {
            "_class": "com.cloudbees.hudson.plugins.folder.Folder",
            "name": name.split("/")[-1],
            "url": self.job_url(name),
        }

    def parameters_action(self, parameters: dict[str, str]) -> dict[str, Any]:
        return {
            "_class": "hudson.model.ParametersAction",
            "parameters": [
                {"_class": "hudson.model.StringParameterValue", "name": k, "value": v}
                for k, v in parameters.items()
            ],
        }

    def cause_action(self, user: str) -> dict[str, Any]:
        return {
            "_class": "hudson.model.CauseAction",
            "causes": [
                {
                    "_class": "hudson.model.Cause$UserIdCause",
                    "shortDescription": f"Started by user {user}",
                    "userId": user,
                    "userName": user,
                }
            ],
        }

    def queue_json(self, item: QueueItem) -> dict[str, Any]:
        state = self.state
        now = time.time()
        why = state.why(item, now)
        data: dict[str, Any] = {
            "actions": [self.parameters_action(item.parameters), self.cause_action(item.user)],
            "id": item.id,
            "inQueueSince": int(item.queued * 1000),
            "params": "".join(f"\n{k}={v}" for k, v in item.parameters.items()),
            "stuck": False,
            "task": self.job_ref(item.job),
            "url": f"queue/item/{item.id}/",
            "why": why,
            "blocked": False,
            "buildable": False,
        }
        if item.left_at is not None:
            data["_class"] = "hudson.model.Queue$LeftItem"
            data["cancelled"] = item.cancelled
            data["executable"] = (
                None
                if item.cancelled
                else {
                    "_class": "hudson.model.FreeStyleBuild",
                    "number": item.build_number,
                    "url": f"{self.job_url(item.job)}{item.build_number}/",
                }
            )
        elif why and why.startswith("In the quiet period"):
            data["_class"] = "hudson.model.Queue$WaitingItem"
            data["timestamp"] = int(item.ready_at * 1000)
        elif why and why.startswith("Build #"):
            data["_class"] = "hudson.model.Queue$BlockedItem"
            data["blocked"] = True
        else:
            data["_class"] = "hudson.model.Queue$BuildableItem"
            data["buildable"] = True
            data["pending"] = False
        return data

    @staticmethod
    def git_build_data(build: Build) -> dict[str, Any]:
        """The git plugin's BuildData action: what revision this build checked out."""
        sha, ref = build.commit["sha"], build.commit["ref"]
        branch = {"SHA1": sha, "name": f"refs/remotes/origin/{ref}"}
        return {
            "_class": "hudson.plugins.git.util.BuildData",
            "buildsByBranchName": {branch["name"]: {"buildNumber": build.number, "revision": {
                "SHA1": sha, "branch": [branch]}}},
            "lastBuiltRevision": {"SHA1": sha, "branch": [branch]},
            "remoteUrls": [f"https://git.example.com/{build.job}.git"],
            "scmName": "",
        }  # fmt: skip

    @staticmethod
    def change_set(build: Build) -> dict[str, Any]:
        """The git plugin's change set: the commits new in this build (here, the one)."""
        commit = build.commit
        return {
            "_class": "hudson.plugins.git.GitChangeSetList",
            "kind": "git",
            "items": [
                {
                    "_class": "hudson.plugins.git.GitChangeSet",
                    "affectedPaths": ["app.py"],
                    "commitId": commit["sha"],
                    "id": commit["sha"],
                    "timestamp": int(commit["timestamp"] * 1000),
                    "msg": commit["message"],
                    "comment": commit["message"] + "\n",
                    "author": {"fullName": "Dev Eloper"},
                    "authorEmail": "dev@example.com",
                }
            ],
        }

    def build_json(self, build: Build, now: float) -> dict[str, Any]:
        building = build.building(now)
        end = build.finished if not building else now
        return {
            "_class": "hudson.model.FreeStyleBuild",
            "actions": [
                self.cause_action(build.user),
                self.parameters_action(build.parameters),
                self.git_build_data(build),
            ],
            "changeSet": self.change_set(build),
            "changeSets": [self.change_set(build)],
            "artifacts": [
                {"displayPath": n, "fileName": n, "relativePath": n} for n in build.artifacts(now)
            ],
            "building": building,
            "inProgress": building,
            "description": build.description(now),
            "displayName": f"#{build.number}",
            "fullDisplayName": f"{build.job} #{build.number}",
            "duration": 0 if building else int((end - build.started) * 1000),
            "estimatedDuration": int(build.duration * 1000),
            "id": str(build.number),
            "number": build.number,
            "queueId": build.queue_id,
            "result": None if building else build.final_result,
            "timestamp": int(build.started * 1000),
            "url": f"{self.job_url(build.job)}{build.number}/",
        }

    def job_json(self, name: str) -> dict[str, Any]:
        state = self.state
        job = state.jobs[name]
        now = time.time()
        builds = sorted(state.builds[name].values(), key=lambda b: -b.number)

        def ref(build: Build | None) -> dict[str, Any] | None:
            if build is None:
                return None
            return {
                "_class": "hudson.model.FreeStyleBuild",
                "number": build.number,
                "url": f"{self.job_url(name)}{build.number}/",
            }

        done = [b for b in builds if not b.building(now)]
        queued = [i for i in state.queue.values() if i.job == name and i.left_at is None]
        data = {
            **self.job_ref(name),
            "fullName": name,
            "displayName": name.split("/")[-1],
            "buildable": not job.disabled,
            "disabled": job.disabled,
            "concurrentBuild": job.concurrent,
            "inQueue": bool(queued),
            "queueItem": self.queue_json(queued[0]) if queued else None,
            "nextBuildNumber": state.next_build[name],
            "builds": [ref(b) for b in builds[:100]],
            "firstBuild": ref(builds[-1]) if builds else None,
            "lastBuild": ref(builds[0]) if builds else None,
            "lastCompletedBuild": ref(done[0]) if done else None,
            "lastSuccessfulBuild": ref(
                next((b for b in done if b.final_result == "SUCCESS"), None)
            ),
            "lastFailedBuild": ref(next((b for b in done if b.final_result == "FAILURE"), None)),
            "property": [],
        }
        if job.parameters:
            data["property"].append(
                {
                    "_class": "hudson.model.ParametersDefinitionProperty",
                    "parameterDefinitions": [
                        {
                            "_class": "hudson.model.StringParameterDefinition",
                            "defaultParameterValue": {
                                "_class": "hudson.model.StringParameterValue",
                                "name": p["name"],
                                "value": p.get("default", ""),
                            },
                            "description": p.get("description", ""),
                            "name": p["name"],
                            "type": "StringParameterDefinition",
                        }
                        for p in job.parameters
                    ],
                }
            )
        return data

    def snapshot(self) -> dict[str, Any]:
        state = self.state
        now = time.time()
        with state.lock:
            state.tick()
            return {
                "jobs": {
                    name: {
                        "config": asdict(state.jobs[name]),
                        "builds": [
                            {
                                "number": b.number,
                                "queue_id": b.queue_id,
                                "parameters": b.parameters,
                                "building": b.building(now),
                                "result": None if b.building(now) else b.final_result,
                                "digest": b.digest,
                                "started": b.started,
                                "finished": b.finished,
                            }
                            for b in state.builds[name].values()
                        ],
                    }
                    for name in state.jobs
                },
                "queue": [
                    {
                        "id": i.id,
                        "job": i.job,
                        "parameters": i.parameters,
                        "queued": i.queued,
                        "cancelled": i.cancelled,
                        "left": i.left_at is not None,
                    }
                    for i in state.queue.values()
                ],
                "faults": [asdict(f) for f in self.faults if f.count > 0],
            }
