"""``python -m gan_server`` is ``gan-server``."""

from .cli import main

main()
