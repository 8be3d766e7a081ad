"""Reinterpretation: new signals through a preserved analysis, CLs limits, campaigns.

* `pool` — one Dask cluster for many independent points (a LocalCluster, or the scheduler the
  user names / `$DASK_SCHEDULER_URI`), results as they finish;
* the signal path (`reanimate reinterpret`) and campaigns (`reanimate campaign`) build on it;
  the limits themselves live in `reanimate.statistics.limits`.
"""
