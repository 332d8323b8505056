"""Training, evaluation and simulation for Dozor's models (not deployed to Lambda)."""
