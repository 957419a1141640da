"""The simulated bluetoothd's GATT client side: ``GattCharacteristic1`` and ``GattDescriptor1``.

Reads, writes, notify sessions, ``AcquireNotify``/``AcquireWrite`` sockets and the
world's notification streams, for the devices a
:class:`~pygatt.testing.sim.bluez_dbus.SimulatedBluez` holds. Every answer and
signal goes through the :class:`~pygatt.testing.sim.dbus_service.BusService`.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Callable, Optional, Union

from dbus_fast import Message, MessageType

from . import bluez_objects as bz

if TYPE_CHECKING:
    from pygatt.testing.world import Attribute

    from .bluez_state import CharacteristicState, DeviceState
    from .dbus_service import BusService

log = logging.getLogger(__name__)


class GattServer:
    """The GATT methods of every device's characteristics and descriptors.

    ``char_<Member>`` and ``desc_<Member>`` answer the D-Bus method ``<Member>`` of
    ``GattCharacteristic1``/``GattDescriptor1`` with ``(call, device, path, *arguments)``:
    they reply (now or later) or raise :class:`~.bluez_objects.BluezError` for an error reply.

    Args:
        service: the bus service that answers and signals.
        link_down: drops a device's link (the world's ``disconnect_after_ops`` and
            ``disconnect_after_notifications``).
        security_paired: marks a device paired after BlueZ raised the link's security by itself.
    """

    def __init__(
        self,
        service: BusService,
        link_down: Callable[[DeviceState], None],
        security_paired: Callable[[DeviceState], None],
    ) -> None:
        self.service = service
        self.link_down = link_down
        self.security_paired = security_paired

    def fail(self, call: Message, error: bz.BluezError) -> None:
        """Answer ``call`` with ``error``."""
        self.service.fail(call, error.name, error.message)

    # -- link events ------------------------------------------------------------------------------
    def link_up(self, device: DeviceState) -> None:
        """Services are resolved: notify sessions enable their CCCD again; "connect" streams start."""
        for state in device.characteristics.values():
            if state.sessions:  # sessions survive a disconnect: BlueZ re-enables the CCCD
                self.write_cccd(device, state, enable=True)
            stream = state.characteristic.notify
            if stream is not None and stream.trigger == "connect":
                self.start_stream(device, state)

    def link_lost(self, device: DeviceState) -> None:
        """The link went down: operations in flight are forgotten (their callers were answered), sockets close."""
        for state in device.characteristics.values():
            state.read_offset, state.readers, state.writing, state.enabling = None, [], False, False
            self.release_notify_socket(state)
            self.release_write_socket(state)

    def client_left(self, device: DeviceState, sender: str) -> None:
        """A client left the bus: its notify sessions end."""
        for state in device.characteristics.values():
            if sender in state.sessions:
                self.end_notify_session(device, state, sender)

    # -- operations --------------------------------------------------------------------------------
    def operation(self, device: DeviceState, call: Message, action: Callable[[], None]) -> None:
        """Run a GATT operation after the peer's response time, unless the link changes first.

        Raises:
            BluezError: ``Failed "Not connected"`` without a link.
        """
        if not device.connected:
            raise bz.not_connected()
        device.ops += 1
        link = device.link
        device.pending[call.serial] = call

        def finish() -> None:
            if device.link != link or device.pending.pop(call.serial, None) is None:
                return
            try:
                action()
            except bz.BluezError as error:
                self.fail(call, error)
            limit = device.peripheral.disconnect_after_ops
            if limit and device.ops >= limit:
                self.service.later(0.001, lambda: self._remote_disconnect(device, link))

        self.service.later(device.peripheral.response_delay_s, finish)

    def _remote_disconnect(self, device: DeviceState, link: int) -> None:
        if device.link == link:
            self.link_down(device)

    def check_access(self, device: DeviceState, attribute: Attribute, writing: bool) -> None:
        """Raise the D-Bus error for the ATT error the peer answers.

        On 0x05/0x0F BlueZ raises the link's security and retries: a device that pairs
        "just works" pairs by itself and the operation goes through.
        """
        error: Union[int, str, None] = attribute.write_error if writing else attribute.read_error
        if attribute.characteristic is not None:  # the world's own value keeps codes gatttool has no text for
            characteristic = attribute.characteristic
            error = characteristic.write_error if writing else characteristic.read_error
        code = bz.att_code_of(error)
        if code is None and not (attribute.writable if writing else attribute.readable):
            code = 0x03 if writing else 0x02
        if code in (0x05, 0x0F) and not device.paired and device.peripheral.pairing == "just-works":
            self.security_paired(device)
        if code in (0x05, 0x0F) and device.paired:
            return
        if code is not None:
            raise bz.gatt_error(code)

    def read_attribute(self, device: DeviceState, attribute: Attribute, offset: int) -> bytes:
        """The peer's answer to a (long) read from ``offset``; raises the mapped ATT error."""
        self.check_access(device, attribute, writing=False)
        value = bytes(attribute.value)
        if offset > len(value):
            raise bz.gatt_error(0x07)
        return value[offset:]  # BlueZ reads long values with Read Blob: the whole value

    def write_attribute(self, device: DeviceState, attribute: Attribute, value: bytes, offset: int) -> None:
        """The peer stores a written value (a prepared write at ``offset``); raises the mapped ATT error."""
        self.check_access(device, attribute, writing=True)
        if offset > len(attribute.value):
            raise bz.gatt_error(0x07)
        attribute.value = bytearray(bytes(attribute.value[:offset]) + value)  # Value (BlueZ's cache) is unchanged

    # -- GattCharacteristic1 --------------------------------------------------------------------------
    def char_ReadValue(self, call: Message, device: DeviceState, path: str, options: bz.Options) -> None:
        state = device.characteristics[path]
        offset, _ = bz.parse_gatt_options(options)
        if not device.connected:
            raise bz.not_connected()
        if state.read_offset is not None:
            if state.read_offset != offset:
                raise bz.bluez_error("InProgress")
            state.readers.append(call)  # a concurrent read at the same offset joins the first
            device.pending[call.serial] = call
            return
        state.read_offset, state.readers = offset, [call]

        def read() -> None:
            readers, state.readers, state.read_offset = state.readers, [], None
            try:
                value = self.read_attribute(device, state.attribute, offset)
            except bz.BluezError as error:
                for reader in readers[1:]:
                    device.pending.pop(reader.serial, None)
                    self.fail(reader, error)
                raise
            state.value = value
            self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"Value": ("ay", value)})  # first
            for reader in readers:
                device.pending.pop(reader.serial, None)
                self.service.reply(reader, "ay", [value])

        self.operation(device, call, read)

    def char_WriteValue(self, call: Message, device: DeviceState, path: str, value: bytes, options: bz.Options) -> None:
        state = device.characteristics[path]
        offset, kind = bz.parse_gatt_options(options)
        if not device.connected:
            raise bz.not_connected()
        if state.write_socket is not None:
            raise bz.bluez_error("NotPermitted", "Write acquired")
        if state.writing:
            raise bz.bluez_error("InProgress")
        flags = state.flags
        if kind is None:
            kind = "request" if "write" in flags else "command" if "write-without-response" in flags else ""
        if kind in ("request", "reliable"):
            state.writing = True

            def write() -> None:
                state.writing = False
                self.write_attribute(device, state.attribute, bytes(value), offset)
                self.service.reply(call)

            self.operation(device, call, write)
            return
        if kind != "command" or offset:
            raise bz.bluez_error("NotSupported")
        if len(value) > device.mtu - 3:
            raise bz.bluez_error("Failed", "Failed to initiate write")
        self.write_command(device, state, bytes(value))
        self.service.reply(call)

    def write_command(self, device: DeviceState, state: CharacteristicState, value: bytes) -> None:
        """A Write Command: no answer, so an error on the peer's side is invisible."""
        device.ops += 1
        try:
            self.write_attribute(device, state.attribute, value, 0)
        except bz.BluezError as error:
            log.debug("simulated org.bluez: write command dropped by the peer (%s)", error.message)

    # -- GattDescriptor1 ---------------------------------------------------------------------------------
    def desc_ReadValue(self, call: Message, device: DeviceState, path: str, options: bz.Options) -> None:
        state = device.descriptors[path]
        offset, _ = bz.parse_gatt_options(options)

        def read() -> None:
            value = self.read_attribute(device, state.attribute, offset)
            state.value = value
            self.service.properties_changed(state.path, bz.DESCRIPTOR, {"Value": ("ay", value)})
            self.service.reply(call, "ay", [value])

        self.operation(device, call, read)

    def desc_WriteValue(self, call: Message, device: DeviceState, path: str, value: bytes, options: bz.Options) -> None:
        state = device.descriptors[path]
        offset, _ = bz.parse_gatt_options(options)
        if state.attribute.uuid == bz.CCCD_UUID:
            raise bz.bluez_error("NotPermitted", "Write not permitted")  # use StartNotify/StopNotify

        def write() -> None:
            self.write_attribute(device, state.attribute, bytes(value), offset)
            self.service.reply(call)

        self.operation(device, call, write)

    # -- notify sessions ------------------------------------------------------------------------------------
    def char_StartNotify(self, call: Message, device: DeviceState, path: str) -> None:
        state = device.characteristics[path]
        sender = call.sender or ""
        if not {"notify", "indicate"} & set(state.flags):
            raise bz.bluez_error("NotSupported")
        if state.notify_socket is not None:
            raise bz.bluez_error("NotPermitted", "Notify acquired")
        if sender in state.sessions:
            self.service.reply(call)
            return
        if state.enabling:
            raise bz.bluez_error("InProgress")
        if not device.connected:  # succeeds; the CCCD is written at the next connection
            state.sessions.add(sender)
            self.set_notifying(state, True)
            self.service.reply(call)
            return
        state.enabling = True
        link = device.link

        def enabled() -> None:
            state.enabling = False
            if device.link != link:
                self.fail(call, bz.bluez_error("NotConnected"))
                return
            first = not state.sessions
            state.sessions.add(sender)
            self.set_notifying(state, True)  # before the reply
            self.service.reply(call)
            if first:
                self.write_cccd(device, state, enable=True)

        self.service.later(device.peripheral.response_delay_s, enabled)

    def set_notifying(self, state: CharacteristicState, notifying: bool) -> None:
        """Change ``Notifying`` (signalled)."""
        if state.notifying != notifying:
            state.notifying = notifying
            self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"Notifying": ("b", notifying)})

    def write_cccd(self, device: DeviceState, state: CharacteristicState, enable: bool) -> None:
        """Write the CCCD on the peer: 0x0001 when ``notify`` is set, else 0x0002; may start a stream."""
        if state.cccd is None:
            return
        bits = (0x0001 if "notify" in state.flags else 0x0002) if enable else 0
        state.cccd.value = bytearray(bits.to_bytes(2, "little"))
        stream = state.characteristic.notify
        if enable and stream is not None and stream.trigger == "subscribe":
            self.start_stream(device, state)

    def char_StopNotify(self, call: Message, device: DeviceState, path: str) -> None:
        state = device.characteristics[path]
        sender = call.sender or ""
        if sender not in state.sessions:
            raise bz.bluez_error("Failed", "No notify session started")
        self.end_notify_session(device, state, sender)
        self.service.reply(call)

    def end_notify_session(self, device: DeviceState, state: CharacteristicState, sender: str) -> None:
        """End ``sender``'s notify session; the last one disables the CCCD."""
        state.sessions.discard(sender)
        if state.sessions:
            return
        if device.connected:
            self.write_cccd(device, state, enable=False)
        self.set_notifying(state, False)

    # -- AcquireNotify / AcquireWrite ---------------------------------------------------------------------------
    def char_AcquireNotify(self, call: Message, device: DeviceState, path: str, options: bz.Options) -> None:
        state = device.characteristics[path]
        if "notify" not in state.flags:
            raise bz.bluez_error("NotSupported")
        if not device.connected:
            raise bz.not_connected()
        if state.notify_socket is not None:
            raise bz.bluez_error("NotPermitted", "Notify acquired")
        if state.sessions or state.enabling:
            raise bz.bluez_error("InProgress")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        state.notify_socket = ours
        self.service.watch(ours.fileno(), lambda: self._notify_socket_readable(device, state))
        self._hand_over(call, theirs, device.mtu)
        self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"NotifyAcquired": ("b", True)})
        self.write_cccd(device, state, enable=True)

    def _notify_socket_readable(self, device: DeviceState, state: CharacteristicState) -> None:
        ours = state.notify_socket
        if ours is None:
            return
        try:
            data = ours.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client closed its end: the acquired session ends
            self.release_notify_socket(state)
            if device.connected:
                self.write_cccd(device, state, enable=False)

    def release_notify_socket(self, state: CharacteristicState) -> None:
        """Close our end of an acquired notify socket (the client sees EOF/HUP)."""
        ours, state.notify_socket = state.notify_socket, None
        if ours is None:
            return
        self.service.unwatch(ours.fileno())
        ours.close()
        self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"NotifyAcquired": ("b", False)})

    def char_AcquireWrite(self, call: Message, device: DeviceState, path: str, options: bz.Options) -> None:
        state = device.characteristics[path]
        if "write-without-response" not in state.flags:
            raise bz.bluez_error("NotSupported")
        if not device.connected:
            raise bz.not_connected()
        if state.write_socket is not None:
            raise bz.bluez_error("NotPermitted", "Write acquired")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        state.write_socket = ours
        self.service.watch(ours.fileno(), lambda: self._write_socket_readable(device, state))
        self._hand_over(call, theirs, device.mtu)
        self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"WriteAcquired": ("b", True)})

    def _write_socket_readable(self, device: DeviceState, state: CharacteristicState) -> None:
        ours = state.write_socket
        if ours is None:
            return
        try:
            data = ours.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.release_write_socket(state)
            return
        if device.connected:
            self.write_command(device, state, data)  # each packet is one Write Command

    def release_write_socket(self, state: CharacteristicState) -> None:
        """Close our end of an acquired write socket."""
        ours, state.write_socket = state.write_socket, None
        if ours is None:
            return
        self.service.unwatch(ours.fileno())
        ours.close()
        self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"WriteAcquired": ("b", False)})

    def _hand_over(self, call: Message, theirs: socket.socket, mtu: int) -> None:
        """Reply ``(h fd, q mtu)``; our copy of the client's end closes once the reply is written."""
        reply = Message(
            message_type=MessageType.METHOD_RETURN,
            reply_serial=call.serial,
            destination=call.sender,
            signature="hq",
            body=[0, mtu],
            unix_fds=[theirs.fileno()],
        )
        self.service.send(reply, then=theirs.close)

    # -- notifications ------------------------------------------------------------------------------------
    def start_stream(self, device: DeviceState, state: CharacteristicState) -> None:
        """Start the world's notification stream of ``state`` (it stops with the link or the CCCD)."""
        stream = state.characteristic.notify
        if stream is None:
            return
        link = device.link
        state.stream_sent = 0

        def send() -> None:
            if device.link != link or not device.connected:
                return
            if stream.trigger == "subscribe" and state.cccd is not None and not any(bytes(state.cccd.value[:2])):
                return
            batch = 1 if stream.interval_s > 0 else 32
            for _ in range(batch):
                if stream.count and state.stream_sent >= stream.count:
                    return
                value = stream.value(state.stream_sent)
                state.stream_sent += 1
                self.peer_sends(device, state, value)
                if device.link != link:
                    return  # the peer dropped the link after this one
            self.service.later(stream.interval_s, send)

        self.service.later(stream.interval_s, send)

    def peer_sends(self, device: DeviceState, state: CharacteristicState, value: bytes) -> bool:
        """The peer sends one notification (or indication) of ``state`` on the current link.

        BlueZ gets it (:meth:`deliver`); the peer counts it and, once the world's
        ``disconnect_after_notifications`` is reached on this link, drops the link right
        after it: ``ServicesResolved`` and ``Connected`` become false in one signal, after
        the last value's.

        Returns:
            What :meth:`deliver` returns: False when nobody listens.
        """
        delivered = self.deliver(state, value)
        device.notified += 1
        limit = device.peripheral.disconnect_after_notifications
        if limit and device.notified >= limit:
            log.debug("simulated org.bluez: %s drops the link after %d notifications", device.address, limit)
            self.link_down(device)
        return delivered

    def deliver(self, state: CharacteristicState, value: bytes) -> bool:
        """A notification reaches BlueZ: one packet on an acquired socket, else one ``Value`` signal.

        Returns:
            False when nobody listens (BlueZ only registers handles a session enabled).
        """
        if state.notify_socket is not None:
            try:
                state.notify_socket.send(value)
            except OSError as exc:  # the client's buffer is full or it went away: the packet is lost
                log.debug("simulated org.bluez: notification dropped (%s)", exc)
            return True
        if not state.sessions:
            return False
        state.value = value
        self.service.properties_changed(state.path, bz.CHARACTERISTIC, {"Value": ("ay", value)})  # even unchanged
        return True

    def notify_now(self, device: DeviceState, key: Union[int, str], value: bytes) -> bool:
        """The peer sends one notification of the characteristic with value handle or UUID ``key``."""
        state: Optional[CharacteristicState] = device.find_characteristic(key)
        if state is None or not device.connected:
            return False
        return self.peer_sends(device, state, bytes(value))
