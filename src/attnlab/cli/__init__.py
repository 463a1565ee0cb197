"""The ``attnlab`` command. Subcommand modules only parse arguments and call the library."""
