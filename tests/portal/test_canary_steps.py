"""Canary steps as a team admin writes them on the team page: weights that grow, a pause in
seconds or "lead", 100 % last; anything else is refused with the step it is about."""

import pytest

from portal.catalog.canary_steps import CanaryStepsInvalid, parse_canary_steps
from tests.portal.test_target_boundaries import _beta, teams  # noqa: F401 (fixture)
from tests.support.targets import save_target


def test_steps_before_promotion_with_their_pauses():
    steps = parse_canary_steps([{"weight": 10}, {"weight": 50, "pause": "lead"},
                                {"weight": 80, "pause": 30}, {"weight": 100}])  # fmt: skip
    assert [s.as_dict() for s in steps] == [
        {"weight": 10, "pause_seconds": 0, "wait_for_lead": False},
        {"weight": 50, "pause_seconds": 0, "wait_for_lead": True},
        {"weight": 80, "pause_seconds": 30, "wait_for_lead": False},
    ]
    assert parse_canary_steps([]) == []


@pytest.mark.parametrize(
    ("steps", "said"),
    [
        ({"weight": 10}, "a list"),
        ([{"weight": 50}, {"weight": 10}], "Step 2: weights must grow (50 → 10)"),
        ([{"weight": 0}], "Step 1: weight must be a whole percentage"),
        ([{"weight": "10"}], "Step 1: weight must be a whole percentage"),
        ([{"weight": 100}, {"weight": 100}], "Step 1: 100 % promotes, so it comes last"),
        ([{"weight": 10, "pause": "forever"}], 'Step 1: pause is seconds (0 to 86400) or "lead"'),
        ([{"weight": 10, "wait": 5}], "Step 1: write"),
    ],
)
def test_wrong_steps_are_refused_naming_the_step(steps, said):
    with pytest.raises(CanaryStepsInvalid) as caught:
        parse_canary_steps(steps)
    assert said in str(caught.value)


@pytest.mark.django_db
def test_a_team_admin_turns_canary_steps_on_and_a_wrong_list_is_refused(client, teams):  # noqa: F811
    client.force_login(teams["t_admin"])
    target = _beta(teams["path"].service)
    _, page = save_target(client, target, canary_steps='[{"weight": 20}, {"weight": 10}]')
    assert "weights must grow (20 → 10)" in page
    target.refresh_from_db()
    assert target.canary_steps == []
    _, page = save_target(client, target, canary_steps='[{"weight": 20, "pause": "lead"}]')
    target.refresh_from_db()
    assert target.canary_steps == [{"weight": 20, "pause": "lead"}]
    assert "canary steps: 20 % (pause lead)" in page
    _, page = save_target(client, target, canary_steps="")
    target.refresh_from_db()
    assert target.canary_steps == []
