"""``amqptool worker --print-config``: every setting, its value and its layer, masked."""

from __future__ import annotations

from pathlib import Path

from tests.dropin_support import amqptool, clean_env


def test_print_config_names_each_layer(tmp_path: Path) -> None:
    (tmp_path / "dropin_celeryconfig.py").write_text(
        "CELERYD_CONCURRENCY = 3\n"
        "CELERY_ACKS_LATE = True\n"
        "EMAIL_HOST_PASSWORD = 'hunter2'\n"
        "worker_max_tasks_per_child = 50\n"
    )
    env = clean_env(tmp_path)
    env["PROJ_BROKER_URL"] = "amqp://proj:app-secret@127.0.0.1:5672/projvh"
    env["AMQPTOOL_WORKER_PREFETCH_MULTIPLIER"] = "2"
    argv = ["worker", "-A", "proj", "--config", "dropin_celeryconfig", "-P", "threads"]
    proc = amqptool(*argv, "--print-config", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert rows["worker_pool"].endswith("= 'threads'  (flag)")
    assert rows["worker_prefetch_multiplier"].endswith("= 2  (env)")
    assert rows["broker_url"].endswith("= 'amqp://proj:****@127.0.0.1:5672/projvh'  (app)")
    assert rows["task_default_queue"].endswith("= 'proj.default'  (app)")
    assert rows["worker_concurrency"].endswith("= 3  (module)")
    assert rows["task_acks_late"].endswith("= True  (module)")
    assert rows["worker_max_tasks_per_child"].endswith("= 50  (module)")
    assert rows["email_host_password"].endswith("= '********'  (module)")
    assert rows["result_serializer"].endswith("= 'json'  (default)")
    assert "app-secret" not in proc.stdout and "hunter2" not in proc.stdout
    assert "ready" not in proc.stderr  # printed, not started
