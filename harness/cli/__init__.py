"""The command line: one module per command group, one error handler (``harness.cli.app``).

No logic lives here: a command parses its options, calls one function, prints the result.
"""
