"""The agreement's rules as pure functions: state and `now` passed in, no I/O."""
