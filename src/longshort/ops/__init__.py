"""Pure functions on arrays: each forward with its backward right below it."""
