"""hardware.errors: one root for what the sensor adapters raise, and the names the adapters
used to define still importable from where they were."""

import pytest

import hardware.base
import hardware.filedrop
import hardware.mqtt
from hardware.errors import ConnectionLost, HardwareError, Malformed, Misconfigured, Refused
from hardware.modbus import ModbusPoint


def test_every_adapter_error_is_a_hardware_error():
    for error in (Refused, Malformed, ConnectionLost, Misconfigured):
        assert issubclass(error, HardwareError)
    # as before the root: code catching ValueError still catches these
    assert issubclass(Malformed, ValueError) and issubclass(Misconfigured, ValueError)
    assert not issubclass(Refused, ValueError)


def test_the_old_names_are_the_same_classes():
    assert hardware.base.Refused is Refused
    assert hardware.filedrop.Malformed is hardware.mqtt.Malformed is Malformed


def test_a_refusal_carries_its_reason():
    e = Refused("no point 'CH4-09' at this site")
    assert e.reason == str(e) == "no point 'CH4-09' at this site"


def test_the_adapters_raise_them():
    with pytest.raises(Malformed, match="not JSON"):
        hardware.mqtt.readings_of(b"{oops")
    with pytest.raises(Malformed, match="the file is empty"):
        hardware.filedrop.parse("X_CDSS_20261129155940.txt", b"")
    with pytest.raises(Misconfigured, match="65535"):
        ModbusPoint("CH4-01", 70_000)
