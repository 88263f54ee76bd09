"""Driver: resources/container_docker."""
