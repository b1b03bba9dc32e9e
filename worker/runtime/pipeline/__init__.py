"""The stages a delivery passes on the broker thread: intake → ETA stage → rate gate → pool →
reports.

Rule: broker thread only; each stage gets the few things it uses. ``watch`` stops running
tasks at their time limits or on ``revoke(terminate=True)``.

- :mod:`worker.runtime.pipeline.intake`: a delivery becomes a Request, or is rejected;
- :mod:`worker.runtime.pipeline.eta_stage`: a future ETA waits here, in memory or on the broker;
- :mod:`worker.runtime.pipeline.rate_gate`: per-task-type rate limits;
- :mod:`worker.runtime.pipeline.reports`: the pool's reports turned into results, events, acks;
- :mod:`worker.runtime.pipeline.watch`: time limits and terminate on running tasks;
- :mod:`worker.runtime.pipeline.redelivery`: a redelivered copy of a task still running here
  waits for that run (``consumer_timeout``) and never runs beside it.
"""

__all__: list[str] = []
