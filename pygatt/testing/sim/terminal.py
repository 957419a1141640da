"""The terminal side of the simulated gatttool: readline-like echo, prompt, async lines.

gatttool uses readline: the terminal's own echo is off, typed characters are
echoed by the program, and a line printed while the user types (a
notification, say) clears the input line, prints the text, and redraws the
prompt with the half-typed input. These are the bytes the real gatttool
writes to its terminal, as recorded from BlueZ 5.66.
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
from typing import Any, Callable, List, Optional

RED = "\x1b[0;91m"
BLUE = "\x1b[0;94m"
RESET = "\x1b[0m"
PASTE_ON = "\x1b[?2004h"
PASTE_OFF = "\x1b[?2004l\r"
DEFAULT_COLUMNS = 80


def terminal_columns(fd: int = 0) -> int:
    """The width readline works with: the pty's, else ``$COLUMNS``, else 80."""
    try:
        columns = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))[1]
    except OSError:
        columns = 0
    if columns <= 0:
        try:
            columns = int(os.environ.get("COLUMNS", ""))
        except ValueError:
            columns = 0
    return columns if columns > 0 else DEFAULT_COLUMNS


class Terminal:
    """Line input with echo and gatttool's framing of output, on fds 0, 1 and 2.

    Args:
        prompt: returns the prompt to draw (it changes with the connection state).
        term: the terminal type; ``dumb`` (the default when ``TERM`` is unset)
            draws no bracketed-paste codes, as readline does.

    Attributes:
        dumb: whether the terminal is dumb.
        line: the input typed so far.
        eof: whether Ctrl-D ended the input.
    """

    def __init__(self, prompt: Callable[[], str], term: Optional[str] = None) -> None:
        self._prompt = prompt
        self.dumb = (term or os.environ.get("TERM", "dumb")) in ("dumb", "", "unknown")
        self.line = ""
        self.eof = False  # Ctrl-D on an empty line, as readline takes it
        self._saved: Optional[List[Any]] = None
        self._pending: List[str] = []
        self._shown_prompt = 0  # columns of the prompt last drawn (what a clear must cover)
        self._visible = 0  # columns readline believes the input line takes on screen
        self._drawn_prompt = ""  # the prompt as last drawn (gatttool may change it without a redraw)
        self._lmargin = 0  # readline's horizontal scroll offset (TERM=dumb) for the line being typed

    # -- set-up ------------------------------------------------------------------
    def raw(self) -> None:
        """Turn the terminal's echo and line editing off (readline does the same)."""
        if not os.isatty(0):
            return
        self._saved = termios.tcgetattr(0)
        attrs = termios.tcgetattr(0)
        attrs[3] &= ~(termios.ECHO | termios.ICANON)  # lflag
        attrs[1] &= ~termios.OPOST  # oflag: we write \r\n ourselves
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(0, termios.TCSANOW, attrs)

    def restore(self) -> None:
        """Put the terminal back as it was."""
        if self._saved is not None:
            termios.tcsetattr(0, termios.TCSANOW, self._saved)
            self._saved = None

    # -- the screen -----------------------------------------------------------------------
    def columns(self) -> int:
        """The width readline works with (see :func:`terminal_columns`).

        Returns:
            The number of columns.
        """
        return terminal_columns()

    def stderr_is_terminal(self) -> bool:
        """Whether stderr is a terminal (GLib colours its warnings then).

        Returns:
            True when fd 2 is a terminal.
        """
        return os.isatty(2)

    # -- output -----------------------------------------------------------------------
    def write(self, text: str) -> None:
        """Queue text for stdout (sent by :meth:`flush`).

        Args:
            text: the text, with its own ``\\r\\n``.
        """
        self._pending.append(text)

    def flush(self) -> None:
        """Send everything queued in one write (blocks while the reader is slower)."""
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8", "replace")
        self._pending.clear()
        view = memoryview(data)
        while view:
            written = os.write(1, view)
            view = view[written:]

    def prompt(self) -> None:
        """Draw the prompt (and the input typed so far)."""
        self._drawn_prompt = self._prompt()
        self._shown_prompt = len(self._drawn_prompt)
        self._visible = self._shown_prompt + len(self.line)
        self.write(("" if self.dumb else PASTE_ON) + self._prompt() + self.line)

    def sync(self, text: str) -> None:
        """Print a line while a command runs, before the next prompt.

        Args:
            text: the line, without its end.
        """
        self.write(text + "\r\n")

    def error(self, message: str, asynchronous: bool = False) -> None:
        """Print a red ``Error:`` line.

        Args:
            message: the text after ``Error:``.
            asynchronous: print it as an asynchronous line (see :meth:`later`).
        """
        line = f"{RED}Error: {RESET}{message}"
        self.later(line) if asynchronous else self.sync(line)

    def failed(self, message: str) -> None:
        """Print a red ``Command Failed:`` line (synchronously).

        Args:
            message: the text after ``Command Failed:``.
        """
        self.sync(f"{RED}Command Failed: {RESET}{message}")

    def later(self, text: str) -> None:
        """Print an asynchronous line: clear the input line, print, redraw prompt and input.

        With TERM=dumb readline clears with spaces, one per column it believes
        the line on screen takes: gatttool does not mark its colour escapes as
        invisible, so they count as columns too; and the prompt on screen may be
        an older one than the prompt redrawn after the text.

        Args:
            text: the line, without its end.
        """
        if self.dumb:
            clear = "\r" + " " * (self._shown_prompt + len(self.line)) + "\r"
        else:
            clear = "\r\x1b[K"
        self.write(clear + text + "\r\n")
        self._drawn_prompt = self._prompt()
        self._shown_prompt = len(self._drawn_prompt)
        self._visible = self._shown_prompt + len(self.line)
        self.write(self._prompt() + self.line)  # a redraw: no bracketed-paste switch (seen with TERM=xterm)

    def _redisplay(self, inserted: str) -> None:
        """Echo characters just inserted at the end of the line, as readline redraws it.

        readline inserts typed-ahead characters together and redraws once. It
        counts the prompt's escapes as columns. With TERM=dumb it scrolls the
        line horizontally: once the cursor would pass ``columns - 2`` it redraws
        from the left edge as ``<`` + the last two thirds of a screen, the cursor
        at their end (blanking, with spaces and backspaces, what the old line had more).
        """
        if not inserted:
            return
        columns = self.columns()
        full = self._prompt() + self.line
        cursor = len(full)
        redraw = self._prompt() != self._drawn_prompt  # e.g. the link dropped: the next key shows the new prompt
        self._drawn_prompt = self._prompt()
        if not self.dumb:
            # the terminal wraps (readline's redraw of wrapped lines is not imitated)
            self.write("\r" + full if redraw else inserted)
            return
        if cursor - self._lmargin > columns - 2:
            lmargin = max(0, cursor - 2 * (columns // 3))
        elif cursor < columns - 2:
            lmargin = 0
        else:
            lmargin = self._lmargin
        if lmargin == self._lmargin and not redraw:
            self.write(inserted)
            self._visible += len(inserted)
        else:
            self.write("\r" + (("<" + full[lmargin + 1 : cursor]) if lmargin else full))
            shorter = self._visible - (cursor - lmargin)
            if shorter > 0:  # no clear-to-end-of-line on a dumb terminal: spaces, then back
                self.write(" " * shorter + "\b" * shorter)
            self._visible = cursor - lmargin
        self._lmargin = lmargin

    def _end_line(self) -> None:
        """Enter: readline's final update, then the new line."""
        self.write(("\r\n" if self.line else "\r\r") + ("" if self.dumb else PASTE_OFF))
        self._lmargin = 0

    def stderr(self, text: str) -> None:
        """Write to stderr at once (after what stdout has queued).

        Args:
            text: the text.
        """
        self.flush()
        os.write(2, text.encode())

    def interrupt(self) -> None:
        """Ctrl-C: drop the typed input and redraw the prompt (gatttool does not exit)."""
        self.line = ""
        self.write("\r\n")
        self.prompt()

    # -- input ----------------------------------------------------------------------
    def feed(self, data: str) -> List[str]:
        """Take typed characters and echo them.

        Characters that arrive together are inserted together and echoed by one
        redraw, as readline does with typed-ahead input.

        Args:
            data: the characters read from the terminal.

        Returns:
            The lines completed by Enter.
        """
        lines = []
        inserted = ""
        for char in data:
            if char >= " " or char == "\t":
                self.line += char
                inserted += char
                continue
            self._redisplay(inserted)
            inserted = ""
            if char in "\r\n":
                # readline ends an empty line with "\r\r" (seen on the real gatttool), others with "\r\n"
                self._end_line()
                lines.append(self.line)
                self.line = ""
            elif char == "\x04" and not self.line:
                self.eof = True
                break
            elif char in "\x7f\b":
                if self.line:
                    self.line = self.line[:-1]
                    self.write("\b \b")
        self._redisplay(inserted)
        return lines


def eprint(text: str) -> None:
    """Print a line to stderr (for the non-interactive tools).

    Args:
        text: the line, without its end.
    """
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
