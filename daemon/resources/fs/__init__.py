"""Driver: resources/fs."""
