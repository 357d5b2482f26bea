"""Locust as a load client: fwbench's side and the locust processes' side, apart.

Locust monkey-patches its process with gevent on import, so the two sides never share a
process, and this ``__init__`` imports nothing (the driver processes import the package too):

- fwbench's side, pure of locust and gevent: :mod:`~loadgen.locust.client` (the public API:
  ``run_locust``, ``LocustSpec``, ``LocustInfo``, ``LocustError``), :mod:`~loadgen.locust.spec`
  (what a run is asked), :mod:`~loadgen.locust.launch` (the locust processes of one run:
  started, followed, stopped) and :mod:`~loadgen.locust.external` (a worker lent to a master on
  another machine, ``fwbench locust-worker``).
- The locust processes (``python -m loadgen.locust.driver {local,master,worker}``):
  :mod:`~loadgen.locust.driver` (entry), :mod:`~loadgen.locust.shared` (what the roles share),
  :mod:`~loadgen.locust.local`, :mod:`~loadgen.locust.master`, :mod:`~loadgen.locust.worker`
  and :mod:`~loadgen.locust.outputs` (the result file, locust's CSV and HTML).
- Pure code both sides use: :mod:`~loadgen.locust.protocol` (events, messages, the window) and
  :mod:`~loadgen.locust.recording` (error kinds, what one process measured).

The locustfiles, one per scenario, are in :mod:`loadgen.locustfiles`.
"""
