"""``sigmarrow explain``: the command line of :mod:`sigmarrow.explain`, imported when it runs."""

from sigmarrow.cli import delegate

HELP = "the compiled program of a rule: atoms, tables, prefilters"
add_arguments, run = delegate("sigmarrow.explain")
