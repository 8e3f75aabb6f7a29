"""Sensor adapters: Modbus TCP, MQTT, monitoring-system file drops, site simulators."""
