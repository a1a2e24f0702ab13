"""Detectors and predictors: scikit-learn estimators, PyTorch modules, training and evaluation.

Estimators follow the scikit-learn API (parameters stored in `__init__`, fitted attributes end in
`_`); PyTorch training and evaluation steps are plain functions. Nothing here reads settings or
environment variables: callers pass plain values. `models.registry` is the one MLflow boundary
(log, register, set the `champion` alias, load `models:/<name>@champion`); no other module
imports `mlflow`.
"""
