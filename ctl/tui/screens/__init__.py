"""The TUI's screens, one per module; modal ones (confirm, prompt, chooser, help) return a value through ``dismiss``."""
