"""The simulated BlueZ programs: ``python -m pygatt.testing.sim TOOL --world W -- ARGS``."""
