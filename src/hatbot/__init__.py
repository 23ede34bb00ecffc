"""hatbot: a bot for The Hat word game, with its model lifecycle and operations."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hatbot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
