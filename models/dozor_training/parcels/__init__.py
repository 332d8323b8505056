"""The parcel-loss model's training side: simulated shipments, the offline sweep, the trainer."""
