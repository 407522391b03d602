"""The playground: talk to any agent of this server from a browser, as Webex would call it."""
