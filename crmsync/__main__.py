"""`python -m crmsync ...` is the `crmsync` command."""

from crmsync.sync.cli import main

if __name__ == "__main__":
    main()
