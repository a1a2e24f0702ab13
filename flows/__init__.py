"""Orchestration layer: Prefect flows and tasks, the `pumptwin` CLI and the settings object.

Flows are wiring only. They build `flows.settings.Settings` once per entry point, pass plain
values down to the core packages (`twin`, `features`, `models`, `agents`) and hold no domain
logic of their own. This is the only package that imports `prefect`.
"""
