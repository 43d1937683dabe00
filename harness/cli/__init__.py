"""The command line: one module per command (``leaderboard`` one per group), assembled by
``harness.cli.app``, with one error handler (``harness.cli.handler``).

No logic lives here: a command parses its options, calls one function, prints the result.
"""
