"""Feature engineering: pure pandas transforms, data-quality suites and the Feast feature repo.

Transforms turn validated historian readings into one row per (pump_id, event_timestamp);
Great Expectations suites decide which rows are valid and which go to quarantine; the Feast
repo (`feature_store.yaml` and the definitions) registers the features for point-in-time-correct
training sets and online scoring. `feast apply` imports every `.py` file here, so no module may
do work at import time; helpers that are not definitions are listed in `.feastignore`.
"""
