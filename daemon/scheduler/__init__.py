"""Scheduler: when jobs (sync, status refresh) run (SPEC §5.4)."""
