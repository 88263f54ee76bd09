"""Driver: resources/ip_host."""
