"""Exceptions raised by the data pipeline, so callers can tell user errors from bugs."""


class DataConfigError(ValueError):
    """A ``data:`` setting is invalid; the message names the key, the value and the fix."""


class DataUnavailableError(RuntimeError):
    """A corpus or tokenizer is neither on disk nor downloadable; the message explains how to supply it."""
