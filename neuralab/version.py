"""The package version, kept apart so that modules low in the import order can read it."""

__version__ = "0.1.0"
