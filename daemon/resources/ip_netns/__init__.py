"""Driver: resources/ip_netns."""
