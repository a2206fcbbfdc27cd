"""Errors a user can fix by changing a name; the CLI turns them into exit status 2."""


class UnknownName(KeyError):
    """A registry lookup that failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError alone would print the repr of its argument
        return str(self.args[0]) if self.args else ""
