"""``python -m dispatcher.cli``: the same as the ``plp`` command."""

from dispatcher.cli import main

main(prog_name="plp")
