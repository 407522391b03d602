"""Root pytest configuration: markers and options live in pyproject.toml; shared fixtures in tests/."""
