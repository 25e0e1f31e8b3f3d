"""edgeml scoring runtime for Python: the pieces server.py wires together, and the API scoring code
imports: `from edgeml_runtime import metrics`."""
from .custom_metrics import metrics  # noqa: F401
