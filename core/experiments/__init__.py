"""Learning from outreach experiments: arm statistics, decisions, segment policies."""
