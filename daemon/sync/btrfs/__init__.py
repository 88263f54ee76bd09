"""Driver: sync/btrfs."""
