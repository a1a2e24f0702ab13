"""Physics core of the pump-station digital twin: pumps, networks, hydraulics.

Nothing in this package imports an orchestrator or a tracking server, and no
module does work at import time.
"""
