"""Lessons that become tested rules: entered or imported, tested every learning run."""
