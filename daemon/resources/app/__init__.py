"""Driver: resources/app."""
