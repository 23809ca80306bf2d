"""cluster/control.py's submission retry: Ray answers "No available agent" while a node's
job agent starts (seen on this busy machine right after `ray start`); that is waited out,
every other error is raised at once. (The real path runs in tests/test_cluster_jobs.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from cluster import control


class _FlakySubmit:
    def __init__(self, failures: list[str]) -> None:
        self.failures, self.calls = failures, 0

    def submit_job(self, **kwargs: Any) -> str:
        self.calls += 1
        if self.failures:
            raise RuntimeError(self.failures.pop(0))
        return str(kwargs["submission_id"])


def test_agent_starting_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control.time, "sleep", lambda s: None)
    starting = (
        "Request failed with status code 500: No available agent to submit job, "
        "please try again later.."
    )
    client = _FlakySubmit([starting, starting])
    control._submit_job(client, entrypoint="true", submission_id="job-1")
    assert client.calls == 3


def test_other_errors_and_a_lasting_agent_outage_are_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(control.time, "sleep", lambda s: None)
    client = _FlakySubmit(["Request failed with status code 401: Unauthorized"])
    with pytest.raises(RuntimeError, match="401"):
        control._submit_job(client, entrypoint="true", submission_id="job-2")
    assert client.calls == 1
    endless = _FlakySubmit(["No available agent to submit job"] * 1000)
    with pytest.raises(RuntimeError, match="No available agent"):
        control._submit_job(endless, wait_s=0.0, entrypoint="true", submission_id="job-3")
