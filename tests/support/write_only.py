"""Values given to write-only endpoint settings in tests: each must never come back in a page or a response."""

TOKEN = "tok-bearer-SECRET-0001"
KEY_VALUE = "apikey-value-SECRET-0002"
PASSWORD = "basic-password-SECRET-0003"
HEADER_VALUE = "custom-header-SECRET-0004"
WRITE_ONLY_VALUES = [TOKEN, KEY_VALUE, PASSWORD, HEADER_VALUE]


def assert_none_shown(content: str | bytes) -> None:
    """None of the write-only values is in ``content`` (a page's HTML or a response body)."""
    text = content.decode() if isinstance(content, bytes) else content
    for value in WRITE_ONLY_VALUES:
        assert value not in text, value
