"""gunicorn settings for the image and the chart: prometheus-client's multiprocess mode
needs each dead worker's files marked, and the directory emptied at start."""

import os
import shutil

from prometheus_client import multiprocess


def on_starting(server) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


# One structured log event per request comes from the app; gunicorn's access log would
# repeat it.
accesslog = None
