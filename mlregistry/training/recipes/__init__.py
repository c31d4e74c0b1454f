"""Old module paths kept for stored artifacts (see engagement_anomaly.py)."""
