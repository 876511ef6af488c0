import pytest

from portal.tasks import ping


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_runs_a_task_through_redis(celery_worker):
    result = ping.delay("hello")
    # The worker answers from its own process, connected to the test database.
    assert result.get(timeout=30) == "pong:hello:test_slipway"
