"""What the parts of the simulated BLED112's firmware share: result codes, limits, the
output to the host and the state of one link.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from pygatt.testing.world import Layout, Peripheral

# result codes (BGAPI 0x01xx, Bluetooth 0x02xx, SMP 0x03xx, ATT 0x04xx)
SUCCESS = 0
INVALID_PARAMETER = 0x0180
WRONG_STATE = 0x0181
NOT_CONNECTED = 0x0186
OUT_OF_BONDS = 0x018B
CONNECTION_LIMIT = 0x0209
REMOTE_USER_TERMINATED = 0x0213
LOCAL_HOST_TERMINATED = 0x0216
CONNECTION_FAILED = 0x023E
PAIRING_NOT_SUPPORTED = 0x0305
ATT_BASE = 0x0400
ATT_INVALID_HANDLE = 0x01
ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_INVALID_OFFSET = 0x07
ATT_PREPARE_QUEUE_FULL = 0x09
ATT_NOT_FOUND = 0x0A

# connection_status flags, attribute_value types, scan packet types
CONNECTED = 0x01
ENCRYPTED = 0x02
COMPLETED = 0x04
VALUE_READ = 0
VALUE_NOTIFY = 1
VALUE_INDICATE = 2
VALUE_READ_BY_TYPE = 3
VALUE_READ_BLOB = 4
VALUE_INDICATE_RSP_REQ = 5
CONNECTABLE_ADVERTISEMENT = 0
NON_CONNECTABLE_ADVERTISEMENT = 2
SCAN_RESPONSE = 4
SCANNABLE_ADVERTISEMENT = 6  # ADV_SCAN_IND: non-connectable, answers scan requests
NO_BOND = 0xFF

ATT_MTU = 23
MAX_READ = ATT_MTU - 1
MAX_READ_BY_TYPE = ATT_MTU - 4  # one handle-value pair of a Read By Type Response
MAX_WRITE = ATT_MTU - 3
MAX_PREPARE = ATT_MTU - 5
MAX_NOTIFY = ATT_MTU - 3
MAX_BONDS = 8
MAX_PREPARED = 64
BATCH = 64  # notifications of a stream with no interval, per turn of the loop
SECURITY_DELAY_S = 0.02
BOOT = {"major": 1, "minor": 3, "patch": 2, "build": 122, "ll_version": 2, "protocol_version": 1, "hw": 1}
BOND_KEYS = 0x01 | 0x10  # LTK, EDIV/RAND (plus the address type's key bit)


class Host(abc.ABC):
    """Where the firmware's output goes (the serial port, through the codec)."""

    @abc.abstractmethod
    def respond(self, name: str, **fields: Any) -> None:
        """Send the response to command ``name``."""

    @abc.abstractmethod
    def event(self, name: str, **fields: Any) -> None:
        """Send event ``name``."""

    @abc.abstractmethod
    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the port can take more output."""


@dataclass
class Connection:
    """One link of the dongle to a peripheral."""

    handle: int
    peripheral: Peripheral
    table: Layout
    address_type: int
    interval: int
    timeout: int
    latency: int
    bond: int = NO_BOND
    encrypted: bool = False
    alive: bool = True
    busy: bool = False  # an ATT procedure is running
    ops: int = 0
    notified: int = 0  # notifications and indications sent on this link
    prepared: List[Tuple[int, int, bytes]] = field(default_factory=list)
    streams: Dict[int, int] = field(default_factory=dict)  # value handle -> stream generation
    sent: Dict[int, int] = field(default_factory=dict)  # value handle -> values sent
    unconfirmed: Optional[Callable[[], None]] = None  # resumes the stream whose indication awaits the host
