"""Errors raised on the Python side look exactly like the ones the C++ core raises."""

from ._rotary import Error


def invalid(argument, message):
    """A rotary.Error (a ValueError) for `argument`, formatted as the C++ core formats its own."""
    error = Error(f"{argument}: {message}" if argument else message)
    error.argument = argument
    error.code = "invalid_argument"
    return error
