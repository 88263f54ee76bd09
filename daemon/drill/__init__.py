"""Drills: a rehearsal of a takeover inside an isolated bubble while production runs."""
