"""Driver: sync/rsync."""
