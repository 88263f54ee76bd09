"""Tests of the daemon: REST API, auth, actions, events, metrics, process lifecycle."""
