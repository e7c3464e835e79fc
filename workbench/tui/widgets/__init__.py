"""Widgets of the workbench UI, one per file; they show data and post messages, and hold no business logic."""
