"""Restore points: earlier states of the replicated data kept on the receiving side."""
