"""The fraud model's training side: the simulated marketplace, point-in-time replay, the trainer."""
