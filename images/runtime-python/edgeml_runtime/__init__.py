"""edgeml scoring runtime for Python: the pieces server.py wires together."""
