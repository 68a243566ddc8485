"""skiff.schedule: Cron and Period validation, messages and wire form."""

import os

import pytest

from skiff.exception import InvalidError
from skiff.schedule import Cron, Period, Schedule

HAVE_TZDATA = os.path.exists("/usr/share/zoneinfo/Europe/Paris")


# ---- Cron ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "*/15 * * * *",
        "10-50/10 1-5,7 * jan-Mar,DEC sun,7",
        "0 9 * * MON-FRI",
        "0 0 13 * FRI",
        "0 0 29 2 *",
        "5/15 * * * *",
        "0 0 * * 7",
        "0 000000000000002 * * *",
        "  0   3\t* *  *  ",
        "@hourly",
        "@Daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@midnight",
    ],
)
def test_cron_accepts(expr):
    c = Cron(expr)
    assert c._to_wire() == {"type": "cron", "cron": expr, "timezone": "UTC"}
    assert isinstance(c, Schedule)


@pytest.mark.parametrize(
    "expr,msg",
    [
        ("61 * * * *", "cron '61 * * * *': minute 61 is out of range 0-59"),
        ("* * *", "cron '* * *': needs 5 fields (minute hour day month weekday), got 3"),
        ("* * * * * *", "cron '* * * * * *': needs 5 fields (minute hour day month weekday), got 6"),
        ("", "cron '': needs 5 fields (minute hour day month weekday), got 0"),
        ("* 24 * * *", "cron '* 24 * * *': hour 24 is out of range 0-23"),
        ("* * 0 * *", "cron '* * 0 * *': day 0 is out of range 1-31"),
        ("* * * 13 *", "cron '* * * 13 *': month 13 is out of range 1-12"),
        ("* * * * 8", "cron '* * * * 8': weekday 8 is out of range 0-7"),
        ("1-60 * * * *", "cron '1-60 * * * *': minute 60 is out of range 0-59"),
        ("*/0 * * * *", "cron '*/0 * * * *': minute step 0 is out of range 1-60"),
        ("5-1 * * * *", "cron '5-1 * * * *': minute range 5-1 is backwards (ranges do not wrap around)"),
        (
            "x * * * *",
            "cron 'x * * * *': minute 'x' is not a number, a range (a-b), a list (a,b) or a step (*/n, a-b/n)",
        ),
        (
            "* * * FOO *",
            "cron '* * * FOO *': month 'FOO' is not a number, a name (JAN-DEC), a range (a-b), "
            "a list (a,b) or a step (*/n, a-b/n)",
        ),
        (
            "* * * * MONDAY",
            "cron '* * * * MONDAY': weekday 'MONDAY' is not a number, a name (SUN-SAT), a range (a-b), "
            "a list (a,b) or a step (*/n, a-b/n)",
        ),
        ("1,,2 * * * *", "cron '1,,2 * * * *': minute '1,,2' has an empty list item"),
        (
            "@reboot",
            "cron '@reboot': unknown nickname '@reboot' (use @hourly, @daily, @weekly, @monthly or @yearly)",
        ),
        ("@daily 1", "cron '@daily 1': a nickname such as '@daily' stands alone"),
        ("0 0 30 2 *", "cron '0 0 30 2 *': never fires (no month of '2' has a day '30')"),
        ("* * * * * \x01", "cron string holds a control character (byte 0x01)"),
        ("0 0 * 99999999999999 *", "cron '0 0 * 99999999999999 *': month 99999999999999 is out of range 1-12"),
    ],
)
def test_cron_refuses_with_the_daemons_message(expr, msg):
    with pytest.raises(InvalidError) as e:
        Cron(expr)
    assert str(e.value) == msg


def test_cron_types_and_long_strings():
    with pytest.raises(InvalidError, match="must be a str"):
        Cron(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidError, match="timezone=...\\) must be a str"):
        Cron("* * * * *", timezone=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidError, match="too long"):
        Cron("1" * 201)
    with pytest.raises(InvalidError) as e:
        Cron("* * * * é")
    assert str(e.value) == "cron '* * * * é': only ASCII is accepted (byte 0xc3)"


