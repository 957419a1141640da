"""Run BlueZ's real ``gatttool`` against :class:`~pygatt.testing.att.server.ATTPeripheralServer`.

gatttool opens one L2CAP socket per connection. ``l2cap_shim.c`` (shipped next
to this module) is loaded into it with ``LD_PRELOAD`` and turns that socket into
a Unix socket connected to ``$PYGATT_ATT_DIR/<ADDRESS>-<type>``, where the
server listens. Nothing else about gatttool changes: its parser, terminal
output, ATT client and timeouts are the real ones.

Typical use (what the ``realtool`` tests do)::

    shim = build_shim(cache_dir)                       # gcc, once
    with ATTPeripheralServer(world, socket_dir) as server:
        tools = real_gatttool_commands(shim, socket_dir, world_path)
        backend = pygatt.GATTToolBackend(tools=tools)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Union

from pygatt.backends.gatttool.tools import ToolCommands

SHIM_SOURCE = Path(__file__).with_name("l2cap_shim.c")
#: The environment variable the shim reads: the directory holding the peripherals' sockets.
SOCKET_DIR_ENV = "PYGATT_ATT_DIR"
BUILD_TIMEOUT_S = 60.0


class ShimUnavailable(RuntimeError):
    """The shim cannot be built or the real gatttool cannot be run (the reason says which)."""


def missing_requirements(gatttool: str = "gatttool", compiler: str = "gcc") -> Optional[str]:
    """Why the real gatttool cannot be run through the shim here, or None when it can.

    Args:
        gatttool: the gatttool program to look for.
        compiler: the C compiler to look for.

    Returns:
        A sentence naming what is missing and the Debian package that provides it.
    """
    if shutil.which(gatttool) is None:
        return f"BlueZ's {gatttool} is not installed (Debian: apt-get install bluez)"
    if shutil.which(compiler) is None:
        return f"{compiler} is not installed to build the L2CAP shim (Debian: apt-get install gcc libc6-dev)"
    return None


def build_shim(cache_dir: Union[str, Path], compiler: str = "gcc") -> Path:
    """Compile ``l2cap_shim.c`` into ``cache_dir`` (once per source version) and return the library.

    Args:
        cache_dir: where the shared library is kept.
        compiler: the C compiler to run.

    Returns:
        The path of the built ``.so``.

    Raises:
        ShimUnavailable: when the compiler is missing or the build fails (with its output).
    """
    source = SHIM_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:12]
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    library = cache / f"l2cap_shim-{digest}.so"
    if library.exists():
        return library
    if shutil.which(compiler) is None:
        raise ShimUnavailable(f"{compiler} is not installed (Debian: apt-get install gcc libc6-dev)")
    partial = cache / f"l2cap_shim-{digest}.{os.getpid()}.tmp.so"
    argv = [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SHIM_SOURCE), "-ldl"]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShimUnavailable(f"could not run {' '.join(argv)}: {exc}") from exc
    if result.returncode != 0:
        raise ShimUnavailable(f"building the L2CAP shim failed ({' '.join(argv)}):\n{result.stderr.strip()}")
    partial.replace(library)  # atomic: a concurrent build never sees half a library
    return library


def gatttool_command(shim: Union[str, Path], socket_dir: Union[str, Path], gatttool: str = "gatttool") -> List[str]:
    """The argument list that runs the real gatttool with the shim loaded.

    It goes through ``env`` so that it fits :class:`ToolCommands` (an argument
    prefix, no shell): ``env LD_PRELOAD=<shim> PYGATT_ATT_DIR=<dir> gatttool``.

    Args:
        shim: the built shim (:func:`build_shim`).
        socket_dir: the directory the :class:`ATTPeripheralServer` listens in.
        gatttool: the gatttool program.

    Returns:
        The command prefix; the backend appends ``-i hci0 -I``.
    """
    return ["env", f"LD_PRELOAD={Path(shim).resolve()}", f"{SOCKET_DIR_ENV}={Path(socket_dir).resolve()}", gatttool]


def real_gatttool_commands(
    shim: Union[str, Path], socket_dir: Union[str, Path], world: str, gatttool: str = "gatttool"
) -> ToolCommands:
    """Tool commands for the GATTTool backend: the real gatttool through the shim, and the
    simulated hcitool, hciconfig, bluetoothctl and btmgmt for the same world (they need an adapter).

    Args:
        shim: the built shim.
        socket_dir: the server's socket directory.
        world: the world file (or shipped example name) the other tools simulate.
        gatttool: the gatttool program.

    Returns:
        The commands to pass as ``GATTToolBackend(tools=...)``.
    """
    simulated = ToolCommands.simulated(world)
    return ToolCommands(
        gatttool=gatttool_command(shim, socket_dir, gatttool),
        hcitool=simulated.hcitool,
        hciconfig=simulated.hciconfig,
        bluetoothctl=simulated.bluetoothctl,
        btmgmt=simulated.btmgmt,
    )
