"""Widgets of the workbench UI, one per file. They show data and post messages, and hold no business logic."""
