"""Click-protocol evaluation."""
