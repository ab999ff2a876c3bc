"""Errors that are the user's to fix, carried to one clear line by the CLI and the web app."""

from __future__ import annotations


class LearnloopError(Exception):
    """Base class: something the user can act on; its message is shown as-is."""


class ConfigError(LearnloopError):
    """A connection's configuration or mapping is wrong."""


class InputError(LearnloopError):
    """An input file or table cannot be read as a whole (missing column, wrong encoding)."""


class NotFoundError(LearnloopError):
    """A named object (connection, proposal) does not exist."""


class ConnectorError(LearnloopError):
    """A tool answered with an error that stops the current operation."""
