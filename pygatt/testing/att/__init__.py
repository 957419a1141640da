"""A software BLE peripheral that speaks ATT, for running BlueZ's real gatttool without a radio.

* :mod:`~pygatt.testing.att.pdu`: the ATT codec (bytes in, bytes out, no I/O);
* :mod:`~pygatt.testing.att.responder`: the GATT server logic of one link (no I/O);
* :mod:`~pygatt.testing.att.server`: the peripheral on Unix sockets (one thread);
* :mod:`~pygatt.testing.att.realtool`: builds the LD_PRELOAD shim
  (``l2cap_shim.c``) and the command that runs the real gatttool through it.
"""
