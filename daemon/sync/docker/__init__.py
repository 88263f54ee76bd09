"""Driver: sync/docker."""
