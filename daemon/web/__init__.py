"""The web console: pages over the API, served by ferryd at ``/`` (docs/console.md)."""
