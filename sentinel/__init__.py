"""Sentinel: a security monitoring agent for the Linux terminals of bank branches."""

from importlib import metadata

try:
    __version__ = metadata.version("sentinel-agent")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
