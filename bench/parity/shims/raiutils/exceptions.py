"""Shim: the one exception class dice-ml imports from raiutils."""


class UserConfigValidationException(Exception):
    """Raised by dice-ml for an invalid user configuration."""
