"""Example apps: ``vivace examples.hello:app --dev``."""
