"""The project's tasks: @app.task, @shared_task, bound, retrying, progress, routed, signals."""

import time

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_init,
    worker_ready,
)

from .celery import app

SEEN: list[list[str]] = []  # the task signals this worker process received


@worker_init.connect
def _worker_init(**_kw):
    SEEN.append(["worker_init"])


@worker_ready.connect
def _worker_ready(**_kw):
    SEEN.append(["worker_ready"])


@task_prerun.connect
def _prerun(sender=None, task_id=None, **_kw):
    SEEN.append(["prerun", sender.name, task_id])


@task_postrun.connect
def _postrun(sender=None, task_id=None, state=None, **_kw):
    SEEN.append(["postrun", sender.name, task_id, state])


@task_success.connect
def _success(sender=None, **_kw):
    SEEN.append(["success", sender.name, sender.request.id])


@task_failure.connect
def _failure(sender=None, task_id=None, exception=None, **_kw):
    SEEN.append(["failure", sender.name, task_id, type(exception).__name__])


@task_retry.connect
def _retry(sender=None, request=None, **_kw):
    SEEN.append(["retry", sender.name, request.id])


@app.task
def add(x, y):
    return x + y


@shared_task
def mul(x, y):
    return x * y


@app.task(bind=True)
def whoami(self):
    req = self.request
    return {
        "id": req.id,
        "retries": req.retries,
        "routing_key": (req.delivery_info or {}).get("routing_key"),
        "is_eager": req.is_eager,
        "task": self.name,
    }


@app.task(bind=True, max_retries=3, default_retry_delay=0.1)
def flaky(self, fail_times):
    if self.request.retries < fail_times:
        raise self.retry(exc=KeyError(f"try {self.request.retries}"))
    return self.request.retries


@app.task(autoretry_for=(ZeroDivisionError,), retry_kwargs={"max_retries": 2, "countdown": 0.1})
def divide(x, y):
    return x / y


@app.task(bind=True)
def progress(self, steps):
    for i in range(steps):
        self.update_state(state="PROGRESS", meta={"done": i + 1, "of": steps})
    return steps


@app.task
def boom(message):
    raise ValueError(message)


@app.task(bind=True)
def where_am_i(self):
    return (self.request.delivery_info or {}).get("routing_key")


@app.task(bind=True)
def urgent(self, tag):
    return [tag, (self.request.delivery_info or {}).get("routing_key")]


@app.task(bind=True)
def spawn(self):
    """A task that calls a task: the child follows task_routes (to the quorum queue)."""
    child = where_am_i.apply_async(reply_to=self.request.reply_to)
    return child.id


@app.task
def signals_seen(task_id):
    return [entry for entry in SEEN if task_id in entry]


@app.task
def worker_signals_seen():
    return sorted({entry[0] for entry in SEEN if entry[0].startswith("worker_")})


class Greet(Task):
    name = "proj.tasks.Greet"

    def run(self, who):
        return f"hello {who}"


greet = app.register_task(Greet())


@app.task(rate_limit="100/m", time_limit=30, soft_time_limit=20)
def limited():
    return "ok"


@app.task(soft_time_limit=0.5)
def soft_limited():
    try:
        time.sleep(10)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "not stopped"
