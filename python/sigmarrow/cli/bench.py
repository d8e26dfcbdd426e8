"""``sigmarrow bench``: the command line of :mod:`sigmarrow.bench`, imported when it runs."""

from sigmarrow.cli import delegate

HELP = "time your rules on your data (or on a small built-in sample)"
add_arguments, run = delegate("sigmarrow.bench")
