import pytest
from django.db import connection

from portal.tasks import ping


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_process_runs_a_task_through_redis(celery_worker):
    result = ping.delay("hello")
    # The worker answers from its own process, connected to the test database.
    # The worker uses the tests' own database, not the one `make run` uses.
    assert result.get(timeout=30) == f"pong:hello:{connection.settings_dict['NAME']}"
