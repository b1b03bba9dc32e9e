"""Settings resolution: layers, old upper-case names, provenance, masking, did-you-mean."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqptool.celeryconf import resolve
from amqptool.errors import UsageError


@pytest.fixture
def confdir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("dropinconf")]:
            del sys.modules[name]


def _module(confdir: Path, name: str, text: str) -> str:
    (confdir / f"{name}.py").write_text(text)
    return name


def test_layers_flag_env_module_default(confdir: Path) -> None:
    module = _module(
        confdir,
        "dropinconf_a",
        "import os\n"
        "BROKER_URL = 'amqp://u:pw@h//'\n"
        "CELERY_DEFAULT_QUEUE = 'old'\n"
        "CELERYD_CONCURRENCY = 3\n"
        "worker_prefetch_multiplier = 7\n"
        "task_acks_late = True\n"
        "helper = 'not a setting'\n",
    )
    env = {"AMQPTOOL_WORKER_PREFETCH_MULTIPLIER": "2", "AMQP_URL": "amqp://e:pw2@env//"}
    conf = resolve(flags={"worker_concurrency": 5}, environ=env, module=module)
    assert (conf["worker_concurrency"], conf.sources["worker_concurrency"]) == (5, "flag")
    assert (conf["worker_prefetch_multiplier"], conf.sources["worker_prefetch_multiplier"]) == (
        2,
        "env",
    )
    assert conf["broker_url"] == "amqp://e:pw2@env//" and conf.sources["broker_url"] == "env"
    assert (conf["task_default_queue"], conf.sources["task_default_queue"]) == ("old", "module")
    assert conf["task_acks_late"] is True and conf.sources["task_acks_late"] == "module"
    assert (conf["worker_pool"], conf.sources["worker_pool"]) == ("prefork", "default")
    printed = "\n".join(conf.lines())
    assert "pw" not in printed and "amqp://e:****@env//" in printed
    assert "worker_concurrency         = 5  (flag)" in printed


def test_secrets_are_masked(confdir: Path) -> None:
    module = _module(confdir, "dropinconf_b", "EMAIL_HOST_PASSWORD = 's3cret'\n")
    printed = "\n".join(resolve(environ={}, module=module).lines())
    assert (
        "s3cret" not in printed and "email_host_password        = '********'  (module)" in printed
    )


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("CELERYD_CONCURENCY = 3\n", "did you mean CELERYD_CONCURRENCY?"),
        ("task_acks_lat = True\n", "did you mean task_acks_late?"),
        ("worker_prefetch_multiplyer = 1\n", "did you mean worker_prefetch_multiplier?"),
    ],
)
def test_unknown_settings_get_a_did_you_mean(confdir: Path, text: str, hint: str) -> None:
    module = _module(confdir, f"dropinconf_c{abs(hash(text))}", text)
    with pytest.raises(UsageError, match="unknown setting") as info:
        resolve(environ={}, module=module)
    assert info.value.hint == hint


def test_a_module_that_does_not_import(confdir: Path) -> None:
    module = _module(confdir, "dropinconf_d", "raise RuntimeError('broken config')\n")
    with pytest.raises(UsageError, match="does not import: RuntimeError: broken config"):
        resolve(environ={}, module=module)
    with pytest.raises(UsageError, match="does not import: ModuleNotFoundError"):
        resolve(environ={}, module="dropinconf_missing")


def test_bad_environment_values() -> None:
    with pytest.raises(UsageError, match=r"\$AMQPTOOL_WORKER_CONCURRENCY: 'many'"):
        resolve(environ={"AMQPTOOL_WORKER_CONCURRENCY": "many"})
    assert resolve(environ={"AMQPTOOL_ACCEPT_CONTENT": "json,msgpack"})["accept_content"] == [
        "json",
        "msgpack",
    ]


def test_a_celery_apps_conf_is_a_layer_between_env_and_module(confdir: Path) -> None:
    from celery import Celery

    app = Celery("dropinconf", set_as_current=False)
    app.conf.update(task_default_queue="from-app", worker_concurrency=9)
    module = _module(confdir, "dropinconf_e", "task_default_queue = 'from-module'\n")
    conf = resolve(environ={"AMQPTOOL_WORKER_CONCURRENCY": "4"}, app=app, module=module)
    assert conf.sources["task_default_queue"] == "app" and conf["task_default_queue"] == "from-app"
    assert conf.sources["worker_concurrency"] == "env"
