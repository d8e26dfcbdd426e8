"""``sigmarrow profile``: the command line of :mod:`sigmarrow.profile`, imported when it runs."""

from sigmarrow.cli import delegate

HELP = "the cost of each rule and each column on your data"
add_arguments, run = delegate("sigmarrow.profile")
