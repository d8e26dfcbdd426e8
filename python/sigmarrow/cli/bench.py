"""``sigmarrow bench``: the command line of :mod:`sigmarrow.bench`, imported when it runs."""

from sigmarrow.cli import delegate

HELP = "reproduce the headline speed table on generated data (about a minute)"
add_arguments, run = delegate("sigmarrow.bench")
