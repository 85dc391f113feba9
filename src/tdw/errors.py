"""The error every check of a config, family or variant file raises: the ground of the package,
so any layer can raise it and the workflow and the dashboard catch one type."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config or family file that does not describe a valid workbench setup."""
