"""The workbench terminal UI (Textual). ``workbench.tui.app`` defines the app."""
