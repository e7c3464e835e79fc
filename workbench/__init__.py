"""Experiment management for SEDD: store, launcher, command line and terminal UI."""

__version__ = "0.1.0"
