"""Sentinel: a security monitoring agent for the Linux terminals of bank branches."""

# the one place the version lives (pyproject reads it; importlib.metadata would cost every CLI
# start ~50 ms of imports)
__version__ = "0.1.0"
