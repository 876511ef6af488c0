"""Judging measurements as Argo Rollouts' analysis does: conditions, phases, limits."""

import pytest
from django.core.exceptions import ValidationError

from releases.analysis import ConditionError, MetricTally, judge, parse_condition, run_outcome
from releases.models import AnalysisMetric


@pytest.mark.parametrize(
    ("value", "success", "failure", "phase"),
    [
        (0.01, "result < 0.05", "result >= 0.05", "successful"),
        (0.07, "result < 0.05", "result >= 0.05", "failed"),
        (0.07, "result < 0.05", "result >= 0.1", "inconclusive"),  # between the two
        (0.07, "result < 0.05", "", "failed"),  # only success: not success is failure
        (0.07, "", "result >= 0.1", "successful"),  # only failure: not failure is success
        (5, "result >= 1 and result <= 10", "", "successful"),
        (50, "result >= 1 and result <= 10", "", "failed"),
        (-1, "result == -1 or result > 3", "", "successful"),
        (2e-3, "result < 1e-2", "", "successful"),
    ],
)
def test_a_value_is_judged_by_the_conditions(value, success, failure, phase):
    assert judge(value, success, failure) == phase


@pytest.mark.parametrize(
    "text", ["result < abc", "__import__('os')", "value < 1", "result <", "result < 1 and"]
)
def test_anything_but_a_comparison_of_result_is_refused(text):
    with pytest.raises(ConditionError, match="is not a condition"):
        parse_condition(text)


@pytest.mark.django_db
def test_a_metric_with_a_bad_condition_or_none_is_refused_by_its_form():
    metric = AnalysisMetric(name="errors", query="up", success_condition="result < x")
    with pytest.raises(ValidationError, match="is not a condition"):
        metric.clean()
    metric.success_condition = ""
    with pytest.raises(ValidationError, match="success or a failure condition"):
        metric.clean()


def tally(*phases, count=3, failure_limit=0, inconclusive_limit=0, name="errors"):
    return MetricTally(name, count, failure_limit, inconclusive_limit, tuple(phases))


def test_a_run_fails_at_the_first_failure_over_the_limit_and_succeeds_only_when_complete():
    assert run_outcome([tally("successful")]) == ("running", "")
    assert run_outcome([tally("successful", "failed", failure_limit=1)]) == ("running", "")
    status, why = run_outcome([tally("successful", "failed", "failed", failure_limit=1)])
    assert (status, why) == ("failed", "errors: 2 of 3 measurements failed (limit 1)")
    assert run_outcome([tally(*["successful"] * 3), tally("error", name="latency")])[0] == (
        "inconclusive"
    )
    # a failed metric outweighs an inconclusive one
    assert run_outcome([tally("failed"), tally("inconclusive", name="latency")])[0] == "failed"
    assert run_outcome([tally(*["successful"] * 3)]) == (
        "successful",
        "errors: 3 of 3 successful",
    )
