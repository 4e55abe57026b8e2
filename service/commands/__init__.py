"""One module per `effort` subcommand, each with `run(args)`: call library functions, print results."""
