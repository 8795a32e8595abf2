"""The ``centaurusctl`` command line (Typer + Rich)."""
