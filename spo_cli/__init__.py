"""spo: Soft Policy Optimization for code models, as a command-line toolkit.

The package is a small library with thin typer commands on top (spo_cli.commands).
Records flow between stages as plain dicts (see spo_cli.schema) through streaming
readers and writers (spo_cli.streams).
"""

__version__ = "0.1.0"
