import pytest

from daemon.config import converters as c


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("90m", 5400), ("2h30m", 9000), ("1d3h", 97200), ("1w", 604800), ("0", 0)],
)
def test_duration(text: str, seconds: int) -> None:
    assert c.DURATION(text) == seconds


def test_duration_bare_number_in_minutes() -> None:
    assert c.DURATION_MINUTES("90") == 5400
    assert c.DURATION("90") == 90


@pytest.mark.parametrize("text", ["", "1x", "h1", "1h 30m", "-5m", "1.5h"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(ValueError):
        c.DURATION(text)


@pytest.mark.parametrize("seconds", [1, 59, 60, 3600, 97200, 90061])
def test_duration_render_round_trip(seconds: int) -> None:
    assert c.DURATION(c.render_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("Yes", True), ("1", True), ("FALSE", False), ("no", False), ("0", False)],
)
def test_boolean(text: str, value: bool) -> None:
    assert c.BOOLEAN(text) is value


def test_bad_boolean() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        c.BOOLEAN("maybe")


@pytest.mark.parametrize(
    ("text", "size"), [("512k", 524288), ("10m", 10485760), ("4g", 4 * 1024**3), ("100", 100)]
)
def test_size(text: str, size: int) -> None:
    assert c.SIZE(text) == size


def test_lists() -> None:
    assert c.LIST(" a  b\nc ") == ["a", "b", "c"]
    assert c.SHELL_WORDS("--exclude='a b' -v") == ["--exclude=a b", "-v"]
    assert c.NODE_LIST("N1 n2") == ["n1", "n2"]
    assert c.LOWER(" Flex ") == "flex"
