"""Training, evaluation and simulation for Dozor's models (not deployed to Lambda).

- ``fraud/``: the simulated marketplace (``simulator`` and its ``sim_*`` parts), the point-in-time
  replay through the serving feature code, the fraud trainer and its commands and benchmarks.
- ``parcels/``: simulated shipments for those orders, the offline sweep and alert metrics
  (``evaluation``), the parcel-loss trainer and its report sections, the serving-path replay.
- Shared by both: history files (``history`` reads, ``history_writer`` writes, ``history_commands``
  simulate and score-batch), the booster fit and calibration (``fitting``), the model-agnostic
  evaluation (``evaluation``, ``thresholds``) and report (``report``, ``report_plots``,
  ``report_text``); and the ``dozor`` CLI and the demo on top.
"""
