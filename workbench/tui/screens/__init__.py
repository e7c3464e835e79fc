"""One screen per task; each is a mode of ``WorkbenchApp``."""
