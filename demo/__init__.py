"""The demo: synthetic data, seed_demo and simulate_traffic (README, "Quick start")."""
