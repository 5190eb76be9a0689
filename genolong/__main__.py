"""``python -m genolong`` runs the command line."""

from genolong.cli import main

if __name__ == "__main__":
    main()
