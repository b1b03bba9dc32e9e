"""Golden vectors: messages captured from a real Celery 5.7 worker (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

PLAIN_ADD: dict[str, Any] = {
    "exchange": "",
    "routing_key": "celery",
    "properties": {
        "reply_to": "e8ecb041-74f6-3c2e-a75f-0c1e7cb0ea79",
        "correlation_id": "04f87bf7-2f27-4215-b5ce-f8ae08df6cce",
        "priority": 0,
        "delivery_mode": 2,
        "content_encoding": "utf-8",
        "content_type": "application/json",
    },
    "headers": {
        "lang": "py",
        "task": "proto_app.add",
        "id": "04f87bf7-2f27-4215-b5ce-f8ae08df6cce",
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": "04f87bf7-2f27-4215-b5ce-f8ae08df6cce",
        "parent_id": None,
        "argsrepr": "(2, 3)",
        "kwargsrepr": "{}",
        "origin": "gen12751@vm",
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    },
    "body": [[2, 3], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
}

FULL_ADD: dict[str, Any] = {
    "exchange": "",
    "routing_key": "celery",
    "properties": {
        "expiration": "120000",
        "reply_to": "e8ecb041-74f6-3c2e-a75f-0c1e7cb0ea79",
        "correlation_id": "12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8",
        "priority": 5,
        "delivery_mode": 2,
        "content_encoding": "utf-8",
        "content_type": "application/json",
    },
    "headers": {
        "lang": "py",
        "task": "proto_app.add",
        "id": "12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8",
        "shadow": "add-alias",
        "eta": "2026-11-21T09:59:20.531838+00:00",
        "expires": "2026-11-21T10:01:17.531838+00:00",
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [30, 20],
        "root_id": "12fd4f3d-cc62-43c9-a1eb-4d176e7df5c8",
        "parent_id": None,
        "argsrepr": "(4, 5)",
        "kwargsrepr": "{}",
        "origin": "gen12751@vm",
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        "x_custom": "hi",
    },
    "body": [
        [4, 5],
        {},
        {
            "callbacks": [
                {
                    "task": "proto_app.add",
                    "args": [10],
                    "kwargs": {},
                    "options": {},
                    "subtask_type": None,
                    "immutable": False,
                }
            ],
            "errbacks": [
                {
                    "task": "proto_app.fail",
                    "args": ["errback"],
                    "kwargs": {},
                    "options": {},
                    "subtask_type": None,
                    "immutable": True,
                }
            ],
            "chain": None,
            "chord": None,
        },
    ],
}

CHAIN_FIRST_BODY: list[Any] = [
    [1, 1],
    {},
    {
        "callbacks": None,
        "errbacks": None,
        "chain": [
            {
                "task": "proto_app.add",
                "args": [3],
                "kwargs": {},
                "options": {
                    "task_id": "ff37f644-f1b8-4f19-a076-7a439e145264",
                    "reply_to": "e8ecb041-74f6-3c2e-a75f-0c1e7cb0ea79",
                },
                "subtask_type": None,
                "immutable": False,
            },
            {
                "task": "proto_app.add",
                "args": [2],
                "kwargs": {},
                "options": {
                    "task_id": "e07adacf-bf34-4ebd-b11d-a598817f72bd",
                    "reply_to": "e8ecb041-74f6-3c2e-a75f-0c1e7cb0ea79",
                },
                "subtask_type": None,
                "immutable": False,
            },
        ],
        "chord": None,
    },
]

V1_CELERY5: dict[str, Any] = {
    "properties": {
        "expiration": "60000",
        "reply_to": "165a9caf-7646-3172-9413-5b7e8baa0a02",
        "correlation_id": "9ceefa48-77b5-41d6-a859-8fb52b20da94",
        "priority": 0,
        "delivery_mode": 2,
        "content_encoding": "utf-8",
        "content_type": "application/json",
    },
    "headers": {},
    "body": {
        "task": "proto_app.add",
        "id": "9ceefa48-77b5-41d6-a859-8fb52b20da94",
        "args": [20, 22],
        "kwargs": {},
        "group": None,
        "group_index": None,
        "retries": 0,
        "eta": "2026-11-21T10:01:51.053480+00:00",
        "expires": "2026-11-21T10:02:50.053480+00:00",
        "utc": True,
        "callbacks": None,
        "errbacks": None,
        "timelimit": [None, None],
        "taskset": None,
        "chord": None,
    },
}

V1_CELERY1: dict[str, Any] = {
    "properties": {
        "reply_to": "proto-v1-reply",
        "correlation_id": "56b3f617-3e92-49f5-8407-58ca4646722a",
        "delivery_mode": 2,
        "content_encoding": "utf-8",
        "content_type": "application/json",
    },
    "headers": {},
    "body": {
        "task": "proto_app.add",
        "id": "56b3f617-3e92-49f5-8407-58ca4646722a",
        "args": [3, 4],
        "kwargs": {},
        "retries": 0,
        "eta": "2026-11-21T10:01:53.070898",
    },
}

RESULT_SUCCESS: dict[str, Any] = {
    "status": "SUCCESS",
    "result": 5,
    "traceback": None,
    "children": [],
    "date_done": "2026-11-21T09:59:17.528926+00:00",
    "task_id": "04f87bf7-2f27-4215-b5ce-f8ae08df6cce",
}

RESULT_FAILURE: dict[str, Any] = {
    "status": "FAILURE",
    "result": {"exc_type": "KeyError", "exc_message": ["nope 7"], "exc_module": "builtins"},
    "traceback": "Traceback (most recent call last):\n ...\nKeyError: 'nope 7'\n",
    "children": [],
    "date_done": "2026-11-21T09:59:22.599748+00:00",
    "task_id": "6978d80d-5898-48dc-b277-a731b45462b0",
}

HEARTBEAT: dict[str, Any] = {
    "hostname": "proto1@vm",
    "utcoffset": 0.0,
    "pid": 10629,
    "clock": 39,
    "freq": 2.0,
    "active": 0,
    "processed": 0,
    "loadavg": [0.56, 0.43, 0.18],
    "sw_ident": "py-celery",
    "sw_ver": "5.7.0",
    "sw_sys": "Linux",
    "timestamp": 1795255149.7817392,
    "type": "worker-heartbeat",
}

TASK_MULTI: list[dict[str, Any]] = [
    {
        "hostname": "proto1@vm",
        "utcoffset": 0.0,
        "pid": 10629,
        "clock": 139,
        "uuid": "6e9db3b2-eabb-4a40-a144-fdd7c8ba4be1",
        "name": "proto_app.sleeper",
        "args": "(25,)",
        "kwargs": "{}",
        "root_id": "6e9db3b2-eabb-4a40-a144-fdd7c8ba4be1",
        "parent_id": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timestamp": 1795255202.447996,
        "type": "task-received",
    },
    {
        "hostname": "proto1@vm",
        "utcoffset": 0.0,
        "pid": 10629,
        "clock": 140,
        "uuid": "0ef8799a-ea6a-41b7-b0fc-3c852d701937",
        "timestamp": 1795255202.4480875,
        "type": "task-started",
    },
]

PING_REQUEST: dict[str, Any] = {
    "method": "ping",
    "arguments": {},
    "destination": None,
    "pattern": None,
    "matcher": None,
    "ticket": "33b87b4a-0a1b-4d82-9157-44ef32fc251b",
    "reply_to": {
        "exchange": "reply.celery.pidbox",
        "routing_key": "92bc77dd-3752-3753-9693-e89af94d4d03",
    },
}

REVOKE_CAST: dict[str, Any] = {
    "method": "revoke",
    "arguments": {
        "task_id": "da5457da-3222-45d3-9091-2575df27b14d",
        "terminate": False,
        "signal": "SIGTERM",
    },
    "destination": None,
    "pattern": None,
    "matcher": None,
}
