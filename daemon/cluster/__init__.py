"""The cluster: heartbeats, the cluster state's single owner, placement, orchestration."""
