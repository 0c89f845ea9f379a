"""``python -m eduflow.cli``."""

from eduflow.cli import main

main()
