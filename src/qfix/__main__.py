"""``python -m qfix``: the same command as the ``qfix`` console script."""

from qfix.cli import main

if __name__ == "__main__":
    main(prog_name="qfix")
