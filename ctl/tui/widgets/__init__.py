"""The TUI's widgets, one per module: the live resource table, the status line, usage bars and the command bar."""
