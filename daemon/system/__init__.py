"""The edges that touch the host: external commands, mounts, namespaces."""
