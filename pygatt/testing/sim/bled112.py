"""The firmware of a simulated BLED112: BGAPI commands answered from a :class:`~pygatt.testing.world.World`.

:class:`Firmware` takes decoded commands (names and fields as the BGAPI codec
names them) and answers through a :class:`Host`: exactly one response per
command, then the events the command causes, scheduled on the simulator's
timers so they always follow the response. It does no I/O and knows nothing
about ports; :mod:`pygatt.testing.sim.bgapi` wires it to one.

What it models, from the world:

- scanning: each peripheral advertises every ``advertising_interval_s`` (its
  flags, service UUIDs, TX power, manufacturer data), followed by a scan
  response with its name when the scan is active; a non-connectable one
  advertises as scannable (6) when it has a scan response, else as 2;
- connections: ``connect_delay_s`` until ``connection_status`` (flags 0x05);
  a peripheral that is absent, not connectable or of another address type is
  tried until ``gap_end_procedure``; ``connect_error`` fails the attempt with
  ``connection_disconnected`` (``connect_error_code``, default 0x023E); at most
  ``max_connections`` links (then 0x0209);
- the GATT server (:mod:`.bled112_att`): the world's attribute table (handles as
  :func:`~pygatt.testing.world.layout` assigns them), ATT errors as
  ``0x0400 + code``, an ATT MTU of 23 (reads return 22 bytes, writes take 20,
  prepared writes 18, notifications carry 20), one ATT procedure at a time per
  link (another gets 0x0181), answers delayed by ``response_delay_s``;
- notification streams started by CCCD writes (notifications are attribute
  values of type 1, indications of type 2) or by the connection;
- remote disconnects after ``disconnect_after_ops`` / ``disconnect_after_s`` /
  ``disconnect_after_notifications`` (reason 0x0213);
- the security manager: encryption, bonds kept across reboots (up to 8,
  peripherals marked ``bonded`` start bonded), ``sec_level_error`` /
  ``bond_error_code`` failing the bonding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from pygatt.testing.world import Layout, Peripheral, World, layout

from .advertising import advertising_data, scan_response_data
from .bled112_att import AttClient
from .bled112_link import (
    BOND_KEYS,
    BOOT,
    COMPLETED,
    CONNECTABLE_ADVERTISEMENT,
    CONNECTED,
    CONNECTION_FAILED,
    CONNECTION_LIMIT,
    ENCRYPTED,
    INVALID_PARAMETER,
    LOCAL_HOST_TERMINATED,
    MAX_BONDS,
    NO_BOND,
    NON_CONNECTABLE_ADVERTISEMENT,
    NOT_CONNECTED,
    OUT_OF_BONDS,
    PAIRING_NOT_SUPPORTED,
    REMOTE_USER_TERMINATED,
    SCAN_RESPONSE,
    SCANNABLE_ADVERTISEMENT,
    SECURITY_DELAY_S,
    SUCCESS,
    VALUE_NOTIFY,
    WRONG_STATE,
    Connection,
    Host,
)

if TYPE_CHECKING:
    from .scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass
class PendingConnect:
    """A gap_connect_direct still trying."""

    handle: int
    address: str
    address_type: int
    interval: int
    timeout: int
    latency: int


class Firmware:
    """The BGAPI behaviour of a BLED112 against a world.

    Args:
        world: the peripherals the dongle can see.
        host: where responses and events go.
        scheduler: the simulator loop's timers.
        max_connections: links the firmware allows at once (stock BLED112 firmware: 3).
        address: the dongle's own Bluetooth address.
        host_confirms_indications: firmware built to leave indication confirmations to the host.
    """

    def __init__(
        self,
        world: World,
        host: Host,
        scheduler: Scheduler,
        max_connections: int,
        address: str,
        host_confirms_indications: bool = False,
    ) -> None:
        self.world = world
        self.host = host
        self.scheduler = scheduler
        self.max_connections = max_connections
        self.address = address.upper()
        self.bonds: List[Optional[str]] = [None] * MAX_BONDS
        for peripheral in world.peripherals:
            if peripheral.bonded:
                self._new_bond(peripheral.address)
        self.tables: Dict[str, Layout] = {}  # peripherals keep their values while the dongle runs
        self.epoch = 0
        self.att = AttClient(host, self.later, lambda: self.connections, self._drop, host_confirms_indications)
        self._power_on()

    def _power_on(self) -> None:
        self.epoch += 1
        self.connections: Dict[int, Connection] = {}
        self.pending: Optional[PendingConnect] = None
        self.scanning = False
        self.scan_active = True
        self.scan_epoch = 0
        self.bondable = False
        self.discoverable = (0, 0)

    def reboot(self) -> None:
        """Power-cycle: every link and procedure ends silently; bonds remain."""
        for connection in self.connections.values():
            connection.alive = False
        self._power_on()

    # -- plumbing --------------------------------------------------------------------
    def later(self, delay: float, action: Callable[[], None], connection: Optional[Connection] = None) -> None:
        """Run ``action`` after ``delay`` unless the dongle rebooted (or ``connection`` ended) meanwhile."""
        epoch = self.epoch

        def guarded() -> None:
            if self.epoch == epoch and (connection is None or connection.alive):
                action()

        self.scheduler.after(delay, guarded)

    def command(self, name: str, fields: Dict[str, Any]) -> None:
        """Handle one decoded command (``system_reset`` is the caller's: it involves the port).

        Args:
            name: the command's name in the codec's table.
            fields: its decoded fields.
        """
        handler = getattr(self, "cmd_" + name, None) or getattr(self.att, "cmd_" + name, None)
        if handler is None:
            log.warning("simulated BLED112: command %s is not simulated; no response", name)
            return
        handler(**fields)

    # -- system ------------------------------------------------------------------------
    def boot_event(self) -> None:
        """Send system_boot (after a reset, when the host opens the port again)."""
        self.host.event("system_boot", **BOOT)

    def cmd_system_address_get(self) -> None:
        """The dongle's own address."""
        self.host.respond("system_address_get", address=self.address)

    def cmd_system_get_connections(self) -> None:
        """How many links the firmware allows."""
        self.host.respond("system_get_connections", maxconn=self.max_connections)

    # -- GAP ---------------------------------------------------------------------------
    def cmd_gap_set_mode(self, discover: int, connect: int) -> None:
        """Advertising mode of the dongle itself (stored; the dongle does not advertise)."""
        if discover > 4 or connect > 3:
            self.host.respond("gap_set_mode", result=INVALID_PARAMETER)
            return
        self.discoverable = (discover, connect)
        self.host.respond("gap_set_mode", result=SUCCESS)

    def cmd_gap_set_scan_parameters(self, scan_interval: int, scan_window: int, active: int) -> None:
        """Scan interval and window (checked) and active scanning (scan responses)."""
        if self.scanning:
            result = WRONG_STATE
        elif not (4 <= scan_window <= scan_interval <= 0x4000) or active > 1:
            result = INVALID_PARAMETER
        else:
            self.scan_active = bool(active)
            result = SUCCESS
        self.host.respond("gap_set_scan_parameters", result=result)

    def cmd_gap_discover(self, mode: int) -> None:
        """Start scanning: gap_scan_response events until gap_end_procedure."""
        if mode > 2:
            result = INVALID_PARAMETER
        elif self.scanning or self.pending is not None or self.world.adapter.scan_error:
            result = WRONG_STATE
        else:
            result = SUCCESS
        self.host.respond("gap_discover", result=result)
        if result != SUCCESS:
            return
        self.scanning = True
        self.scan_epoch += 1
        for index, peripheral in enumerate(self.world.peripherals):
            self.later(0.001 * (index + 1), self._advertiser(peripheral, self.scan_epoch))

    def _advertiser(self, peripheral: Peripheral, scan_epoch: int) -> Callable[[], None]:
        def advertise() -> None:
            if not self.scanning or self.scan_epoch != scan_epoch:
                return
            if peripheral.address.upper() not in self._connected_addresses():
                self._advertisement(peripheral)
            self.later(max(peripheral.advertising_interval_s, 0.001), advertise)

        return advertise

    def _advertisement(self, peripheral: Peripheral) -> None:
        common = {
            "rssi": max(-128, min(127, peripheral.rssi)),
            "sender": peripheral.address.upper(),
            "address_type": 1 if peripheral.address_type == "random" else 0,
            "bond": self._bond_of(peripheral.address),
        }
        response = scan_response_data(peripheral)
        # ADV_IND (0) is scannable; a non-connectable advertiser with a scan response must be
        # scannable too (ADV_SCAN_IND, 6): ADV_NONCONN_IND (2) gets no scan request
        if peripheral.connectable:
            kind = CONNECTABLE_ADVERTISEMENT
        else:
            kind = SCANNABLE_ADVERTISEMENT if response else NON_CONNECTABLE_ADVERTISEMENT
        self.host.event("gap_scan_response", packet_type=kind, data=advertising_data(peripheral), **common)
        if self.scan_active and response:
            self.host.event("gap_scan_response", packet_type=SCAN_RESPONSE, data=response, **common)

    def cmd_gap_end_procedure(self) -> None:
        """End the scan or the connect attempt; 0x0181 when neither runs."""
        if self.scanning:
            self.scanning = False
            result = SUCCESS
        elif self.pending is not None:
            log.debug("simulated BLED112: connect attempt to %s ended", self.pending.address)
            self.pending = None
            result = SUCCESS
        else:
            result = WRONG_STATE
        self.host.respond("gap_end_procedure", result=result)

    def cmd_gap_connect_direct(
        self,
        address: str,
        addr_type: int,
        conn_interval_min: int,
        conn_interval_max: int,
        timeout: int,
        latency: int,
    ) -> None:
        """Connect: connection_status after the peripheral's connect delay, or keep trying."""

        def refuse(result: int) -> None:
            self.host.respond("gap_connect_direct", result=result, connection_handle=0)

        if self.scanning or self.pending is not None or address.upper() in self._connected_addresses():
            return refuse(WRONG_STATE)
        if (
            addr_type > 1
            or not 6 <= conn_interval_min <= conn_interval_max <= 3200
            or not 10 <= timeout <= 3200
            or latency > 500
        ):
            return refuse(INVALID_PARAMETER)
        free = [h for h in range(self.max_connections) if h not in self.connections]
        if not free:
            return refuse(CONNECTION_LIMIT)
        interval = self._pick_interval(conn_interval_min, conn_interval_max)
        pending = PendingConnect(free[0], address.upper(), addr_type, interval, timeout, latency)
        self.pending = pending
        self.host.respond("gap_connect_direct", result=SUCCESS, connection_handle=pending.handle)
        peripheral = self.world.find(address)
        if peripheral is None:
            return  # nobody answers: the dongle keeps trying until gap_end_procedure
        self.later(max(peripheral.connect_delay_s, 0.0), lambda: self._finish_connect(pending, peripheral))

    def _pick_interval(self, low: int, high: int) -> int:
        """The smallest interval in [low, high] divisible by max_connections x 2.5 ms, else ``low``."""
        step = self.max_connections * 2  # units of 1.25 ms
        for interval in range(low, high + 1):
            if interval % step == 0:
                return interval
        return low

    def _finish_connect(self, pending: PendingConnect, peripheral: Peripheral) -> None:
        if self.pending is not pending:
            return  # ended by gap_end_procedure
        if peripheral.connect_error or peripheral.connect_error_code:
            self.pending = None
            reason = peripheral.connect_error_code or CONNECTION_FAILED
            self.host.event("connection_disconnected", connection=pending.handle, reason=reason)
            return
        wanted_type = 1 if peripheral.address_type == "random" else 0
        if not peripheral.connectable or pending.address_type != wanted_type:
            return  # never answers: still trying
        self.pending = None
        key = peripheral.address.upper()
        if key not in self.tables:
            self.tables[key] = layout(peripheral)
        table = self.tables[key]
        for attribute in table.attributes.values():
            if attribute.cccd_of is not None:
                attribute.value = bytearray(2)
        connection = Connection(
            pending.handle,
            peripheral,
            table,
            pending.address_type,
            pending.interval,
            pending.timeout,
            pending.latency,
            bond=self._bond_of(key),
        )
        self.connections[connection.handle] = connection
        self._status(connection, CONNECTED | COMPLETED)
        if peripheral.disconnect_after_s:
            self.later(peripheral.disconnect_after_s, lambda: self._drop(connection, REMOTE_USER_TERMINATED),
                       connection)  # fmt: skip
        for attribute in table.attributes.values():
            stream = attribute.characteristic.notify if attribute.characteristic else None
            if stream is not None and stream.trigger == "connect":
                self.att.start_stream(connection, attribute.handle, VALUE_NOTIFY)

    def _status(self, connection: Connection, flags: int) -> None:
        self.host.event(
            "connection_status",
            connection=connection.handle,
            flags=flags,
            address=connection.peripheral.address.upper(),
            address_type=connection.address_type,
            conn_interval=connection.interval,
            timeout=connection.timeout,
            latency=connection.latency,
            bonding=connection.bond,
        )

    def _connected_addresses(self) -> List[str]:
        return [c.peripheral.address.upper() for c in self.connections.values()]

    # -- connections -----------------------------------------------------------------
    def cmd_connection_disconnect(self, connection: int) -> None:
        """End a link: connection_disconnected with 0x0216 follows."""
        link = self.connections.get(connection)
        self.host.respond("connection_disconnect", connection=connection, result=SUCCESS if link else NOT_CONNECTED)
        if link is not None:
            self._drop(link, LOCAL_HOST_TERMINATED)

    def cmd_connection_get_rssi(self, connection: int) -> None:
        """The link's RSSI (0 for an unknown handle)."""
        link = self.connections.get(connection)
        rssi = max(-128, min(127, link.peripheral.rssi)) if link else 0
        self.host.respond("connection_get_rssi", connection=connection, rssi=rssi)

    def _drop(self, connection: Connection, reason: int) -> None:
        """End a link now; connection_disconnected follows on the next turn of the loop."""
        if not connection.alive:
            return
        connection.alive = False
        del self.connections[connection.handle]
        self.later(0.0, lambda: self.host.event("connection_disconnected", connection=connection.handle, reason=reason))

    def remote_disconnect(self, address: str, reason: int) -> bool:
        """The peripheral at ``address`` ends its link with ``reason``.

        Returns:
            False when the dongle has no link to ``address``.
        """
        for connection in list(self.connections.values()):
            if connection.peripheral.address.upper() == address.upper():
                self._drop(connection, reason)
                return True
        return False

    # -- security manager -------------------------------------------------------------
    def cmd_sm_set_bondable_mode(self, bondable: int) -> None:
        """Whether encryption with bonding=1 stores a bond (empty response)."""
        self.bondable = bool(bondable)
        self.host.respond("sm_set_bondable_mode")

    def cmd_sm_encrypt_start(self, handle: int, bonding: int) -> None:
        """Encrypt a link: sm_bond_status for a new bond, then connection_status; or sm_bonding_fail."""
        link = self.connections.get(handle)
        self.host.respond("sm_encrypt_start", handle=handle, result=SUCCESS if link else NOT_CONNECTED)
        if link is not None:
            self.later(SECURITY_DELAY_S + link.peripheral.response_delay_s, lambda: self._encrypt(link, bonding), link)

    def _encrypt(self, link: Connection, bonding: int) -> None:
        peripheral = link.peripheral
        failure = peripheral.bond_error_code or (PAIRING_NOT_SUPPORTED if peripheral.sec_level_error else None)
        bond = self._bond_of(peripheral.address)
        if failure is None and bond == NO_BOND and bonding and self.bondable:
            bond = self._new_bond(peripheral.address)
            if bond == NO_BOND:
                failure = OUT_OF_BONDS
            else:
                self._bond_status(bond)
        if failure is not None:
            self.host.event("sm_bonding_fail", handle=link.handle, result=failure)
            return
        link.encrypted, link.bond = True, bond
        self._status(link, CONNECTED | ENCRYPTED)

    def cmd_sm_get_bonds(self) -> None:
        """The number of bonds, then one sm_bond_status each."""
        present = [index for index, address in enumerate(self.bonds) if address is not None]
        self.host.respond("sm_get_bonds", bonds=len(present))
        for index in present:
            self.later(0.0, self._bond_reporter(index))

    def cmd_sm_delete_bonding(self, handle: int) -> None:
        """Delete one bond, or all with 0xFF."""
        if handle == 0xFF:
            self.bonds = [None] * MAX_BONDS
            result = SUCCESS
        elif handle < MAX_BONDS and self.bonds[handle] is not None:
            self.bonds[handle] = None
            result = SUCCESS
        else:
            result = INVALID_PARAMETER
        for link in self.connections.values():
            if link.bond != NO_BOND and (handle == 0xFF or link.bond == handle):
                link.bond = NO_BOND
        self.host.respond("sm_delete_bonding", result=result)

    def _bond_reporter(self, bond: int) -> Callable[[], None]:
        return lambda: self._bond_status(bond)

    def _bond_status(self, bond: int) -> None:
        address = self.bonds[bond]
        peripheral = self.world.find(address) if address else None
        address_key = 0x04 if peripheral is not None and peripheral.address_type == "random" else 0x02
        self.host.event("sm_bond_status", bond=bond, keysize=16, mitm=0, keys=BOND_KEYS | address_key)

    def _bond_of(self, address: str) -> int:
        for index, bonded in enumerate(self.bonds):
            if bonded is not None and bonded == address.upper():
                return index
        return NO_BOND

    def _new_bond(self, address: str) -> int:
        for index, bonded in enumerate(self.bonds):
            if bonded is None:
                self.bonds[index] = address.upper()
                return index
        return NO_BOND
