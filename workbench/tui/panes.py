"""The panes of the UI: mode name, number key and tab label, in tab order."""

PANES: tuple[tuple[str, str, str], ...] = (
    ("experiments", "1", "Experiments"),
    ("editor", "2", "Config"),
    ("monitor", "3", "Monitor"),
    ("sampling", "4", "Sample"),
    ("infill", "5", "Infill"),
    ("compare", "6", "Compare"),
)