@pytest.mark.skipif(not HAVE_TZDATA, reason="no tzdata")
def test_timezones():
    c = Cron("0 3 * * *", timezone="Europe/Paris")
    assert c._to_wire() == {"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Paris"}
    assert repr(c) == "Cron('0 3 * * *', timezone='Europe/Paris')"
    Cron("0 3 * * *", timezone="America/New_York")
    with pytest.raises(InvalidError, match=r"timezone 'Mars/Olympus' is unknown"):
        Cron("0 3 * * *", timezone="Mars/Olympus")
    with pytest.raises(InvalidError, match=r"timezone 'zone.tab' is unknown"):
        Cron("0 3 * * *", timezone="zone.tab")


@pytest.mark.parametrize("tz", ["../../etc/passwd", "/etc/localtime", "Europe/./Paris", "", "Europe Paris", "right/UTC"])
def test_timezone_names_refused(tz):
    with pytest.raises(InvalidError) as e:
        Cron("* * * * *", timezone=tz)
    assert str(e.value) == f"timezone '{tz}' is not an IANA zone name such as 'Europe/Paris'"


def test_utc_needs_no_tzdata(monkeypatch):
    import skiff.schedule as sch

    monkeypatch.setattr(sch, "ZONEINFO_DIR", "/nonexistent")
    assert Cron("0 3 * * *")._to_wire()["timezone"] == "UTC"
    # Without tzdata here, the name is left to skiffd.
    assert Cron("0 3 * * *", timezone="Europe/Paris").timezone == "Europe/Paris"


def test_cron_equality_and_repr():
    assert Cron("0 3 * * *") == Cron("0 3 * * *")
    assert Cron("0 3 * * *") != Cron("0 4 * * *")
    assert hash(Cron("0 3 * * *")) == hash(Cron("0 3 * * *"))
    assert repr(Cron("0 3 * * *")) == "Cron('0 3 * * *')"


# ---- Period -------------------------------------------------------------------------------
def test_period_wire():
    assert Period(minutes=5)._to_wire() == {
        "type": "period",
        "years": 0,
        "months": 0,
        "weeks": 0,
        "days": 0,
        "hours": 0,
        "minutes": 5,
        "seconds": 0.0,
    }
    w = Period(years=1, months=2, weeks=3, days=4, hours=5, minutes=6, seconds=7.5)._to_wire()
    assert w == {
        "type": "period",
        "years": 1,
        "months": 2,
        "weeks": 3,
        "days": 4,
        "hours": 5,
        "minutes": 6,
        "seconds": 7.5,
    }
    assert isinstance(Period(seconds=1)._to_wire()["seconds"], float)
    assert Period(seconds=300) == Period(seconds=300.0)
    assert repr(Period(hours=1, minutes=30)) == "Period(hours=1, minutes=30)"


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({}, "Period() is too short: a period must last at least 1 second"),
        ({"seconds": 0.5}, "Period(seconds=0.5) is too short: a period must last at least 1 second"),
        ({"days": -1}, "Period(days=-1) must not be negative"),
        ({"hours": 1.5}, "Period(hours=1.5) must be a whole number"),
        ({"minutes": True}, "Period(minutes=True) must be a whole number"),
        ({"seconds": "5"}, "Period(seconds='5') must be a number"),
        ({"seconds": float("nan")}, "Period(seconds=nan) must be a number >= 0"),
        ({"seconds": -1}, "Period(seconds=-1) must be a number >= 0"),
        ({"years": 101}, "Period(years=101) is too long: a period lasts at most 100 years"),
    ],
)
def test_period_refusals(kwargs, msg):
    with pytest.raises(InvalidError) as e:
        Period(**kwargs)
    assert str(e.value) == msg


def test_period_is_keyword_only():
    with pytest.raises(TypeError):
        Period(5)  # type: ignore[misc]


def test_invalid_error_is_a_value_error():
    with pytest.raises(ValueError):
        Cron("nope")
