"""The workbench terminal UI (Textual); ``workbench.tui.app`` holds the app."""
