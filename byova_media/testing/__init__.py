"""Offline testing tools: a Webex-side simulator and pytest fixtures."""
