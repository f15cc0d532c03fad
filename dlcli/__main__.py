"""`python -m dlcli` runs the same command as the `dlcli` script."""

from dlcli.cli import main

if __name__ == "__main__":
    main(prog_name="dlcli")
