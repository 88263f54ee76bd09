"""Ferry's testbed: a real multi-node cluster on one machine, made of namespaces.

See README.md beside this file. Entry points: the CLI (``python -m
tests.testbed``), the ``Testbed`` class, and the pytest fixtures in
tests/conftest.py. Standard library only.
"""

from .cluster import Testbed
from .procs import TestbedError
from .topology import DEFAULT_NODES, DEFAULT_SHARED, node_ip

__all__ = ["DEFAULT_NODES", "DEFAULT_SHARED", "Testbed", "TestbedError", "node_ip"]
