"""Training scripts for the bundled model."""
