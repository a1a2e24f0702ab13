"""Implementation of approved actions on the plant's control system, behind interlocks, with an audit log.

The twin's physics does not depend on this package: it holds the control interface (`interface`),
its implementations (the plant simulator and OPC UA), the interlocks that guard every write, the
approval policy and the append-only audit log. Nothing here imports Prefect.
"""
