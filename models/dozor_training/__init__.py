"""Training, evaluation and simulation for Dozor's models (not deployed to Lambda).

- ``fraud/``: the simulated marketplace (``simulator`` and its ``sim_*`` parts), the point-in-time
  replay through the serving feature code, the fraud trainer and its commands and benchmarks.
- ``parcels/``: simulated shipments for those orders, the offline sweep and alert metrics
  (``evaluation``), the parcel-loss trainer and its report sections, the serving-path replay.
- Shared by both: history files (``history`` reads, ``history_rejects`` reports and quarantines
  bad rows, ``history_writer`` writes, ``history_commands`` simulate and score-batch), the booster
  fit and calibration (``fitting``), hyperparameter search on time-ordered folds (``tune``), the
  model-agnostic evaluation (``evaluation``, ``thresholds``) and report (``report``,
  ``report_plots``, ``report_text``, ``report_selection``); and the ``dozor`` CLI and the demo on top.
  ``fraud/coverage`` says which feature families a history fed.
"""

import os

# Before xgboost or scikit-learn loads OpenMP: threads waiting at a barrier sleep instead of
# spinning. Spinning threads on a busy machine (2 cores shared with other work) made a 62k-order
# fit take 71 s with two threads against 4 s with one; passive, two threads took 4 s too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
