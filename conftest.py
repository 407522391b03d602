"""Root pytest configuration; markers and options are in pyproject.toml, fixtures in tests/."""
