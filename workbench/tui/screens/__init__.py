"""One screen per task. Each is a mode of ``WorkbenchApp``."""
