"""The `gateway` command line: one module per subgroup."""
