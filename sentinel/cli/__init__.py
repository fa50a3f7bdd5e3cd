"""`sentinel <command>`: the command-line entry point and its command groups."""
