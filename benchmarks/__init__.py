"""Reproducible performance and accuracy runs (`make bench`)."""
